import { sql } from "drizzle-orm";
import type { DbLike } from "../db/database.ts";
import { rowsOf } from "../federation/kv-store.ts";

// Aggregation windows: [start, end) aligned to multiples of the window size since the
// epoch. Accepted values of an open window wait in history_window_values; once the end
// has passed, one statement turns each window's values into its single record and
// removes them, so a window is closed exactly once, also across restarts and processes.

export function windowOf(atMs: number, windowSizeS: number): { start: number; end: number } {
  const size = windowSizeS * 1000;
  const start = Math.floor(atMs / size) * size;
  return { start, end: start + size };
}

/**
 * Closes every window whose end is at or before `cutoff`; returns how many records were
 * written. Median is exact: percentile_cont(0.5) is the mean of the two middle values
 * for an even count. An empty window has no values, hence no record.
 */
export async function closeWindows(db: DbLike, cutoff: Date): Promise<number> {
  const result = await db.execute(sql`
    with closed as (
      delete from history_window_values
      where window_end <= ${cutoff.toISOString()}::timestamptz
      returning node_uuid, aggregation_type, window_size, window_start, window_end, value
    )
    insert into history_aggregates
      (node_uuid, aggregation_type, time_window_size, state, start_window, end_window, created_at)
    select node_uuid, aggregation_type, window_size,
      case aggregation_type
        when 'Avg' then avg(value)
        when 'Min' then min(value)
        when 'Max' then max(value)
        when 'Sum' then sum(value)
        else percentile_cont(0.5) within group (order by value)
      end,
      window_start, window_end, window_end
    from closed
    group by node_uuid, aggregation_type, window_size, window_start, window_end
    on conflict do nothing
    returning id`);
  return rowsOf(result).length;
}

/** The earliest end of a window still open, if any (so the writer sweeps only when one is due). */
export async function nextWindowEnd(db: DbLike): Promise<number | null> {
  const result = await db.execute(sql`select min(window_end) as next from history_window_values`);
  const next = rowsOf<{ next: string | Date | null }>(result)[0]?.next;
  return next ? new Date(next).getTime() : null;
}
