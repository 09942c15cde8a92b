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

const rows: Row[] = [];

export function record(row: Row): void {
  rows.push(row);
  const status =
    row.met === undefined || row.met === null ? "" : row.met ? "  [goal met]" : "  [GOAL MISSED]";
  const metric = Object.entries(row.metric)
    .map(([k, v]) => `${k}=${v}`)
    .join("  ");
  console.log(`  ${row.case}${row.database ? ` (${row.database})` : ""}: ${metric}${status}`);
}

export function printTable(): void {
  const header = ["suite", "case", "db", "metrics", "goal", "met"];
  const body = rows.map((r) => [
    r.suite,
    r.case,
    r.database ?? "",
    Object.entries(r.metric)
      .map(([k, v]) => `${k}=${v}`)
      .join(" "),
    r.goal ?? "",
    r.met === undefined || r.met === null ? "" : r.met ? "yes" : "NO",
  ]);
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
  writeFileSync(file, `${JSON.stringify({ ...meta, rows }, null, 2)}\n`);
  return file;
}
