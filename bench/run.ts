import { execFileSync } from "node:child_process";
import os from "node:os";
import { printTable, startRun, writeResults } from "./lib/report.ts";
import { alertsSuite } from "./suites/alerts.ts";
import { backupSuite } from "./suites/backup.ts";
import { clusterSuite } from "./suites/cluster.ts";
import { federationSuite } from "./suites/federation.ts";
import { footprintSuite } from "./suites/footprint.ts";
import { historySuite } from "./suites/history.ts";
import { liveSuite } from "./suites/live.ts";
import { loopSuite } from "./suites/loop.ts";
import { massUpdateSuite } from "./suites/mass-update.ts";
import { metricsSuite } from "./suites/metrics.ts";
import { mqttSuite } from "./suites/mqtt.ts";
import { restSuite } from "./suites/rest.ts";
import { uiSuite } from "./suites/ui.ts";

// `npm run bench`: every suite, BENCH_RUNS times (3 unless set); a table of medians with
// min–max on stdout and bench/results/latest.json.
// BENCH_SECONDS shortens or lengthens each load run; BENCH_SUITES=rest,mqtt,loop,mass-update,federation,ui,history,alerts,live,metrics,backup,cluster,footprint
// (or the names as arguments: `npm run bench -- history`) runs only those; BENCH_CPU_PROF=1 profiles every bench server (node --cpu-prof);
// BENCH_SERVER_NODE_ARGS adds node flags to every bench server (e.g. --trace-gc).

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const runs = Math.max(1, Number(process.env.BENCH_RUNS ?? 3));
const args = process.argv.slice(2).filter((a) => !a.startsWith("-"));
const only = args.length ? args : process.env.BENCH_SUITES?.split(",").map((s) => s.trim());
const wanted = (suite: string) => !only || only.includes(suite);

// The load generator (this process and its threads) on core 1; servers and the
// reference broker are pinned to core 0 by their launchers.
try {
  execFileSync("taskset", ["-a", "-p", "-c", "1", String(process.pid)], { stdio: "ignore" });
} catch {
  console.log("taskset failed: the load generator is not pinned");
}
const pgUrl = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const pglite = { name: "pglite" };
// BENCH_DATABASE_NAME: another name, so two benches on one PostgreSQL do not drop each other's.
const benchDb = process.env.BENCH_DATABASE_NAME ?? "pepeunit_bench";
/** A new, empty PostgreSQL database for each bench server: suites never see each other's data. */
async function freshPostgres(): Promise<{ name: string; url: string }> {
  const { default: postgres } = await import("postgres");
  const sql = postgres(pgUrl, { max: 1, onnotice: () => {} });
  await sql.unsafe(`drop database if exists ${benchDb} with (force)`);
  await sql.unsafe(`create database ${benchDb}`);
  await sql.end();
  const u = new URL(pgUrl);
  u.pathname = `/${benchDb}`;
  return { name: "postgres", url: u.toString() };
}

// The servers run what `npm start` runs: the web UI and the server's build, made or
// brought up to date here as its prestart does.
execFileSync(process.execPath, ["deploy/prestart.ts"], { stdio: "inherit" });

const started = new Date();
// Every figure is the median of `runs` whole passes over the wanted suites, with its
// min–max: on a 2-core machine one pass can read 0.2× another on the same code.
for (let run = 1; run <= runs; run++) {
  startRun(run);
  if (wanted("rest")) {
    await restSuite(pglite, seconds);
    await restSuite(await freshPostgres(), seconds);
  }
  // The device plane on PostgreSQL only: routing does not touch the database, and the
  // 1 000-unit fleet would double the run time on PGlite for little information.
  if (wanted("mqtt")) await mqttSuite(await freshPostgres(), seconds);
  // Unit→instance→unit and the main thread's event-loop delay, PGlite against PostgreSQL.
  if (wanted("loop")) await loopSuite(freshPostgres, seconds);
  if (wanted("mass-update")) await massUpdateSuite(await freshPostgres(), seconds);
  if (wanted("federation")) {
    await federationSuite(pglite, seconds);
    await federationSuite(await freshPostgres(), seconds);
  }
  // 500 units / 2 000 variables rendered in headless Chromium (needs /usr/bin/chromium).
  if (wanted("ui")) await uiSuite(await freshPostgres(), { units: 500, runs: 3 });
  // 1 000 variables with pipes: PostgreSQL and PGlite (the history writer is database-bound).
  if (wanted("history")) {
    await historySuite(await freshPostgres(), seconds);
    await historySuite(pglite, seconds);
  }
  // 1 000 alert rules on routed variables against none: PostgreSQL (state writes are rare).
  if (wanted("alerts")) await alertsSuite(await freshPostgres(), seconds);
  // The live channel's cost on routed values: 100 000 messages at 5 000/s, 6 runs (≈ 2.5 min).
  if (wanted("live")) await liveSuite(await freshPostgres());
  // Prometheus metrics' cost on routed values: 100 000 messages at 5 000/s, 6 runs, two
  // servers with databases of their own (pepeunit_bench_metrics_on/off).
  if (wanted("metrics")) await metricsSuite(pgUrl);
  // `npm run backup` / `npm run restore` of 1 000 units with 1 M history records, each database.
  if (wanted("backup")) {
    await backupSuite("postgres", pgUrl);
    await backupSuite("pglite", pgUrl);
  }
  // Cluster mode (2 processes vs 1 on one PostgreSQL and one Redis, PEPEUNIT_TEST_REDIS_URL):
  // PostgreSQL only, PGlite is skipped with a note (≈ 3 min).
  if (wanted("cluster")) {
    await clusterSuite(pglite, seconds);
    await clusterSuite(await freshPostgres(), seconds);
  }
}
// RSS at rest: fresh instances and 1 000 connected idle units, both databases (≈ 6–8 min).
if (wanted("footprint")) await footprintSuite(pgUrl);
printTable();
const file = writeResults({
  started: started.toISOString(),
  machine: {
    cpus: os.cpus().length,
    model: os.cpus()[0]?.model,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
  },
  secondsPerRun: seconds,
  runs,
});
console.log(`\nresults written to ${file}`);
