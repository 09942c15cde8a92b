import { printTable } from "/work/main/bench/lib/report.ts";
import { federationSuite } from "/work/main/bench/suites/federation.ts";
await federationSuite({ name: "pglite" }, Number(process.env.BENCH_SECONDS ?? 5), process.env.ONLY);
printTable();
