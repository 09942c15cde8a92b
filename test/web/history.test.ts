import { describe, expect, it } from "vitest";
import {
  appendNewer,
  csvFileName,
  groupByStage,
  type HistoryRow,
  isStageErrorList,
  isTextHistory,
  newerQuery,
  rangeIsLive,
  rangeQuery,
  toLocalInput,
  toSeries,
} from "../../web/src/lib/history.ts";

// The variable pop-up's History logic: range → query, polled records joining the chart,
// series, the CSV's name and the config errors by stage.

const UUID = "0b4f3c2e-1111-4222-8333-444455556666";
const row = (iso: string, state: string | number = "1"): HistoryRow => ({
  state,
  create_datetime: iso,
  state_type: "Number",
});

describe("history ranges", () => {
  it("asks for a relative span with max_points, or a custom span in UTC", () => {
    expect(rangeQuery(UUID, { kind: "relative", span: "7d" })).toEqual({
      query: { uuid: UUID, relative_time: "7d", max_points: 500, order_by_create_date: "asc" },
    });
    const start = "2026-03-01T10:00";
    const made = rangeQuery(UUID, { kind: "custom", start, end: "" }, 100);
    expect(made).toEqual({
      query: {
        uuid: UUID,
        start_create_datetime: new Date(start).toISOString(),
        max_points: 100,
        order_by_create_date: "asc",
      },
    });
    const both = rangeQuery(UUID, { kind: "custom", start, end: "2026-03-02T10:00" });
    expect("query" in both && both.query.end_create_datetime).toBe(
      new Date("2026-03-02T10:00").toISOString(),
    );
  });

  it("fills a datetime-local input with a local time that reads back as the same minute", () => {
    const at = Date.parse("2026-03-01T10:07:42Z");
    const shown = toLocalInput(at);
    expect(shown).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d$/);
    expect(new Date(shown).getTime()).toBe(at - 42_000);
  });

  it("refuses a custom range without a start or ending before it", () => {
    expect(rangeQuery(UUID, { kind: "custom", start: "", end: "" })).toHaveProperty("error");
    expect(
      rangeQuery(UUID, { kind: "custom", start: "2026-03-02T10:00", end: "2026-03-01T10:00" }),
    ).toEqual({ error: "The end must be after the start." });
  });

  it("polls only ranges that can still receive records", () => {
    const now = Date.parse("2026-03-05T00:00:00Z");
    expect(rangeIsLive({ kind: "relative", span: "1h" }, now)).toBe(true);
    expect(rangeIsLive({ kind: "custom", start: "2026-03-01T00:00", end: "" }, now)).toBe(true);
    expect(
      rangeIsLive({ kind: "custom", start: "2026-03-01T00:00", end: "2026-03-02T00:00" }, now),
    ).toBe(false);
  });
});

describe("polled records", () => {
  it("asks from the last shown record on", () => {
    expect(newerQuery(UUID, row("2026-03-01T00:00:05.000Z"))).toMatchObject({
      uuid: UUID,
      start_create_datetime: "2026-03-01T00:00:05.000Z",
      order_by_create_date: "asc",
    });
    expect(newerQuery(UUID, undefined)).toMatchObject({ relative_time: "1h" });
  });

  it("appends only what is newer than the last point (the bound is inclusive; a downsampled point has its bucket's last time) and drops what slid out of a relative range", () => {
    const now = Date.parse("2026-03-01T01:00:10Z");
    const shown = [
      row("2026-03-01T00:00:05.000Z", "1"),
      row("2026-03-01T00:30:00.000Z", "2"),
      row("2026-03-01T01:00:00.000Z", "3"),
    ];
    const polled = [
      row("2026-03-01T01:00:00.000Z", "3"),
      row("2026-03-01T01:00:00.000Z", "4"),
      row("2026-03-01T01:00:09.000Z", "5"),
    ];
    const out = appendNewer(shown, polled, { kind: "relative", span: "1h" }, now);
    expect(out.map((r) => r.state)).toEqual(["2", "3", "5"]);
    // Nothing new: the same array (no re-render).
    expect(
      appendNewer(shown, [shown[2] as HistoryRow], { kind: "relative", span: "1h" }, now),
    ).toBe(shown);
    // A custom range keeps everything.
    const custom = { kind: "custom" as const, start: "2026-03-01T00:00", end: "" };
    expect(appendNewer(shown, polled, custom, now)).toHaveLength(4);
  });
});

describe("history display", () => {
  it("turns records and windows into uPlot series (seconds, numbers, null for non-numbers)", () => {
    const [xs, ys] = toSeries([
      row("2026-03-01T00:00:00.000Z", "21.5"),
      { state: 7, create_datetime: "2026-03-01T00:01:00.000Z" },
      row("2026-03-01T00:02:00.000Z", "n/a"),
    ]);
    const t0 = Date.parse("2026-03-01T00:00:00Z") / 1000;
    expect(xs).toEqual([t0, t0 + 60, t0 + 120]);
    expect(ys).toEqual([21.5, 7, null]);
    expect(isTextHistory([row("2026-03-01T00:00:00Z")])).toBe(false);
    expect(isTextHistory([{ ...row("2026-03-01T00:00:00Z"), state_type: "Text" }])).toBe(true);
  });

  it("names the CSV after unit, variable and day, safe for any file system", () => {
    const at = new Date("2026-03-01T23:59:00Z");
    expect(csvFileName("greenhouse", "temperature", at)).toBe(
      "greenhouse_temperature_2026-03-01.csv",
    );
    expect(csvFileName("my unit/1", "output/pepeunit", at)).toBe(
      "my_unit_1_output_pepeunit_2026-03-01.csv",
    );
    expect(csvFileName("../..", "", at)).toBe("variable_variable_2026-03-01.csv");
  });

  it("groups config errors by stage in the pipe's order", () => {
    const errors = [
      { stage: "ProcessingPolicy" as const, message: "policy_type is required" },
      { stage: "Filters" as const, message: "max_rate must be an integer" },
      { stage: "ProcessingPolicy" as const, message: "n_records_count too big" },
    ];
    expect(groupByStage(errors)).toEqual([
      { stage: "Filters", label: "Filters", messages: ["max_rate must be an integer"] },
      {
        stage: "ProcessingPolicy",
        label: "Processing policy",
        messages: ["policy_type is required", "n_records_count too big"],
      },
    ]);
    expect(isStageErrorList(errors)).toBe(true);
    expect(isStageErrorList([{ loc: ["query"], msg: "bad" }])).toBe(false);
    expect(isStageErrorList("nope")).toBe(false);
  });
});
