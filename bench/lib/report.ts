import { mkdirSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export type Row = {
  suite: string;
  case: string;
  database?: string;
  metric: Record<string, number | string | null>;
  goal?: string;
  met?: boolean | null;
};

/** A case's figures over the runs of `npm run bench` (BENCH_RUNS, 3 by default). */
export type SummaryRow = Row & {
  runs: number;
  /** Numeric figures' [min, max] over the runs; `metric` holds their medians. */
  spread: Record<string, [number, number]>;
  /** How many runs met the goal. */
  metIn?: number;
};

const rows: Array<Row & { run: number }> = [];
let currentRun = 1;

/** Rows recorded from now on belong to this run (1-based). */
export function startRun(run: number): void {
  currentRun = run;
  console.log(`\n## Run ${run}`);
}

export function record(row: Row): void {
  rows.push({ ...row, run: currentRun });
  const status =
    row.met === undefined || row.met === null ? "" : row.met ? "  [goal met]" : "  [GOAL MISSED]";
  const metric = Object.entries(row.metric)
    .map(([k, v]) => `${k}=${v}`)
    .join("  ");
  console.log(`  ${row.case}${row.database ? ` (${row.database})` : ""}: ${metric}${status}`);
}

/** The median, rounded to 3 decimals. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const m =
    sorted.length % 2
      ? (sorted[mid] as number)
      : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  return Math.round(m * 1000) / 1000;
}

/**
 * One row per case: each numeric figure's median over the runs with its min–max, a
 * text figure as the first run's. A goal counts as met when a
 * majority of the runs met it, so one noisy run cannot flip it either way.
 */
export function summarize(): SummaryRow[] {
  const byCase = new Map<string, Array<Row & { run: number }>>();
  for (const r of rows) {
    const key = `${r.suite}\u0000${r.case}\u0000${r.database ?? ""}`;
    const list = byCase.get(key) ?? [];
    list.push(r);
    byCase.set(key, list);
  }
  return [...byCase.values()].map((runs) => {
    const first = runs[0] as Row & { run: number };
    const metric: Row["metric"] = {};
    const spread: SummaryRow["spread"] = {};
    for (const key of Object.keys(first.metric)) {
      const values = runs.map((r) => r.metric[key]);
      const numbers = values.filter(
        (v): v is number => typeof v === "number" && Number.isFinite(v),
      );
      if (numbers.length === values.length && numbers.length > 0) {
        metric[key] = median(numbers);
        if (numbers.length > 1) spread[key] = [Math.min(...numbers), Math.max(...numbers)];
      } else {
        metric[key] = first.metric[key] ?? null;
      }
    }
    const judged = runs.filter((r) => r.met === true || r.met === false);
    const metIn = judged.filter((r) => r.met).length;
    const { run: _run, ...base } = first;
    return {
      ...base,
      metric,
      spread,
      runs: runs.length,
      ...(judged.length ? { met: metIn * 2 > judged.length, metIn } : {}),
    };
  });
}

function figure(row: SummaryRow, key: string): string {
  const value = row.metric[key];
  const range = row.spread[key];
  return range && range[0] !== range[1]
    ? `${key}=${value} (${range[0]}–${range[1]})`
    : `${key}=${value}`;
}

export function printTable(): void {
  const header = ["suite", "case", "db", "metrics", "goal", "met"];
  const body = summarize().map((r) => [
    r.suite,
    r.case,
    r.database ?? "",
    Object.keys(r.metric)
      .map((k) => figure(r, k))
      .join(" "),
    r.goal ?? "",
    r.met === undefined || r.met === null
      ? ""
      : `${r.met ? "yes" : "NO"}${r.runs > 1 ? ` (${r.metIn}/${r.runs})` : ""}`,
  ]);
  printGrid(header, body);
}

/** A Markdown-style table of text cells on stdout. */
export function printGrid(header: string[], body: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => String(b[i]).length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(" | ")} |`;
  console.log(`\n${line(header)}`);
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const b of body) console.log(line(b));
}

export function writeResults(meta: Record<string, unknown>): string {
  const file = fileURLToPath(new URL("../results/latest.json", import.meta.url));
  mkdirSync(fileURLToPath(new URL("../results", import.meta.url)), { recursive: true });
  // `rows`: the medians (with min–max); `runs`: every run's own figures.
  writeFileSync(file, `${JSON.stringify({ ...meta, rows: summarize(), runs: rows }, null, 2)}\n`);
  return file;
}
