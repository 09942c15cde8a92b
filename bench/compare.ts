import { execFileSync, spawn } from "node:child_process";
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { CPU_PER_UNIT, WORK_UNIT } from "./lib/cpu-per-unit.ts";
import { median, printGrid } from "./lib/report.ts";

// `npm run bench:compare -- [--base <git ref>] [suite...]`: issue 15's "no bench case gets
// worse", judged on server CPU per unit of work (bench/lib/cpu-per-unit.ts), which a busy
// machine moves far less than latency or rates. The base ref (HEAD~1 unless --base) is
// checked out in a temporary worktree under bench/tmp/ (node_modules linked from this
// tree) and both trees run `npm run bench -- <suites>` one pass at a time, alternating
// (base 1, current 1, base 2, …), BENCH_RUNS passes each (3 unless set): a drift of the
// machine's load then weighs on both alike. A case is WORSE when the current median exceeds
// the base's by more than the larger of 10 % and either side's spread ((max − min) /
// median), so run-to-run noise alone cannot flag it. Always exits 0: it is a report.
// Writes bench/results/base.json, current.json (every pass's rows) and compare.json.

type Row = {
  suite: string;
  case: string;
  database?: string;
  metric: Record<string, number | string | null>;
};
type Side = "base" | "current";
type Figures = { median: number; min: number; max: number; values: number[] };
type Case = {
  suite: string;
  case: string;
  database: string | null;
  workUnit: string | null;
  base: Figures | null;
  current: Figures | null;
  ratio: number | null;
  threshold: number | null;
  verdict: "WORSE" | "better" | "same" | "n/a";
};

const root = fileURLToPath(new URL("..", import.meta.url));
const args = process.argv.slice(2);
let baseRef = "HEAD~1";
const suites: string[] = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i] as string;
  if (a === "--base") baseRef = args[++i] ?? baseRef;
  else if (a.startsWith("--base=")) baseRef = a.slice("--base=".length);
  else suites.push(a);
}
const passes = Math.max(1, Number(process.env.BENCH_RUNS ?? 3));
const git = (...a: string[]) => execFileSync("git", a, { cwd: root, encoding: "utf8" }).trim();

const baseSha = git("rev-parse", "--verify", `${baseRef}^{commit}`);
const headSha = git("rev-parse", "HEAD");
const dirty = git("status", "--porcelain", "--untracked-files=no") !== "";
const tmp = path.join(root, "bench", "tmp");
const baseDir = path.join(tmp, `base-${baseSha.slice(0, 12)}`);
const logDir = path.join(tmp, "compare-logs");
const results = path.join(root, "bench", "results");
mkdirSync(logDir, { recursive: true });
mkdirSync(results, { recursive: true });

function removeWorktree(): void {
  if (!existsSync(baseDir)) return;
  try {
    git("worktree", "remove", "--force", baseDir);
  } catch {
    rmSync(baseDir, { recursive: true, force: true });
    git("worktree", "prune");
  }
}

let child: ReturnType<typeof spawn> | null = null;
process.on("SIGINT", () => {
  child?.kill("SIGINT");
  removeWorktree();
  process.exit(130);
});

