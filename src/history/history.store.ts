import { and, asc, count, desc, eq, gte, isNotNull, lte, type SQL, sql } from "drizzle-orm";
import type { Database, DbLike } from "../db/database.ts";
import {
  type AggregationFunction,
  type HistoryStateType,
  historyAggregates,
  historyRecords,
  historyWindowValues,
  unitNodes,
} from "../db/schema.ts";
import { rowsOf } from "../federation/kv-store.ts";

// Every statement of the value history. Batches are written as multi-row VALUES lists
// joined against unit_nodes, so a variable deleted while its values waited is skipped
// instead of failing the whole batch on its foreign key.

export type RecordRow = {
  nodeUuid: string;
  state: string;
  stateType: HistoryStateType;
  at: number;
};
export type WindowValueRow = {
  nodeUuid: string;
  fn: AggregationFunction;
  windowSize: number;
  windowStart: number;
  windowEnd: number;
  value: number;
};
export type AggregateRow = {
  nodeUuid: string;
  fn: AggregationFunction;
  windowSize: number;
  state: number;
  start: number;
  end: number;
  at: number;
};

const CHUNK = 500;
const iso = (ms: number) => new Date(ms).toISOString();

function chunks<T>(items: T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += CHUNK) out.push(items.slice(i, i + CHUNK));
  return out;
}

export type PipeRow = { uuid: string; unitUuid: string; yaml: string };

/** Variables whose data pipe is switched on (and has a config). */
export async function loadActivePipes(db: DbLike, nodeUuid?: string): Promise<PipeRow[]> {
  const rows = await db
    .select({ uuid: unitNodes.uuid, unitUuid: unitNodes.unitUuid, yaml: unitNodes.dataPipeYaml })
    .from(unitNodes)
    .where(
      and(
        eq(unitNodes.isDataPipeActive, true),
        isNotNull(unitNodes.dataPipeYaml),
        nodeUuid ? eq(unitNodes.uuid, nodeUuid) : undefined,
      ),
    );
  return rows.map((r) => ({ uuid: r.uuid, unitUuid: r.unitUuid, yaml: r.yaml ?? "" }));
}

/**
 * Each record is stored with its answer text (recordText): a read joins stored texts
 * instead of formatting thousands of timestamps and JSON strings per read (~20 ms per
 * 10 000 records in PostgreSQL, more inside PGlite's WebAssembly).
 */
export async function insertRecords(db: DbLike, rows: RecordRow[]): Promise<void> {
  for (const part of chunks(rows)) {
    const values = part.map(
      (r, i) =>
        sql`(${i}::int, ${r.nodeUuid}::uuid, ${r.state}::text, ${r.stateType}::text, ${iso(r.at)}::timestamptz, ${recordText(r.state, r.stateType, r.at)}::text)`,
    );
    // Ids follow arrival order, so "the newest" is well defined among equal timestamps.
    await db.execute(sql`
      insert into history_records (node_uuid, state, state_type, created_at, answer_text)
      select v.node, v.state, v.type, v.at, v.text
      from (values ${sql.join(values, sql`, `)}) as v(ord, node, state, type, at, text)
      where exists (select 1 from unit_nodes n where n.uuid = v.node)
      order by v.ord`);
  }
}

/**
 * A record as the API answers it, as JSON text: what pageTextInDatabase builds with
 * to_json and to_char, byte for byte (JSON.stringify escapes what to_json escapes; the
 * stored time has whole milliseconds).
 */
export function recordText(state: string, stateType: string, atMs: number): string {
  return `{"state":${JSON.stringify(state)},"state_type":${JSON.stringify(stateType)},"create_datetime":"${new Date(atMs).toISOString()}"}`;
}

export async function insertWindowValues(db: DbLike, rows: WindowValueRow[]): Promise<void> {
  for (const part of chunks(rows)) {
    const values = part.map(
      (r) =>
        sql`(${r.nodeUuid}::uuid, ${r.fn}::text, ${r.windowSize}::int, ${iso(r.windowStart)}::timestamptz, ${iso(r.windowEnd)}::timestamptz, ${r.value}::float8)`,
    );
    await db.execute(sql`
      insert into history_window_values
        (node_uuid, aggregation_type, window_size, window_start, window_end, value)
      select v.node, v.fn, v.size, v.ws, v.we, v.value
      from (values ${sql.join(values, sql`, `)}) as v(node, fn, size, ws, we, value)
      where exists (select 1 from unit_nodes n where n.uuid = v.node)`);
  }
}

export async function insertAggregates(db: DbLike, rows: AggregateRow[]): Promise<void> {
  for (const part of chunks(rows)) {
    await db
      .insert(historyAggregates)
      .values(
        part.map((r) => ({
          nodeUuid: r.nodeUuid,
          aggregationType: r.fn,
          timeWindowSize: r.windowSize,
          state: r.state,
          startWindow: new Date(r.start),
          endWindow: new Date(r.end),
          createdAt: new Date(r.at),
        })),
      )
      .onConflictDoNothing();
  }
}

