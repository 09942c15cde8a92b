import { parseDocument } from "yaml";
import type { AggregationFunction, HistoryStateType } from "../db/schema.ts";

// A variable's data pipe config: the YAML of Pepeunit's data pipes (same keys and enum
// values, so a config can be pasted from there), checked stage by stage. Every error is
// reported at once, each with the stage it belongs to. Keys Pepeunit ignores (a threshold
// on a Text value, slicing a Number) are ignored here too: a valid Pepeunit config stays valid.

export type DataPipeStage =
  | "Yaml"
  | "ActivePeriod"
  | "Filters"
  | "Transformations"
  | "ProcessingPolicy";
export type DataPipeError = { stage: DataPipeStage; message: string };

export type PolicyType = "LastValue" | "NRecords" | "TimeWindow" | "Aggregation";
export const POLICY_TYPES: readonly PolicyType[] = [
  "LastValue",
  "NRecords",
  "TimeWindow",
  "Aggregation",
];
export const AGGREGATION_FUNCTIONS: readonly AggregationFunction[] = [
  "Avg",
  "Min",
  "Max",
  "Sum",
  "Median",
];
export const TIME_WINDOW_SIZES = [60, 300, 600, 1800, 3600, 10800, 21600, 43200, 86400] as const;
export const MAX_N_RECORDS = 1024;

export type DataPipeConfig = {
  activePeriod: {
    type: "Permanent" | "FromDate" | "ToDate" | "DateRange";
    start?: number;
    end?: number;
  };
  filters: {
    type: HistoryStateType;
    valueFiltering?: { type: "WhiteList" | "BlackList"; values: Array<number | string> };
    threshold?: { type: "Min" | "Max" | "Range"; min?: number; max?: number };
    /** Seconds between accepted values; 0 = no limit. */
    maxRate: number;
    lastUniqueCheck: boolean;
    /** Bytes; 0 = no limit. */
    maxSize: number;
  };
  transformations: {
    multiplicationRatio?: number;
    roundDecimalPoint?: number;
    sliceStart?: number;
    sliceEnd?: number;
  };
  policy:
    | { type: "LastValue" }
    | { type: "NRecords"; count: number }
    | { type: "TimeWindow"; windowSize: number }
    | { type: "Aggregation"; windowSize: number; fn: AggregationFunction };
};

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const isInt = (v: unknown): v is number => Number.isInteger(v);

/** One stage's reader: pushes its errors, returns its part when it has none. */
class StageReader {
  readonly errors: DataPipeError[] = [];
  readonly stage: DataPipeStage;
  readonly obj: Obj;
  constructor(stage: DataPipeStage, obj: Obj) {
    this.stage = stage;
    this.obj = obj;
  }
  fail(message: string) {
    this.errors.push({ stage: this.stage, message });
  }
  oneOf<T extends string>(key: string, values: readonly T[], required: boolean): T | undefined {
    const v = this.obj[key];
    if (v === undefined || v === null) {
      if (required) this.fail(`${key} is required (one of ${values.join(", ")})`);
      return undefined;
    }
    if (typeof v !== "string" || !values.includes(v as T)) {
      this.fail(`${key} must be one of ${values.join(", ")}`);
      return undefined;
    }
    return v as T;
  }
  int(key: string, min: number, max: number): number | undefined {
    const v = this.obj[key];
    if (v === undefined || v === null) return undefined;
    if (!isInt(v) || (v as number) < min || (v as number) > max) {
      this.fail(`${key} must be an integer from ${min} to ${max}`);
      return undefined;
    }
    return v as number;
  }
  num(key: string): number | undefined {
    const v = this.obj[key];
    if (v === undefined || v === null) return undefined;
    if (!isNum(v)) {
      this.fail(`${key} must be a number`);
      return undefined;
    }
    return v;
  }
  bool(key: string): boolean {
    const v = this.obj[key];
    if (v === undefined || v === null) return false;
    if (typeof v !== "boolean") this.fail(`${key} must be true or false`);
    return v === true;
  }
  date(key: string): number | undefined {
    const v = this.obj[key];
    if (v === undefined || v === null) return undefined;
    const ms =
      v instanceof Date ? v.getTime() : typeof v === "string" ? parseIsoDate(v) : Number.NaN;
    if (Number.isNaN(ms)) {
      this.fail(`${key} must be an ISO 8601 date-time`);
      return undefined;
    }
    return ms;
  }
}

