import { and, count, desc, eq, inArray, type SQL } from "drizzle-orm";
import type { DbLike } from "../db/database.ts";
import { unitLogs } from "../db/schema.ts";

export type UnitLogRow = typeof unitLogs.$inferSelect;

export type UnitLogFilter = {
  unitUuid: string;
  levels?: string[] | undefined;
  limit: number;
  offset: number;
};

/** A unit's log entries, newest first (by the entry's time, then arrival). */
export async function listUnitLogs(
  db: DbLike,
  f: UnitLogFilter,
): Promise<{ count: number; rows: UnitLogRow[] }> {
  const conds: SQL[] = [eq(unitLogs.unitUuid, f.unitUuid)];
  if (f.levels?.length) conds.push(inArray(unitLogs.level, f.levels));
  const where = and(...conds);
  const [total] = await db.select({ n: count() }).from(unitLogs).where(where);
  const rows = await db
    .select()
    .from(unitLogs)
    .where(where)
    .orderBy(desc(unitLogs.createdAt), desc(unitLogs.id))
    .limit(f.limit)
    .offset(f.offset);
  return { count: total?.n ?? 0, rows };
}