/** An imported history instead of the variable's records (call inside a transaction). */
export async function replaceRecords(db: DbLike, nodeUuid: string, rows: RecordRow[]) {
  await db.delete(historyRecords).where(eq(historyRecords.nodeUuid, nodeUuid));
  await insertRecords(db, rows);
}

/** Imported closed windows instead of the variable's (call inside a transaction). */
export async function replaceAggregates(db: DbLike, nodeUuid: string, rows: AggregateRow[]) {
  await db.delete(historyAggregates).where(eq(historyAggregates.nodeUuid, nodeUuid));
  await insertAggregates(db, rows);
}

/**
 * Keeps the newest `keep` records of each variable. First each variable's cutoff (its
 * keep-th newest record) is read once through the (node, time, id) index; then the
 * older rows are deleted per variable through the same index. In one statement (the
 * cutoff as a correlated subquery, or even as a lateral join) the planner ran the
 * subquery per stored record or hashed the whole table: seconds per flush, not ms.
 * Answers how many records each variable holds afterwards (the writer trims a variable
 * again only when its new records could take it past `keep`).
 */
export async function trimToNewest(
  db: DbLike,
  limits: Array<{ nodeUuid: string; keep: number }>,
): Promise<Map<string, number>> {
  const kept = new Map<string, number>();
  for (const part of chunks(limits)) {
    const values = part.map((l) => sql`(${l.nodeUuid}::uuid, ${l.keep}::int)`);
    // Counting stops at keep + 1; the cutoff is looked for only where that is reached.
    const found = await db.execute(sql`
      select v.node::text as node, least(n.n, v.keep) as n, c.id::text as id,
        to_char(c.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as at
      from (values ${sql.join(values, sql`, `)}) as v(node, keep)
      cross join lateral (
        select count(*)::int as n from (
          select 1 from history_records x where x.node_uuid = v.node limit v.keep + 1) s) n
      left join lateral (
        select x.created_at, x.id from history_records x
        where x.node_uuid = v.node and n.n > v.keep
        order by x.created_at desc, x.id desc
        offset v.keep - 1 limit 1) c on true`);
    const counted = rowsOf<{ node: string; n: number; id: string | null; at: string | null }>(
      found,
    );
    for (const c of counted) kept.set(c.node, Number(c.n));
    const cutoffs = counted.filter((c) => c.id !== null && c.at !== null);
    if (!cutoffs.length) continue;
    const rows = cutoffs.map((c) => sql`(${c.node}::uuid, ${c.at}::timestamptz, ${c.id}::bigint)`);
    await db.execute(sql`
      delete from history_records r
      using (values ${sql.join(rows, sql`, `)}) as v(node, at, id)
      where r.node_uuid = v.node and r.created_at <= v.at
        and (r.created_at, r.id) < (v.at, v.id)`);
  }
  return kept;
}

/** Drops each variable's records at or before its cutoff (TimeWindow keeps newer ones). */
export async function trimOlderThan(
  db: DbLike,
  cutoffs: Array<{ nodeUuid: string; cutoff: number }>,
): Promise<void> {
  for (const part of chunks(cutoffs)) {
    const values = part.map((c) => sql`(${c.nodeUuid}::uuid, ${iso(c.cutoff)}::timestamptz)`);
    await db.execute(sql`
      delete from history_records r
      using (values ${sql.join(values, sql`, `)}) as v(node, cutoff)
      where r.node_uuid = v.node and r.created_at <= v.cutoff`);
  }
}

/** Everything recorded for a variable: records, closed windows, open windows. */
export async function deleteHistory(db: DbLike, nodeUuid: string): Promise<void> {
  await db.delete(historyRecords).where(eq(historyRecords.nodeUuid, nodeUuid));
  await db.delete(historyAggregates).where(eq(historyAggregates.nodeUuid, nodeUuid));
  await db.delete(historyWindowValues).where(eq(historyWindowValues.nodeUuid, nodeUuid));
}

export type RangeFilter = {
  nodeUuid: string;
  from?: number | undefined;
  to?: number | undefined;
  /** Aggregation only. */
  aggregationType?: AggregationFunction | undefined;
  windowSize?: number | undefined;
};
export type Page = { order: "asc" | "desc"; limit: number; offset: number };

function recordWhere(f: RangeFilter): SQL | undefined {
  return and(
    eq(historyRecords.nodeUuid, f.nodeUuid),
    f.from !== undefined ? gte(historyRecords.createdAt, new Date(f.from)) : undefined,
    f.to !== undefined ? lte(historyRecords.createdAt, new Date(f.to)) : undefined,
  );
}

