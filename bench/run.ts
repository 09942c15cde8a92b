import os from "node:os";
import { printTable, writeResults } from "./lib/report.ts";
import { restSuite } from "./suites/rest.ts";

// `npm run bench`: every suite on both databases; a table on stdout and
// bench/results/latest.json. BENCH_SECONDS shortens or lengthens each load run.

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const pgUrl = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const databases = [{ name: "pglite" }, { name: "postgres", url: await freshPostgresDatabase(pgUrl) }];

async function freshPostgresDatabase(adminUrl: string): Promise<string> {
  const { default: postgres } = await import("postgres");
  const sql = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await sql.unsafe("drop database if exists pepeunit_bench with (force)");
  await sql.unsafe("create database pepeunit_bench");
  await sql.end();
  const u = new URL(adminUrl);
  u.pathname = "/pepeunit_bench";
  return u.toString();
}

const started = new Date();
for (const db of databases) await restSuite(db, seconds);
printTable();
const file = writeResults({
  started: started.toISOString(),
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, memGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
  secondsPerRun: seconds,
});
console.log(`\nresults written to ${file}`);
