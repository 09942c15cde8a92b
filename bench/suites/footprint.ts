import { performance } from "node:perf_hooks";
import { createBenchWorld, pool } from "../lib/bench-world.ts";
import { LeanClient } from "../lib/lean-mqtt.ts";
import { ownDatabase } from "../lib/own-database.ts";
import { processStats, untilIdle } from "../lib/process-stats.ts";
import { record } from "../lib/report.ts";
import { type BenchServer, startBenchServer } from "../lib/server.ts";
import { sleep } from "../lib/stats.ts";

// What an instance holds in memory when it does nothing: RSS of a fresh instance (an
// empty database) 10 s after it answers /healthz, then of an instance with 1 000 units
// in its database before and after the 1 000 connect as devices do (CONNECT with their
// token, SUBSCRIBE to their input topics) and sit idle. Each figure is the median of
// RUNS fresh starts, with min–max. The units are made once per database through the
// API (real tokens, real ACLs); every later start runs on that data. Goals (issue 15):
// idle ≤ 120 MB on PostgreSQL and ≤ 200 MB on PGlite; 1 000 idle units ≤ +15 MB.
// 6–8 min on this machine (12 server starts, 20 s of settling each, 1 000 units made per database).

const UNITS = 1_000;
const RUNS = 3;
/** After /healthz (and after the last unit connected): what "10 s after start" reads. */
const SETTLE_MS = 10_000;
const GOAL_IDLE_MB = { postgres: 120, pglite: 200 } as const;
const GOAL_UNITS_MB = 15;

type Db = { name: "pglite" | "postgres"; url?: string };

const mb = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;

function summary(values: number[]): { median: number; min: number; max: number } {
  const s = [...values].sort((a, b) => a - b);
  return {
    median: s[Math.floor(s.length / 2)] as number,
    min: s[0] as number,
    max: s.at(-1) as number,
  };
}

const range = (v: number[]) => {
  const s = summary(v);
  return `${s.min}–${s.max}`;
};

async function databaseFor(name: Db["name"], pgUrl: string, suffix: string): Promise<Db> {
  return name === "pglite"
    ? { name }
    : { name, url: await ownDatabase(pgUrl, `pepeunit_bench_footprint_${suffix}`) };
}

/** The domain stays the same across restarts on one data dir (ports change). */
const env = { PEPEUNIT_DOMAIN: "localhost" };

async function settledRss(server: BenchServer): Promise<number> {
  await sleep(SETTLE_MS);
  return processStats(server.pid).rssBytes;
}

/**
 * A device whose CONNACK is late (10 s) tries again, as a real one would: on a
 * shared machine a burst of 1 000 connects can stall a server for a moment.
 */
async function connectRetrying(port: number, u: { uuid: string; token: string }) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await LeanClient.connect({ port, clientId: u.uuid, username: u.token });
    } catch (err) {
      if (attempt >= 3) throw err;
    }
  }
}

export async function footprintSuite(pgUrl: string): Promise<void> {
  console.log(`\n== footprint (RSS at rest; ${RUNS} runs, ${UNITS} units)`);
  for (const name of ["postgres", "pglite"] as const) {
    const started = performance.now();
    // Fresh instances, empty databases.
    const idle: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const db = await databaseFor(name, pgUrl, "idle");
      const server = await startBenchServer({ databaseUrl: db.url, env });
      try {
        idle.push(mb(await settledRss(server)));
      } finally {
        await server.stop();
      }
    }
    const idleS = summary(idle);
    record({
      suite: "footprint",
      case: "idle RSS 10 s after start, MB",
      database: name,
      metric: { median: idleS.median, "min–max": range(idle) },
      goal: `≤ ${GOAL_IDLE_MB[name]} MB`,
      met: idleS.median <= GOAL_IDLE_MB[name],
    });

    // 1 000 units made once through the API; each run starts on that data.
    const db = await databaseFor(name, pgUrl, "units");
    const maker = await startBenchServer({ databaseUrl: db.url, env });
    let units: { uuid: string; token: string; topics: string[] }[];
    const t0 = performance.now();
    try {
      const world = await createBenchWorld(maker.url, "footprint");
      units = (await world.createUnits(UNITS, 8)).map((u) => ({
        uuid: u.uuid,
        token: u.token,
        topics: u.inputTopics(),
      }));
    } finally {
      await maker.stop();
    }
    console.log(`  ${UNITS} units made in ${Math.round((performance.now() - t0) / 1000)} s`);
    const before: number[] = [];
    const after: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const server = await startBenchServer({ databaseUrl: db.url, env, dir: maker.dir });
      const clients: LeanClient[] = [];
      try {
        before.push(mb(await settledRss(server)));
        await pool(units, 10, async (u) => {
          const c = await connectRetrying(server.mqttPort, u);
          clients.push(c);
          for (const t of u.topics) {
            if ((await c.subscribe(t)) === 0x80) throw new Error(`refused ${t} to ${u.uuid}`);
          }
        });
        // Connecting sends each unit its state request and env/schema checks: let them pass.
        await untilIdle(server.pid);
        after.push(mb(await settledRss(server)));
      } finally {
        for (const c of clients) c.close();
        await server.stop();
      }
    }
    const deltas = after.map((a, i) => Math.round((a - (before[i] as number)) * 10) / 10);
    const deltaS = summary(deltas);
    record({
      suite: "footprint",
      case: `${UNITS} connected idle units, RSS MB`,
      database: name,
      metric: {
        "before (median)": summary(before).median,
        "before min–max": range(before),
        "with units (median)": summary(after).median,
        "with units min–max": range(after),
        "delta (median)": deltaS.median,
        "delta min–max": range(deltas),
      },
      goal: `≤ +${GOAL_UNITS_MB} MB`,
      met: deltaS.median <= GOAL_UNITS_MB,
    });
    console.log(`  ${name}: ${Math.round((performance.now() - started) / 1000)} s`);
  }
}
