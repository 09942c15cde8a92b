// The variable pop-up's History: which query a chosen range makes, how polled records
// join what is shown, how a record list becomes chart series, what the CSV download is
// called, and how a config check's errors are grouped by stage. Pure functions, so
// test/web/ checks them in Node.

export type RelativeRange = "1h" | "24h" | "7d";
export const RELATIVE_RANGES: readonly RelativeRange[] = ["1h", "24h", "7d"];
const RANGE_MS: Record<RelativeRange, number> = {
  "1h": 3_600_000,
  "24h": 86_400_000,
  "7d": 7 * 86_400_000,
};

export type HistoryRange =
  | { kind: "relative"; span: RelativeRange }
  | { kind: "custom"; start: string; end: string };

/** At most this many points per chart: a week of raw values stays light to fetch and draw. */
export const MAX_POINTS = 500;

/** One row of GET /unit_nodes/get_data_pipe_data (a record or a closed window). */
export type HistoryRow = {
  state: string | number;
  create_datetime: string;
  state_type?: "Number" | "Text";
};

export type HistoryQuery = Record<string, string | number>;

/**
 * The query for a range. Custom bounds come from <input type="datetime-local"> (local
 * time, no zone) and are sent as ISO 8601 UTC. Returns an error sentence for a bad range.
 */
export function rangeQuery(
  uuid: string,
  range: HistoryRange,
  maxPoints = MAX_POINTS,
): { query: HistoryQuery } | { error: string } {
  const base = { uuid, max_points: maxPoints, order_by_create_date: "asc" };
  if (range.kind === "relative") return { query: { ...base, relative_time: range.span } };
  const start = range.start ? new Date(range.start) : null;
  const end = range.end ? new Date(range.end) : null;
  if (!start || Number.isNaN(start.getTime())) return { error: "Choose when the range starts." };
  if (end && Number.isNaN(end.getTime())) return { error: "The end is not a valid date." };
  if (end && end <= start) return { error: "The end must be after the start." };
  return {
    query: {
      ...base,
      start_create_datetime: start.toISOString(),
      ...(end ? { end_create_datetime: end.toISOString() } : {}),
    },
  };
}

/** A time as <input type="datetime-local"> shows it: local, to the minute. */
export function toLocalInput(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** Whether new records can still fall into the range (a custom range ending in the past cannot). */
export function rangeIsLive(range: HistoryRange, now: number): boolean {
  if (range.kind === "relative") return true;
  const end = range.end ? new Date(range.end).getTime() : Number.NaN;
  return Number.isNaN(end) || end > now;
}

/** The query for records newer than the last one shown (the server's bound is inclusive). */
export function newerQuery(uuid: string, last: HistoryRow | undefined): HistoryQuery {
  return {
    uuid,
    order_by_create_date: "asc",
    limit: 1000,
    ...(last ? { start_create_datetime: last.create_datetime } : { relative_time: "1h" }),
  };
}

/**
 * `shown` with the polled rows appended. Only rows after the last shown one count: the
 * server's bound is inclusive, and a downsampled point carries the time of its bucket's
 * last record, which would come back as a second point at the same time. (Two records in
 * the same millisecond: the second shows after the next reload.) For a relative range,
 * rows that slid out of it are dropped.
 */
export function appendNewer(
  shown: HistoryRow[],
  polled: HistoryRow[],
  range: HistoryRange,
  now: number,
): HistoryRow[] {
  const last = shown.at(-1);
  const lastAt = last ? Date.parse(last.create_datetime) : -Infinity;
  const fresh = polled.filter((r) => Date.parse(r.create_datetime) > lastAt);
  if (!fresh.length) return shown;
  let out = [...shown, ...fresh];
  if (range.kind === "relative") {
    const from = now - RANGE_MS[range.span];
    const firstKept = out.findIndex((r) => Date.parse(r.create_datetime) >= from);
    out = firstKept < 0 ? [] : out.slice(firstKept);
  }
  return out;
}

/** Whether the history holds text (shown as a table) rather than numbers (a chart). */
export function isTextHistory(rows: HistoryRow[]): boolean {
  return rows.some((r) => r.state_type === "Text");
}

/** uPlot's data: x in seconds since the epoch, y numbers (null where a state is not one). */
export function toSeries(rows: HistoryRow[]): [number[], Array<number | null>] {
  const xs: number[] = [];
  const ys: Array<number | null> = [];
  for (const r of rows) {
    xs.push(Date.parse(r.create_datetime) / 1000);
    const y = typeof r.state === "number" ? r.state : Number(r.state);
    ys.push(Number.isFinite(y) ? y : null);
  }
  return [xs, ys];
}

/** A file-name-safe piece: letters, digits, dot, dash, underscore. */
const safe = (s: string) =>
  s
    .replace(/[^A-Za-z0-9._-]+/g, "_")
    .replace(/^[._]+|_+$/g, "")
    .slice(0, 60) || "variable";

/** The CSV download's name: unit, variable, the day (UTC), e.g. `greenhouse_temperature_2026-01-31.csv`. */
export function csvFileName(unitName: string, topicName: string, at: Date): string {
  return `${safe(unitName)}_${safe(topicName)}_${at.toISOString().slice(0, 10)}.csv`;
}

export type DataPipeStage =
  | "Yaml"
  | "ActivePeriod"
  | "Filters"
  | "Transformations"
  | "ProcessingPolicy";
export type DataPipeError = { stage: DataPipeStage; message: string };

export const STAGE_ORDER: readonly DataPipeStage[] = [
  "Yaml",
  "ActivePeriod",
  "Filters",
  "Transformations",
  "ProcessingPolicy",
];
export const STAGE_LABELS: Record<DataPipeStage, string> = {
  Yaml: "YAML",
  ActivePeriod: "Active period",
  Filters: "Filters",
  Transformations: "Transformations",
  ProcessingPolicy: "Processing policy",
};

/** The errors by stage, in the pipe's order; stages without errors are left out. */
export function groupByStage(
  errors: DataPipeError[],
): Array<{ stage: DataPipeStage; label: string; messages: string[] }> {
  return STAGE_ORDER.map((stage) => ({
    stage,
    label: STAGE_LABELS[stage],
    messages: errors.filter((e) => e.stage === stage).map((e) => e.message),
  })).filter((g) => g.messages.length > 0);
}

/** Whether a 422's detail is a config's error list (set_data_pipe_config), not a request error. */
export function isStageErrorList(detail: unknown): detail is DataPipeError[] {
  return (
    Array.isArray(detail) &&
    detail.length > 0 &&
    detail.every(
      (d) =>
        typeof d === "object" &&
        d !== null &&
        STAGE_ORDER.includes((d as DataPipeError).stage) &&
        typeof (d as DataPipeError).message === "string",
    )
  );
}

/** A starting config for a variable without one: the last 1 024 numbers. */
export const EXAMPLE_CONFIG = `active_period:
  type: Permanent
filters:
  type_input_value: Number
processing_policy:
  policy_type: NRecords
  n_records_count: 1024
`;