/** ISO 8601 date or date-time (no zone = UTC); NaN when it is not one. */
export function parseIsoDate(text: string): number {
  const t = text.trim();
  if (!/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/i.test(t)) {
    return Number.NaN;
  }
  const zoned = /(Z|[+-]\d{2}:?\d{2})$/i.test(t) || t.length === 10 ? t : `${t}Z`;
  const ms = Date.parse(zoned.replace(" ", "T"));
  // Years 1–9999 only: what both JavaScript's ISO form and PostgreSQL agree on.
  return ms >= MIN_DATE_MS && ms <= MAX_DATE_MS ? ms : Number.NaN;
}

/** 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z. */
export const MIN_DATE_MS = -62135596800000;
export const MAX_DATE_MS = 253402300799999;

function section(root: Obj, key: string, stage: DataPipeStage, required: boolean) {
  const v = root[key];
  const reader = new StageReader(stage, isObj(v) ? v : {});
  if (v === undefined || v === null) {
    if (required) reader.fail(`${key} is required`);
  } else if (!isObj(v)) {
    reader.fail(`${key} must be a mapping`);
  }
  return reader;
}

function readActivePeriod(r: StageReader): DataPipeConfig["activePeriod"] {
  const type = r.oneOf("type", ["Permanent", "FromDate", "ToDate", "DateRange"] as const, true);
  const start = r.date("start");
  const end = r.date("end");
  if ((type === "FromDate" || type === "DateRange") && start === undefined && !("start" in r.obj)) {
    r.fail(`start is required for ${type}`);
  }
  if ((type === "ToDate" || type === "DateRange") && end === undefined && !("end" in r.obj)) {
    r.fail(`end is required for ${type}`);
  }
  if (type === "DateRange" && start !== undefined && end !== undefined && start >= end) {
    r.fail("start must be before end for DateRange");
  }
  return {
    type: type ?? "Permanent",
    ...(start !== undefined && type !== "ToDate" && type !== "Permanent" ? { start } : {}),
    ...(end !== undefined && type !== "FromDate" && type !== "Permanent" ? { end } : {}),
  };
}

function readFilters(r: StageReader, maxPayloadBytes: number): DataPipeConfig["filters"] {
  const type = r.oneOf("type_input_value", ["Number", "Text"] as const, true);
  const filters: DataPipeConfig["filters"] = {
    type: type ?? "Text",
    maxRate: 0,
    lastUniqueCheck: r.bool("last_unique_check"),
    maxSize: 0,
  };
  const listType = r.oneOf("type_value_filtering", ["WhiteList", "BlackList"] as const, false);
  const list = r.obj.filtering_values;
  if (listType) {
    if (!Array.isArray(list)) {
      r.fail(`filtering_values (a list) is required for ${listType}`);
    } else if (type === "Number" && !list.every(isNum)) {
      r.fail("filtering_values must be numbers for Number input");
    } else if (type === "Text" && !list.every((x) => typeof x === "string")) {
      r.fail("filtering_values must be strings for Text input");
    } else {
      filters.valueFiltering = { type: listType, values: list as Array<number | string> };
    }
  }
  const threshold = r.oneOf("type_value_threshold", ["Min", "Max", "Range"] as const, false);
  const min = r.num("threshold_min");
  const max = r.num("threshold_max");
  if (threshold && type === "Number") {
    if ((threshold === "Min" || threshold === "Range") && min === undefined) {
      r.fail(`threshold_min is required for ${threshold}`);
    } else if ((threshold === "Max" || threshold === "Range") && max === undefined) {
      r.fail(`threshold_max is required for ${threshold}`);
    } else if (threshold === "Range" && (min as number) >= (max as number)) {
      r.fail("threshold_min must be less than threshold_max for Range");
    } else {
      filters.threshold = {
        type: threshold,
        ...(threshold !== "Max" ? { min } : {}),
        ...(threshold !== "Min" ? { max } : {}),
      };
    }
  }
  filters.maxRate = r.int("max_rate", 0, 86400) ?? 0;
  filters.maxSize = r.int("max_size", 0, maxPayloadBytes) ?? 0;
  return filters;
}