/** One pass of `npm run bench -- <suites>` in `cwd`; its rows (none when it failed). */
async function pass(side: Side, n: number, cwd: string): Promise<Row[]> {
  const log = path.join(logDir, `${side}-${n}.log`);
  const started = Date.now();
  const out = createWriteStream(log);
  const code = await new Promise<number | null>((resolve) => {
    child = spawn("npm", ["run", "bench", "--", ...suites], {
      cwd,
      env: {
        ...process.env,
        BENCH_RUNS: "1",
        // Its own database name: another bench on this PostgreSQL keeps its own.
        BENCH_DATABASE_NAME: process.env.BENCH_DATABASE_NAME ?? "pepeunit_bench_compare",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout?.pipe(out, { end: false });
    child.stderr?.pipe(out, { end: false });
    child.on("exit", (c) => resolve(c));
  });
  child = null;
  out.end();
  const seconds = Math.round((Date.now() - started) / 1000);
  const load = os.loadavg()[0]?.toFixed(2);
  console.log(`  ${side} pass ${n}: exit ${code} in ${seconds} s, load ${load} (log: ${log})`);
  if (code !== 0) {
    const tail = readFileSync(log, "utf8").trimEnd().split("\n").slice(-15).join("\n");
    console.log(`    the pass failed; its rows are missing. Log tail:\n${tail}`);
    return [];
  }
  const file = path.join(cwd, "bench", "results", "latest.json");
  const json = JSON.parse(readFileSync(file, "utf8")) as { rows?: Row[]; runs?: Row[] };
  // `runs` holds each run's own figures (one run here); older trees wrote `rows` only.
  return (json.runs ?? json.rows ?? []).map((r) => ({ ...r, pass: n }));
}

const key = (r: Row) => `${r.suite}\u0000${r.case}\u0000${r.database ?? ""}`;

function figures(values: number[]): Figures | null {
  if (!values.length) return null;
  return { median: median(values), min: Math.min(...values), max: Math.max(...values), values };
}

/** Relative spread of a side's passes, (max − min) / median. */
const spread = (f: Figures) => (f.median > 0 ? (f.max - f.min) / f.median : 0);

function compare(base: Row[], current: Row[]): Case[] {
  const cases = new Map<string, { first: Row; base: number[]; current: number[] }>();
  for (const [side, rows] of [
    ["base", base],
    ["current", current],
  ] as const) {
    for (const r of rows) {
      const c = cases.get(key(r)) ?? { first: r, base: [], current: [] };
      if (side === "current" && !c.current.length) c.first = r;
      const v = r.metric[CPU_PER_UNIT];
      if (typeof v === "number" && Number.isFinite(v)) c[side].push(v);
      cases.set(key(r), c);
    }
  }
  return [...cases.values()].map(({ first, base: b, current: c }) => {
    const bf = figures(b);
    const cf = figures(c);
    const unit = first.metric[WORK_UNIT];
    const out: Case = {
      suite: first.suite,
      case: first.case,
      database: first.database ?? null,
      workUnit: typeof unit === "string" ? unit : null,
      base: bf,
      current: cf,
      ratio: null,
      threshold: null,
      verdict: "n/a",
    };
    if (!bf || !cf || bf.median <= 0) return out;
    out.ratio = Math.round((cf.median / bf.median) * 1000) / 1000;
    out.threshold = Math.round(Math.max(0.1, spread(bf), spread(cf)) * 1000) / 1000;
    out.verdict =
      out.ratio > 1 + out.threshold ? "WORSE" : out.ratio < 1 - out.threshold ? "better" : "same";
    return out;
  });
}

function printCases(cases: Case[]): void {
  const fig = (f: Figures | null) =>
    !f ? "n/a" : f.min === f.max ? `${f.median}` : `${f.median} (${f.min}–${f.max})`;
  const header = ["suite", "case", "db", "base µs/unit", "current µs/unit", "ratio", "verdict"];
  const body = cases.map((c) => [
    c.suite,
    c.case.length > 70 ? `${c.case.slice(0, 69)}…` : c.case,
    c.database ?? "",
    fig(c.base),
    fig(c.current),
    c.ratio === null ? "n/a" : `${c.ratio.toFixed(2)}×`,
    c.verdict === "n/a" ? "n/a" : `${c.verdict} (±${Math.round((c.threshold ?? 0) * 100)} %)`,
  ]);
  printGrid(header, body);
  const units = [...new Set(cases.map((c) => `${c.suite}: ${c.workUnit ?? "?"}`))];
  console.log(`\nwork units (${CPU_PER_UNIT} = server CPU µs per unit):`);
  for (const u of units) console.log(`  ${u}`);
}

const startedAt = new Date();
const loadBefore = os.loadavg();
console.log(
  `bench:compare: base ${baseRef} (${baseSha.slice(0, 12)}) vs current tree (HEAD ${headSha.slice(0, 12)}${dirty ? ", uncommitted changes" : ""}); suites: ${suites.length ? suites.join(" ") : "all"}; ${passes} pass(es) each, alternating; load ${loadBefore.map((l) => l.toFixed(2)).join(" ")}`,
);
removeWorktree();
mkdirSync(tmp, { recursive: true });
git("worktree", "add", "--detach", baseDir, baseSha);
const base: Row[] = [];
const current: Row[] = [];
try {
  symlinkSync(realpathSync(path.join(root, "node_modules")), path.join(baseDir, "node_modules"));
  for (let n = 1; n <= passes; n++) {
    base.push(...(await pass("base", n, baseDir)));
    current.push(...(await pass("current", n, root)));
  }
} finally {
  removeWorktree();
}
const meta = { startedAt: startedAt.toISOString(), suites, passes };
writeFileSync(
  path.join(results, "base.json"),
  `${JSON.stringify({ ...meta, ref: baseRef, sha: baseSha, runs: base }, null, 2)}\n`,
);
writeFileSync(
  path.join(results, "current.json"),
  `${JSON.stringify({ ...meta, sha: headSha, dirty, runs: current }, null, 2)}\n`,
);
const cases = compare(base, current);
printCases(cases);
const worse = cases.filter((c) => c.verdict === "WORSE");
const compared = cases.filter((c) => c.verdict !== "n/a").length;
const loadAfter = os.loadavg();
writeFileSync(
  path.join(results, "compare.json"),
  `${JSON.stringify(
    {
      ...meta,
      metric: CPU_PER_UNIT,
      base: { ref: baseRef, sha: baseSha },
      current: { sha: headSha, dirty },
      load: { before: loadBefore, after: loadAfter },
      rule: "WORSE when current median / base median > 1 + max(0.10, base spread, current spread)",
      cases,
      worse: worse.length,
    },
    null,
    2,
  )}\n`,
);
console.log(
  `\n${worse.length} cases worse (of ${compared} compared; ${cases.length - compared} n/a: no ${CPU_PER_UNIT} on one side)${worse.length ? `: ${worse.map((c) => `${c.suite} / ${c.case}${c.database ? ` (${c.database})` : ""}`).join("; ")}` : ""}`,
);
if (passes < 3)
  console.log(
    `only ${passes} pass(es) per side: the spread is barely known, so WORSE rests on the 10 % floor (an A/A run with one 3 s pass each on this shared machine flagged 2 of 10 cases); trust BENCH_RUNS >= 3`,
  );
console.log(
  `load ${loadBefore.map((l) => l.toFixed(2)).join(" ")} → ${loadAfter.map((l) => l.toFixed(2)).join(" ")}; results in bench/results/compare.json`,
);