function aggregateWhere(f: RangeFilter): SQL | undefined {
  return and(
    eq(historyAggregates.nodeUuid, f.nodeUuid),
    f.from !== undefined ? gte(historyAggregates.createdAt, new Date(f.from)) : undefined,
    f.to !== undefined ? lte(historyAggregates.createdAt, new Date(f.to)) : undefined,
    f.aggregationType ? eq(historyAggregates.aggregationType, f.aggregationType) : undefined,
    f.windowSize ? eq(historyAggregates.timeWindowSize, f.windowSize) : undefined,
  );
}

export type RecordOut = { state: string; stateType: HistoryStateType; at: Date; id: number };
export type AggregateOut = {
  state: number;
  aggregationType: AggregationFunction;
  windowSize: number;
  at: Date;
  start: Date;
  end: Date;
  id: number;
};

const recordColumns = {
  state: historyRecords.state,
  stateType: historyRecords.stateType,
  at: historyRecords.createdAt,
  id: historyRecords.id,
};

const aggregateColumns = {
  state: historyAggregates.state,
  aggregationType: historyAggregates.aggregationType,
  windowSize: historyAggregates.timeWindowSize,
  at: historyAggregates.createdAt,
  start: historyAggregates.startWindow,
  end: historyAggregates.endWindow,
  id: historyAggregates.id,
};

