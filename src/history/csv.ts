import { parse } from "csv-parse";
import { unprocessable } from "../http/errors.ts";
import { type DataPipeConfig, parseIsoDate } from "./data-pipe-config.ts";
import type { AggregateOut, AggregateRow, RecordOut, RecordRow } from "./history.store.ts";
import { isInActivePeriod, parseNumber, valueFilterError } from "./pipe-processor.ts";

// History as CSV: the export's header rows and lines, and the import's row checks. An
// import is checked completely before anything is written; the first bad row fails it
// with its line number.

export const RECORD_COLUMNS = ["state", "state_type", "create_datetime"] as const;
export const AGGREGATE_COLUMNS = [
  "state",
  "aggregation_type",
  "time_window_size",
  "create_datetime",
  "start_window_datetime",
  "end_window_datetime",
] as const;

function cell(value: string): string {
  return /[",\r\n]|^\s|\s$/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

export const csvLine = (cells: string[]) => `${cells.map(cell).join(",")}\n`;

export const recordLine = (r: RecordOut) => csvLine([r.state, r.stateType, r.at.toISOString()]);

export const aggregateLine = (r: AggregateOut) =>
  csvLine([
    String(r.state),
    r.aggregationType,
    String(r.windowSize),
    r.at.toISOString(),
    r.start.toISOString(),
    r.end.toISOString(),
  ]);

export type CsvImport =
  | { kind: "records"; rows: RecordRow[] }
  | { kind: "aggregates"; rows: AggregateRow[] };

const lineError = (line: number, message: string) => unprocessable(`line ${line}: ${message}`);

type Row = Record<string, string>;
type RowCheck = (row: Row, line: number) => void;

function requireColumns(header: string[], needed: readonly string[]) {
  const missing = needed.filter((c) => !header.includes(c));
  if (missing.length) throw lineError(1, `missing column(s) ${missing.join(", ")}`);
}

function dateCell(row: Row, column: string, line: number): number {
  const ms = parseIsoDate(row[column] ?? "");
  if (Number.isNaN(ms)) throw lineError(line, `${column} is not an ISO 8601 date-time`);
  return ms;
}

/** Records (LastValue, NRecords, TimeWindow): what the live pipe would have accepted. */
function recordChecker(
  config: DataPipeConfig,
  nodeUuid: string,
  now: number,
  out: RecordRow[],
): RowCheck {
  const f = config.filters;
  const policy = config.policy;
  const maxRows =
    policy.type === "NRecords" ? policy.count : policy.type === "LastValue" ? 1 : Infinity;
  let previous: RecordRow | undefined;
  return (row, line) => {
    const state = row.state ?? "";
    const at = dateCell(row, "create_datetime", line);
    if (state.includes("\u0000")) throw lineError(line, "state contains a NUL character");
    if (row.state_type !== undefined && row.state_type !== f.type) {
      throw lineError(line, `state_type must be ${f.type}`);
    }
    if (at > now) throw lineError(line, "create_datetime is in the future");
    if (previous && at < previous.at) throw lineError(line, "create_datetime goes back in time");
    if (!isInActivePeriod(config.activePeriod, at)) {
      throw lineError(line, "create_datetime is outside the active period");
    }
    const filtered = valueFilterError(f, state);
    if (filtered) throw lineError(line, filtered);
    // Numbers are kept in their canonical form, as the live pipe keeps them.
    const stored = f.type === "Number" ? String(parseNumber(state)) : state;
    if (previous && f.maxRate > 0 && at - previous.at < f.maxRate * 1000) {
      throw lineError(line, "less than max_rate seconds after the previous row");
    }
    if (previous && f.lastUniqueCheck && previous.state === stored) {
      throw lineError(line, "same state as the previous row (last_unique_check)");
    }
    if (policy.type === "TimeWindow" && at <= now - policy.windowSize * 1000) {
      throw lineError(line, "create_datetime is older than the time window");
    }
    if (out.length >= maxRows) {
      throw lineError(line, `more rows than the policy keeps (${maxRows})`);
    }
    previous = {
      nodeUuid,
      state: stored,
      stateType: f.type,
      at,
    };
    out.push(previous);
  };
}

/** Aggregation: one row per closed, aligned window of the configured size and function. */
function aggregateChecker(
  config: DataPipeConfig,
  nodeUuid: string,
  now: number,
  out: AggregateRow[],
): RowCheck {
  const policy = config.policy;
  if (policy.type !== "Aggregation") throw new Error("not an Aggregation policy");
  const size = policy.windowSize * 1000;
  return (row, line) => {
    const state = parseNumber(row.state ?? "");
    if (state === undefined) throw lineError(line, "state is not a number");
    const start = dateCell(row, "start_window_datetime", line);
    const end = dateCell(row, "end_window_datetime", line);
    const at = row.create_datetime ? dateCell(row, "create_datetime", line) : end;
    if (row.aggregation_type !== undefined && row.aggregation_type !== policy.fn) {
      throw lineError(line, `aggregation_type must be ${policy.fn}`);
    }
    if (row.time_window_size !== undefined && Number(row.time_window_size) !== policy.windowSize) {
      throw lineError(line, `time_window_size must be ${policy.windowSize}`);
    }
    if (end - start !== size || start % size !== 0) {
      throw lineError(line, `the window must be an aligned ${policy.windowSize} s window`);
    }
    if (end > now) throw lineError(line, "the window has not ended yet");
    const previous = out.at(-1);
    if (previous && start <= previous.start)
      throw lineError(line, "windows must be in increasing order");
    out.push({ nodeUuid, fn: policy.fn, windowSize: policy.windowSize, state, start, end, at });
  };
}

/** Reads and checks a whole CSV; throws 422 naming the first bad line. */
export async function readHistoryCsv(
  source: AsyncIterable<Uint8Array>,
  config: DataPipeConfig,
  nodeUuid: string,
  now: number,
): Promise<CsvImport> {
  const aggregation = config.policy.type === "Aggregation";
  const records: RecordRow[] = [];
  const aggregates: AggregateRow[] = [];
  const check = aggregation
    ? aggregateChecker(config, nodeUuid, now, aggregates)
    : recordChecker(config, nodeUuid, now, records);
  const needed = aggregation
    ? ["state", "start_window_datetime", "end_window_datetime"]
    : ["state", "create_datetime"];
  const parser = parse({
    bom: true,
    info: true,
    relax_column_count: false,
    skip_empty_lines: true,
  });
  const feeding = (async () => {
    try {
      for await (const chunk of source) {
        if (parser.destroyed) return; // a bad row already ended the import
        if (!parser.write(chunk)) {
          await new Promise((resolve) => {
            parser.once("drain", resolve);
            parser.once("close", resolve);
          });
        }
      }
      if (!parser.destroyed) parser.end();
    } catch (err) {
      parser.destroy(err as Error);
    }
  })();
  let header: string[] | undefined;
  try {
    for await (const item of parser as AsyncIterable<{
      record: string[];
      info: { lines: number };
    }>) {
      const { record, info } = item;
      if (!header) {
        header = record.map((h) => h.trim());
        requireColumns(header, needed);
        continue;
      }
      const row: Row = {};
      header.forEach((name, i) => {
        row[name] = record[i] ?? "";
      });
      check(row, info.lines);
    }
  } catch (err) {
    parser.destroy();
    await feeding;
    if ((err as { code?: string }).code?.startsWith("CSV_")) {
      const line = (err as { lines?: number }).lines ?? 0;
      throw lineError(line, (err as Error).message);
    }
    throw err;
  }
  await feeding;
  if (!header) throw lineError(1, "the file is empty (a header row is required)");
  return aggregation
    ? { kind: "aggregates", rows: aggregates }
    : { kind: "records", rows: records };
}
