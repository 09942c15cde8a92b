import { describe, expect, it } from "vitest";
import { parseDataPipeConfig } from "../../src/history/data-pipe-config.ts";
import { type PipeMemory, runPipe } from "../../src/history/pipe-processor.ts";
import { windowOf } from "../../src/history/window-aggregator.ts";

// The data pipe without a server: the YAML checks stage by stage, and one value at a
// time through active_period → filters → transformations → policy.

const LIMIT = 262144;

function config(yaml: string) {
  const parsed = parseDataPipeConfig(yaml, LIMIT);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  return parsed.config;
}

const fresh = (): PipeMemory => ({ lastAcceptedAt: null, lastAcceptedValue: null });

/** Runs values (value, seconds) through a pipe; returns the outcomes' states or "-" when dropped. */
function run(yaml: string, values: Array<[string, number]>) {
  const c = config(yaml);
  const memory = fresh();
  return values.map(([v, s]) => {
    const out = runPipe(c, memory, v, Date.UTC(2026, 0, 1) + s * 1000);
    return out.kind === "record" ? out.state : out.kind === "window" ? out.value : "-";
  });
}

const base = (filters: string, extra = "") => `
active_period: {type: Permanent}
filters: {${filters}}
processing_policy: {policy_type: LastValue}
${extra}`;

describe("data pipe config", () => {
  it("accepts a config pasted from Pepeunit", () => {
    const parsed = parseDataPipeConfig(
      `active_period:
  type: ToDate
  end: '2025-11-15T00:00:00+00:00'
filters:
  type_input_value: Number
  type_value_threshold: Range
  threshold_min: 0
  threshold_max: 100
  max_rate: 60
  last_unique_check: false
  max_size: 50
transformations:
  round_decimal_point: 2
processing_policy:
  policy_type: TimeWindow
  time_window_size: 86400
`,
      LIMIT,
    );
    expect(parsed).toMatchObject({
      ok: true,
      config: {
        activePeriod: { type: "ToDate", end: Date.parse("2025-11-15T00:00:00Z") },
        filters: { type: "Number", threshold: { type: "Range", min: 0, max: 100 }, maxRate: 60 },
        transformations: { roundDecimalPoint: 2 },
        policy: { type: "TimeWindow", windowSize: 86400 },
      },
    });
  });

  it("reports every error at once, each with its stage", () => {
    const errors = (yaml: string) => {
      const parsed = parseDataPipeConfig(yaml, LIMIT);
      return parsed.ok ? [] : parsed.errors;
    };
    expect(errors("filters: [unclosed")).toEqual([{ stage: "Yaml", message: expect.any(String) }]);
    expect(errors("- a list")).toEqual([
      { stage: "Yaml", message: expect.stringMatching(/mapping/) },
    ]);
    expect(errors("a: 1\na: 2")).toHaveLength(1);
    expect(errors("a: 1 # \u0000")).toEqual([
      { stage: "Yaml", message: expect.stringMatching(/NUL/) },
    ]);
    expect(
      errors(
        "active_period: {type: FromDate, start: '0000-01-01T00:00:00Z'}\nfilters: {type_input_value: Text}\nprocessing_policy: {policy_type: LastValue}",
      ),
    ).toEqual([{ stage: "ActivePeriod", message: "start must be an ISO 8601 date-time" }]);
    const all = errors(`
active_period: {type: DateRange, start: '2026-02-01T00:00:00Z', end: '2026-01-01T00:00:00Z'}
filters:
  type_input_value: Number
  type_value_filtering: WhiteList
  filtering_values: [1, "two"]
  type_value_threshold: Range
  threshold_min: 5
  threshold_max: 5
  max_rate: 86401
  max_size: ${LIMIT + 1}
transformations: {round_decimal_point: 8, multiplication_ratio: x}
processing_policy: {policy_type: Aggregation, time_window_size: 61}
`);
    expect(all.map((e) => e.stage)).toEqual([
      "ActivePeriod",
      "Filters",
      "Filters",
      "Filters",
      "Filters",
      "Transformations",
      "Transformations",
      "ProcessingPolicy",
      "ProcessingPolicy",
    ]);
    expect(all.map((e) => e.message).join("\n")).toMatch(
      /start must be before end[\s\S]*numbers for Number[\s\S]*less than threshold_max[\s\S]*max_rate[\s\S]*max_size[\s\S]*multiplication_ratio[\s\S]*round_decimal_point[\s\S]*time_window_size[\s\S]*aggregation_functions/,
    );
    expect(errors("filters: {type_input_value: Text}").map((e) => e.stage)).toEqual([
      "ActivePeriod",
      "ProcessingPolicy",
    ]);
    expect(
      errors(`
active_period: {type: FromDate}
filters: {type_input_value: Text, type_value_filtering: BlackList, filtering_values: [1]}
processing_policy: {policy_type: NRecords, n_records_count: 1025}
`).map((e) => e.message),
    ).toEqual([
      "start is required for FromDate",
      "filtering_values must be strings for Text input",
      "n_records_count must be an integer from 1 to 1024",
    ]);
    expect(
      errors(`
active_period: {type: Permanent}
filters: {type_input_value: Text}
processing_policy: {policy_type: Aggregation, time_window_size: 60, aggregation_functions: Median}
`),
    ).toEqual([
      { stage: "ProcessingPolicy", message: "Aggregation needs type_input_value Number" },
    ]);
  });
});