/** A record as the API answers it; SQL builds it so 10 000 rows cost Node no Date work. */
const isoText = (column: SQL) =>
  sql`to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/**
 * One page of records as the JSON text of the answer's `pipe_data` elements joined with
 * "," (the array's inside), yielded as one piece, or none for an empty page; the
 * generator's return value is the answer's `count`. The database joins the texts stored
 * with the records (see insertRecords), so Node holds one buffer and no row objects per
 * read: 10 000 row objects alive while a read was in flight were copied and promoted by
 * each young-generation GC (20 ms scavenges, then full mark-compacts: the reads' tail
 * latency). The piece stays the bytes the database answered (see Database.rawRows): no
 * string of it is ever on the JS heap.
 */
export async function* pageRecordsText(
  database: Pick<Database, "db" | "rawRows">,
  f: RangeFilter,
  p: Page,
): AsyncGenerator<Uint8Array, number> {
  const page = await pageInDatabase(database, f, p);
  yield* page.pieces;
  if (page.fetched <= p.limit && (page.fetched > 0 || p.offset === 0)) {
    return p.offset + page.fetched;
  }
  const [total] = await database.db
    .select({ n: count() })
    .from(historyRecords)
    .where(recordWhere(f));
  return total?.n ?? 0;
}

/**
 * The page in one query. The aggregate reads the sorted, limited subquery in its order
 * (an `order by` inside string_agg sorts the page again: half the query's time); records
 * stored before their texts were (older rows) are formatted by the query. One row beyond
 * the page is fetched: it tells whether the page reaches the end, and is cut off.
 */
async function pageInDatabase(
  database: Pick<Database, "db" | "rawRows">,
  f: RangeFilter,
  p: Page,
): Promise<{ fetched: number; pieces: Uint8Array[] }> {
  const dir = p.order === "asc" ? sql`asc` : sql`desc`;
  const query = sql`
    select count(*)::int as rows,
      string_agg(coalesce(answer_text, '{"state":' || to_json(state)::text || ',"state_type":"'
        || state_type || '","create_datetime":"' || ${isoText(sql`created_at`)} || '"}'), ',') as json
    from (
      select state, state_type, created_at, answer_text
      from history_records where ${recordWhere(f)}
      order by created_at ${dir}, id ${dir}
      limit ${p.limit + 1} offset ${p.offset}) page`;
  const [row] = await database.rawRows(query);
  const fetched = Number(row?.[0]?.toString("latin1") ?? 0);
  let json = row?.[1] ?? null;
  if (!json || fetched === 0) return { fetched, pieces: [] };
  // `,{"state":` cannot occur inside an element, where JSON escapes every quote.
  if (fetched > p.limit) {
    const cut = json.lastIndexOf(ELEMENT_START);
    if (cut > 0) json = json.subarray(0, cut);
  }
  return { fetched, pieces: [json] };
}

const ELEMENT_START = Buffer.from(',{"state":');

export async function pageAggregates(db: DbLike, f: RangeFilter, p: Page) {
  const where = aggregateWhere(f);
  const [total] = await db.select({ n: count() }).from(historyAggregates).where(where);
  const dir = p.order === "asc" ? asc : desc;
  const rows: AggregateOut[] = await db
    .select(aggregateColumns)
    .from(historyAggregates)
    .where(where)
    .orderBy(dir(historyAggregates.createdAt), dir(historyAggregates.id))
    .limit(p.limit)
    .offset(p.offset);
  return { count: total?.n ?? 0, rows };
}

type Span = { from: number; to: number };

/** The time range to spread `max_points` over: the asked one, completed by the data's own. */
async function spanOf(
  db: DbLike,
  table: "history_records" | "history_aggregates",
  where: SQL | undefined,
  f: RangeFilter,
): Promise<Span | null> {
  if (f.from !== undefined && f.to !== undefined) return { from: f.from, to: f.to };
  const t = table === "history_records" ? historyRecords : historyAggregates;
  const [r] = await db
    .select({
      min: sql<string | null>`min(${t.createdAt})`,
      max: sql<string | null>`max(${t.createdAt})`,
    })
    .from(t)
    .where(where);
  if (!r?.min || !r.max) return null;
  return { from: f.from ?? new Date(r.min).getTime(), to: f.to ?? new Date(r.max).getTime() };
}

/** Bucket index of a row's time over `span` split in `n` equal parts (SQL expression). */
function bucket(span: Span, n: number): SQL {
  const width = Math.max(1, (span.to - span.from) / n);
  return sql`least(floor((extract(epoch from created_at) * 1000 - ${span.from}::float8) / ${width}::float8), ${n - 1})::int`;
}

type RecordBucket = {
  num: number | null;
  all_numbers: boolean;
  last: string;
  at: string | Date;
  id: string | number;
};

/**
 * At most `n` points evenly spread over the range: numbers are averaged per bucket, text
 * keeps the bucket's last value; each point carries the time of the bucket's last record.
 */
export async function downsampleRecords(
  db: DbLike,
  f: RangeFilter,
  n: number,
): Promise<RecordOut[]> {
  const where = recordWhere(f);
  const span = await spanOf(db, "history_records", where, f);
  if (!span) return [];
  const result = await db.execute(sql`
    select avg(case when state_type = 'Number' then state::float8 end) as num,
      bool_and(state_type = 'Number') as all_numbers,
      (array_agg(state order by created_at desc, id desc))[1] as last,
      max(created_at) as at, max(id) as id
    from (select *, ${bucket(span, n)} as b from history_records where ${where}) r
    group by b order by b`);
  return rowsOf<RecordBucket>(result).map((r) => ({
    state: r.all_numbers && r.num !== null ? String(Number(r.num)) : r.last,
    stateType: r.all_numbers ? "Number" : "Text",
    at: new Date(r.at),
    id: Number(r.id),
  }));
}

type AggregateBucket = {
  state: number;
  fn: AggregationFunction;
  size: number;
  at: string | Date;
  start: string | Date;
  end: string | Date;
  id: string | number;
};

export async function downsampleAggregates(
  db: DbLike,
  f: RangeFilter,
  n: number,
): Promise<AggregateOut[]> {
  const where = aggregateWhere(f);
  const span = await spanOf(db, "history_aggregates", where, f);
  if (!span) return [];
  const result = await db.execute(sql`
    select avg(state) as state, min(aggregation_type) as fn, min(time_window_size) as size,
      max(created_at) as at, min(start_window) as start, max(end_window) as end, max(id) as id
    from (select *, ${bucket(span, n)} as b from history_aggregates where ${where}) r
    group by b order by b`);
  return rowsOf<AggregateBucket>(result).map((r) => ({
    state: Number(r.state),
    aggregationType: r.fn,
    windowSize: Number(r.size),
    at: new Date(r.at),
    start: new Date(r.start),
    end: new Date(r.end),
    id: Number(r.id),
  }));
}

/** One batch of rows after `afterId` in time order, for streaming a CSV export. */
export async function recordsAfter(
  db: DbLike,
  nodeUuid: string,
  after: { at: Date; id: number } | null,
  limit: number,
) {
  return db
    .select(recordColumns)
    .from(historyRecords)
    .where(
      and(
        eq(historyRecords.nodeUuid, nodeUuid),
        after
          ? sql`(${historyRecords.createdAt}, ${historyRecords.id}) > (${after.at.toISOString()}::timestamptz, ${after.id})`
          : undefined,
      ),
    )
    .orderBy(asc(historyRecords.createdAt), asc(historyRecords.id))
    .limit(limit);
}

export async function aggregatesAfter(
  db: DbLike,
  nodeUuid: string,
  after: { at: Date; id: number } | null,
  limit: number,
): Promise<AggregateOut[]> {
  return db
    .select(aggregateColumns)
    .from(historyAggregates)
    .where(
      and(
        eq(historyAggregates.nodeUuid, nodeUuid),
        after
          ? sql`(${historyAggregates.createdAt}, ${historyAggregates.id}) > (${after.at.toISOString()}::timestamptz, ${after.id})`
          : undefined,
      ),
    )
    .orderBy(asc(historyAggregates.createdAt), asc(historyAggregates.id))
    .limit(limit);
}
