import type { AggregationFunction, HistoryStateType } from "../db/schema.ts";
import type { DataPipeConfig } from "./data-pipe-config.ts";
import { windowOf } from "./window-aggregator.ts";

// One value through a variable's data pipe: active_period → filters → transformations →
// processing policy. Pure apart from the per-variable memory the filters need (the last
// accepted value and when), so it runs inside the history writer's batch and in tests.

/** What max_rate and last_unique_check compare against; kept per variable by the writer. */
export type PipeMemory = { lastAcceptedAt: number | null; lastAcceptedValue: string | null };

export type PipeOutcome =
  | { kind: "dropped"; stage: "ActivePeriod" | "Filters" }
  | { kind: "record"; state: string; stateType: HistoryStateType }
  | {
      kind: "window";
      value: number;
      fn: AggregationFunction;
      windowSize: number;
      windowStart: number;
      windowEnd: number;
    };

export function isInActivePeriod(period: DataPipeConfig["activePeriod"], atMs: number): boolean {
  if (period.start !== undefined && atMs < period.start) return false;
  if (period.end !== undefined && atMs > period.end) return false;
  return true;
}

/** A Number value as text: a finite decimal (surrounding blanks allowed), else undefined. */
export function parseNumber(text: string): number | undefined {
  const t = text.trim();
  if (!t || !/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) return undefined;
  const n = Number(t);
  // Subnormal numbers are refused: PostgreSQL's float8 input rejects them as out of range.
  if (!Number.isFinite(n) || (n !== 0 && Math.abs(n) < 2.3e-308)) return undefined;
  return n;
}

/**
 * The value filters apart from max_rate and last_unique_check (those need the variable's
 * memory): type, size, white/black list, threshold. Shared with the CSV import's row checks.
 */
export function valueFilterError(filters: DataPipeConfig["filters"], raw: string): string | null {
  if (filters.maxSize > 0 && Buffer.byteLength(raw) > filters.maxSize) {
    return `value is longer than max_size (${filters.maxSize} bytes)`;
  }
  const num = filters.type === "Number" ? parseNumber(raw) : undefined;
  if (filters.type === "Number" && num === undefined) return "value is not a number";
  const list = filters.valueFiltering;
  if (list) {
    const listed = list.values.some((v) => (typeof v === "number" ? v === num : v === raw));
    if (list.type === "WhiteList" && !listed) return "value is not in the white list";
    if (list.type === "BlackList" && listed) return "value is in the black list";
  }
  const th = filters.threshold;
  if (th && num !== undefined) {
    if (th.min !== undefined && num < th.min) return "value is below threshold_min";
    if (th.max !== undefined && num > th.max) return "value is above threshold_max";
  }
  return null;
}

function roundTo(n: number, digits: number): string {
  // toFixed rounds the binary value (1.005 → "1.00"); scaling first rounds as written.
  const scaled = Math.round(Number(`${n}e${digits}`));
  if (!Number.isFinite(scaled)) return n.toFixed(digits); // n already in exponent form
  return Number(`${scaled}e-${digits}`).toFixed(digits);
}

/** Python-style slice [start:end] on characters (negative counts from the end). */
function slice(text: string, start: number | undefined, end: number | undefined): string {
  const chars = Array.from(text);
  const at = (i: number) => (i < 0 ? Math.max(0, chars.length + i) : Math.min(i, chars.length));
  const s = start === undefined ? 0 : at(start);
  const e = end === undefined ? chars.length : at(end);
  return s < e ? chars.slice(s, e).join("") : "";
}

export function transform(config: DataPipeConfig, raw: string): string {
  const t = config.transformations;
  if (config.filters.type === "Text") {
    return t.sliceStart !== undefined || t.sliceEnd !== undefined
      ? slice(raw, t.sliceStart, t.sliceEnd)
      : raw;
  }
  let n = parseNumber(raw) as number;
  if (t.multiplicationRatio !== undefined) n *= t.multiplicationRatio;
  if (t.roundDecimalPoint !== undefined) return roundTo(n, t.roundDecimalPoint);
  // The number's canonical form ("1e3" → "1000"), which PostgreSQL reads back as float8.
  return String(n);
}

/** Runs one value seen at `atMs`; updates `memory` when the value is accepted. */
export function runPipe(
  config: DataPipeConfig,
  memory: PipeMemory,
  raw: string,
  atMs: number,
): PipeOutcome {
  if (!isInActivePeriod(config.activePeriod, atMs))
    return { kind: "dropped", stage: "ActivePeriod" };
  const f = config.filters;
  if (valueFilterError(f, raw)) return { kind: "dropped", stage: "Filters" };
  if (
    f.maxRate > 0 &&
    memory.lastAcceptedAt !== null &&
    atMs - memory.lastAcceptedAt < f.maxRate * 1000
  ) {
    return { kind: "dropped", stage: "Filters" };
  }
  if (f.lastUniqueCheck && memory.lastAcceptedValue === raw)
    return { kind: "dropped", stage: "Filters" };
  memory.lastAcceptedAt = atMs;
  memory.lastAcceptedValue = raw;
  const state = transform(config, raw);
  const policy = config.policy;
  if (policy.type !== "Aggregation") return { kind: "record", state, stateType: f.type };
  const w = windowOf(atMs, policy.windowSize);
  return {
    kind: "window",
    value: Number(state),
    fn: policy.fn,
    windowSize: policy.windowSize,
    windowStart: w.start,
    windowEnd: w.end,
  };
}