describe("data pipe processing", () => {
  it("applies the active period", () => {
    const jan = (d: number) => `'2026-01-${String(d).padStart(2, "0")}T00:00:00Z'`;
    const pipe = (period: string) =>
      run(
        `active_period: ${period}\nfilters: {type_input_value: Text}\nprocessing_policy: {policy_type: LastValue}`,
        [
          ["a", 0],
          ["b", 86400 * 2],
          ["c", 86400 * 4],
        ],
      );
    expect(pipe(`{type: FromDate, start: ${jan(2)}}`)).toEqual(["-", "b", "c"]);
    expect(pipe(`{type: ToDate, end: ${jan(4)}}`)).toEqual(["a", "b", "-"]);
    expect(pipe(`{type: DateRange, start: ${jan(2)}, end: ${jan(4)}}`)).toEqual(["-", "b", "-"]);
  });

  it("filters by type, list, threshold, rate, uniqueness and size", () => {
    const at = (vs: string[]) => vs.map((v, i): [string, number] => [v, i]);
    expect(
      run(
        base("type_input_value: Number"),
        at(["1", "x", " 2.5 ", "", "1e3", "NaN", "1e-320", "1e999"]),
      ),
    ).toEqual(["1", "-", "2.5", "-", "1000", "-", "-", "-"]);
    expect(
      run(
        base(
          "type_input_value: Number, type_value_filtering: WhiteList, filtering_values: [1, 2.5]",
        ),
        at(["1", "1.0", "3", "2.5"]),
      ),
    ).toEqual(["1", "1", "-", "2.5"]);
    expect(
      run(
        base("type_input_value: Text, type_value_filtering: BlackList, filtering_values: [off]"),
        at(["on", "off", "Off"]),
      ),
    ).toEqual(["on", "-", "Off"]);
    const th = (t: string) =>
      run(base(`type_input_value: Number, ${t}`), at(["-1", "0", "10", "11"]));
    expect(th("type_value_threshold: Min, threshold_min: 0")).toEqual(["-", "0", "10", "11"]);
    expect(th("type_value_threshold: Max, threshold_max: 10")).toEqual(["-1", "0", "10", "-"]);
    expect(th("type_value_threshold: Range, threshold_min: 0, threshold_max: 10")).toEqual([
      "-",
      "0",
      "10",
      "-",
    ]);
    expect(
      run(base("type_input_value: Text, max_rate: 10"), [
        ["a", 0],
        ["b", 9],
        ["c", 10],
        ["d", 15],
      ]),
    ).toEqual(["a", "-", "c", "-"]);
    expect(
      run(base("type_input_value: Text, last_unique_check: true"), at(["a", "a", "b", "a"])),
    ).toEqual(["a", "-", "b", "a"]);
    expect(run(base("type_input_value: Text, max_size: 3"), at(["abc", "abcd", "жж"]))).toEqual([
      "abc",
      "-",
      "-",
    ]);
  });

  it("transforms numbers and text", () => {
    const at = (vs: string[]) => vs.map((v, i): [string, number] => [v, i]);
    expect(
      run(
        base(
          "type_input_value: Number",
          "transformations: {multiplication_ratio: 0.1, round_decimal_point: 2}",
        ),
        at(["215", "1", "10.05"]),
      ),
    ).toEqual(["21.50", "0.10", "1.01"]);
    expect(
      run(
        base("type_input_value: Number", "transformations: {round_decimal_point: 0}"),
        at(["2.5"]),
      ),
    ).toEqual(["3"]);
    expect(
      run(
        base("type_input_value: Text", "transformations: {slice_start: 1, slice_end: -1}"),
        at(["[on]", "x"]),
      ),
    ).toEqual(["on", ""]);
    expect(
      run(base("type_input_value: Text", "transformations: {slice_start: -2}"), at(["hello"])),
    ).toEqual(["lo"]);
  });

  it("aligns aggregation windows to multiples of their size since the epoch", () => {
    const t = Date.UTC(2026, 0, 1, 10, 7, 30);
    expect(windowOf(t, 60)).toEqual({
      start: Date.UTC(2026, 0, 1, 10, 7),
      end: Date.UTC(2026, 0, 1, 10, 8),
    });
    expect(windowOf(t, 300)).toEqual({
      start: Date.UTC(2026, 0, 1, 10, 5),
      end: Date.UTC(2026, 0, 1, 10, 10),
    });
    expect(windowOf(t, 86400)).toEqual({ start: Date.UTC(2026, 0, 1), end: Date.UTC(2026, 0, 2) });
    const c = config(`
active_period: {type: Permanent}
filters: {type_input_value: Number}
transformations: {multiplication_ratio: 2}
processing_policy: {policy_type: Aggregation, time_window_size: 300, aggregation_functions: Median}
`);
    expect(runPipe(c, fresh(), "1.5", t)).toEqual({
      kind: "window",
      value: 3,
      fn: "Median",
      windowSize: 300,
      windowStart: Date.UTC(2026, 0, 1, 10, 5),
      windowEnd: Date.UTC(2026, 0, 1, 10, 10),
    });
  });
});