function readTransformations(r: StageReader): DataPipeConfig["transformations"] {
  const multiplicationRatio = r.num("multiplication_ratio");
  const roundDecimalPoint = r.int("round_decimal_point", 0, 7);
  const sliceStart = r.int("slice_start", -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  const sliceEnd = r.int("slice_end", -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  return {
    ...(multiplicationRatio !== undefined ? { multiplicationRatio } : {}),
    ...(roundDecimalPoint !== undefined ? { roundDecimalPoint } : {}),
    ...(sliceStart !== undefined ? { sliceStart } : {}),
    ...(sliceEnd !== undefined ? { sliceEnd } : {}),
  };
}

function readPolicy(
  r: StageReader,
  /** filters.type_input_value is Text (aggregating text is meaningless). */
  textInput: boolean,
): DataPipeConfig["policy"] {
  const type = r.oneOf("policy_type", POLICY_TYPES, true);
  if (type === "NRecords") {
    const count = r.int("n_records_count", 1, MAX_N_RECORDS);
    if (r.obj.n_records_count === undefined) r.fail("n_records_count is required for NRecords");
    return { type, count: count ?? 1 };
  }
  if (type === "TimeWindow" || type === "Aggregation") {
    const size = r.obj.time_window_size;
    let windowSize = 60;
    if (size === undefined || size === null) r.fail(`time_window_size is required for ${type}`);
    else if (!TIME_WINDOW_SIZES.includes(size as (typeof TIME_WINDOW_SIZES)[number])) {
      r.fail(`time_window_size must be one of ${TIME_WINDOW_SIZES.join(", ")}`);
    } else windowSize = size as number;
    if (type === "TimeWindow") return { type, windowSize };
    const fn = r.oneOf("aggregation_functions", AGGREGATION_FUNCTIONS, true);
    if (textInput) r.fail("Aggregation needs type_input_value Number");
    return { type, windowSize, fn: fn ?? "Avg" };
  }
  return { type: "LastValue" };
}

export type ParsedDataPipe =
  | { ok: true; config: DataPipeConfig }
  | { ok: false; errors: DataPipeError[] };

/** Parses and checks a data pipe YAML; `maxPayloadBytes` bounds filters.max_size. */
export function parseDataPipeConfig(yamlText: string, maxPayloadBytes: number): ParsedDataPipe {
  if (yamlText.includes("\u0000")) {
    return {
      ok: false,
      errors: [{ stage: "Yaml", message: "the config contains a NUL character" }],
    };
  }
  let root: unknown;
  try {
    const doc = parseDocument(yamlText, { prettyErrors: false, uniqueKeys: true });
    const first = doc.errors[0];
    if (first) return { ok: false, errors: [{ stage: "Yaml", message: first.message }] };
    root = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    return { ok: false, errors: [{ stage: "Yaml", message: (err as Error).message }] };
  }
  if (!isObj(root)) {
    return { ok: false, errors: [{ stage: "Yaml", message: "the config must be a YAML mapping" }] };
  }
  const active = section(root, "active_period", "ActivePeriod", true);
  const filtersR = section(root, "filters", "Filters", true);
  const transR = section(root, "transformations", "Transformations", false);
  const policyR = section(root, "processing_policy", "ProcessingPolicy", true);
  // A stage that is missing or not a mapping has one error; its keys are not read.
  const ok = (r: StageReader) => r.errors.length === 0;
  const activePeriod = ok(active) ? readActivePeriod(active) : undefined;
  const filters = ok(filtersR) ? readFilters(filtersR, maxPayloadBytes) : undefined;
  const transformations = ok(transR) ? readTransformations(transR) : {};
  const policy = ok(policyR)
    ? readPolicy(policyR, filtersR.obj.type_input_value === "Text")
    : undefined;
  const errors = [active, filtersR, transR, policyR].flatMap((r) => r.errors);
  if (errors.length || !activePeriod || !filters || !policy) return { ok: false, errors };
  return { ok: true, config: { activePeriod, filters, transformations, policy } };
}
