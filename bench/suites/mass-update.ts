import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { createSimulatedUnit, type SimulatedUnit } from "../../src/simulator/simulated-unit.ts";
import { type BenchUnit, call, createBenchWorld, pool } from "../lib/bench-world.ts";
import { CPU_PER_UNIT, usPerUnit, WORK_UNIT } from "../lib/cpu-per-unit.ts";
import {
  monotonicUs,
  newestProfile,
  type ProfileWindow,
  printProfile,
} from "../lib/cpu-profile.ts";
import { connectInspector } from "../lib/inspector.ts";
import { type ReferenceBroker, startMosquitto } from "../lib/mosquitto.ts";
import { processStats } from "../lib/process-stats.ts";
import { record } from "../lib/report.ts";
import { startBenchServer } from "../lib/server.ts";
import { ratio, sleep } from "../lib/stats.ts";

// A fleet of simulated units (src/simulator/, many per process) on one server:
//  - what 1 000 connected idle units cost the server (RSS, CPU-seconds), against the
//    same fleet on a Mosquitto started here; goal < 20 MB RSS per 1 000 idle units;
//  - a mass update of the whole fleet: a new commit on the repo's default branch, the
//    repo synced, and every unit gets Update → downloads its tgz → restarts from it →
//    reports the new commit. Time to 50/95/100 % of the fleet; goal 100 % < 60 s.
// BENCH_FLEET changes the fleet size (default 1 000).

const MB = 2 ** 20;

async function writeUnitDir(root: string, unit: BenchUnit): Promise<string> {
  const dir = path.join(root, unit.uuid);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, "env.json"), JSON.stringify(unit.env, null, 4));
  await writeFile(path.join(dir, "schema.json"), JSON.stringify(unit.schema, null, 4));
  return dir;
}

function createFleet(dirs: string[], mqttUrl: string, httpBaseUrl: string): SimulatedUnit[] {
  return dirs.map((dir) =>
    createSimulatedUnit({ dir, mqttUrl, httpBaseUrl, logInputs: false, reconnectMs: 1000 }),
  );
}

/** Units that connect first, so one-time lazy costs (caches, JIT) stay out of "per unit". */
const WARM_UP = 20;
/** The rest of the fleet connects in this many equal steps; RSS is read after each. */
const STEPS = 4;
/** Quiet time after each step before RSS is read (after a forced full GC where possible). */
const SETTLE_MS = 4000;

type IdleCost = {
  /** Slope of RSS over connected units (least squares over the steps), per 1 000 units. */
  rssMbPer1k: number;
  /** RSS grown from the warmed-up broker to the whole fleet, scaled to 1 000 units. */
  deltaRssMbPer1k: number;
  /** RSS grown from no unit at all to the whole fleet, scaled to 1 000 units. */
  totalRssMbPer1k: number;
  cpuSecPerMinPer1k: number;
  /** The broker's CPU in µs per connected unit and idle minute. */
  cpuUsPerUnitMin: number | null;
  connectS: number;
  rssMb: number;
};

/** Least-squares slope of y over x. */
function slope(points: Array<[number, number]>): number {
  const n = points.length;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den ? num / den : 0;
}

/**
 * Connects the fleet (a warm-up batch, then STEPS equal steps, each followed by a quiet
 * settle and an RSS reading), then reads the broker's CPU-seconds over `idleSeconds` of
 * idleness (units send their state every PU_STATE_SEND_INTERVAL, 60 s, as devices do).
 * The per-unit figure is the slope of RSS over the steps: what one more connected unit
 * costs, without the one-time growth of the heap during the first connection burst.
 * `collectGarbage` (the Pepeunit server, through its inspector) runs before each reading,
 * so the readings hold live memory, not whatever garbage was waiting for the next GC.
 */
async function idleFleet(
  pid: number,
  sims: SimulatedUnit[],
  idleSeconds: number,
  collectGarbage: () => Promise<void> = async () => {},
): Promise<IdleCost> {
  const rss = async () => {
    await collectGarbage();
    await sleep(500);
    return processStats(pid).rssBytes;
  };
  const empty = await rss();
  await pool(sims.slice(0, WARM_UP), 20, (s) => s.start());
  await sleep(2000);
  const warm = await rss();
  const points: Array<[number, number]> = [[WARM_UP, warm]];
  const rest = sims.slice(WARM_UP);
  const per = Math.ceil(rest.length / STEPS);
  let connectMs = 0;
  for (let i = 0; i < rest.length; i += per) {
    const t = performance.now();
    await pool(rest.slice(i, i + per), 50, (s) => s.start());
    connectMs += performance.now() - t;
    await sleep(SETTLE_MS);
    points.push([WARM_UP + Math.min(i + per, rest.length), await rss()]);
  }
  const a = processStats(pid);
  await sleep(idleSeconds * 1000);
  const b = { ...processStats(pid), rssBytes: await rss() };
  const perK = (mb: number) => Math.round(mb * 1000 * 10) / 10;
  return {
    rssMbPer1k: perK(slope(points) / MB),
    deltaRssMbPer1k: perK((b.rssBytes - warm) / MB / (sims.length - WARM_UP)),
    totalRssMbPer1k: perK((b.rssBytes - empty) / MB / sims.length),
    cpuSecPerMinPer1k:
      Math.round(((b.cpuSeconds - a.cpuSeconds) / idleSeconds) * 60 * (1000 / sims.length) * 100) /
      100,
    cpuUsPerUnitMin: usPerUnit(b.cpuSeconds - a.cpuSeconds, (sims.length * idleSeconds) / 60),
    connectS: Math.round(connectMs / 100) / 10,
    rssMb: Math.round(b.rssBytes / MB),
  };
}

/** The fields of GET /repos/{uuid}/update_units jobs this suite reads. */
type JobJson = { status?: string; succeeded?: number; failed?: number };

type Trigger =
  | "automatic on repo sync"
  | "POST /repos/{uuid}/update_units"
  | "POST /units/{uuid}/update";

export async function massUpdateSuite(
  database: { name: string; url?: string },
  seconds: number,
): Promise<void> {
  const fleet = Number(process.env.BENCH_FLEET ?? 1000);
  const idleSeconds = Math.max(5, seconds);
  console.log(
    `\n# Fleet of ${fleet} simulated units on ${database.name}: idle cost and mass update`,
  );
  const server = await startBenchServer({ databaseUrl: database.url, inspect: true });
  const inspector = await connectInspector(server.inspectPort as number);
  const root = await mkdtemp(path.join(tmpdir(), "pepeunit-bench-fleet-"));
  let sims: SimulatedUnit[] = [];
  let mosquitto: ReferenceBroker | null = null;
  /** Phases of the server's life, to read its CPU profile by phase. */
  const windows: Array<{ title: string; window: ProfileWindow }> = [];
  let phaseStart = monotonicUs();
  const endPhase = (title: string) => {
    const now = monotonicUs();
    windows.push({ title, window: { fromUs: phaseStart, toUs: now } });
    phaseStart = now;
  };
  try {
    const world = await createBenchWorld(server.url, "bench-fleet");
    const t = performance.now();
    phaseStart = monotonicUs();
    const units = await world.createUnits(fleet, 16);
    endPhase(`creating ${fleet} units through the API`);
    console.log(
      `  created ${fleet} units (with env and schema) in ${((performance.now() - t) / 1000).toFixed(1)} s`,
    );
    const dirs = await pool(units, 32, (u) => writeUnitDir(root, u));

    await sleep(2000);
    phaseStart = monotonicUs();
    sims = createFleet(dirs, `mqtt://127.0.0.1:${server.mqttPort}`, server.url);
    const pepIdle = await idleFleet(server.pid, sims, idleSeconds, inspector.collectGarbage);
    endPhase(`connecting ${fleet} units, then idle`);
    console.log(
      `  ${fleet} units connected in ${pepIdle.connectS} s; idle: ${pepIdle.rssMbPer1k} MB RSS per 1 000 units (slope; +${pepIdle.deltaRssMbPer1k} warm→all, +${pepIdle.totalRssMbPer1k} from none), ${pepIdle.cpuSecPerMinPer1k} cpu-s/min per 1 000 units`,
    );

    // --- the mass update
    const updatedAt = new Map<string, number>();
    let updateCommands = 0;
    let t0 = 0;
    const newCommit = world.fixture.commit("bench v2", {
      "main.py": `print('v2 ${Date.now()}')\n`,
    });
    for (const s of sims) {
      s.on("command", (c) => {
        if (c.command === "Update") updateCommands++;
      });
      s.on("updated", (e) => {
        if (e.to === newCommit) updatedAt.set(s.uuid, performance.now() - t0);
      });
    }
    const cpuBeforeUpdate = processStats(server.pid).cpuSeconds;
    let peakRss = 0;
    const rssSampler = setInterval(() => {
      peakRss = Math.max(peakRss, processStats(server.pid).rssBytes);
    }, 250);
    t0 = performance.now();
    phaseStart = monotonicUs();
    await call(server.url, "POST", `/repos/${world.repoUuid}/sync`, undefined, world.token);
    let trigger: Trigger = "automatic on repo sync";
    const jobsOf = async () => {
      try {
        return ((
          await call(
            server.url,
            "GET",
            `/repos/${world.repoUuid}/update_units`,
            undefined,
            world.token,
          )
        ).jobs ?? []) as JobJson[];
      } catch {
        return [];
      }
    };
    const autoDeadline = performance.now() + 5000;
    while (
      updateCommands === 0 &&
      (await jobsOf()).length === 0 &&
      performance.now() < autoDeadline
    )
      await sleep(100);
    if (updateCommands === 0 && (await jobsOf()).length === 0) {
      try {
        await call(server.url, "POST", `/repos/${world.repoUuid}/update_units`, {}, world.token);
        trigger = "POST /repos/{uuid}/update_units";
      } catch {
        trigger = "POST /units/{uuid}/update";
        await pool(units, 16, (u) =>
          call(server.url, "POST", `/units/${u.uuid}/update`, {}, world.token),
        );
      }
    }
    console.log(`  mass update triggered: ${trigger}`);
    const limitMs = Math.max(180, seconds * 12) * 1000;
    let lastReport = 0;
    while (updatedAt.size < fleet && performance.now() - t0 < limitMs) {
      await sleep(100);
      if (performance.now() - lastReport > 5000) {
        lastReport = performance.now();
        console.log(
          `    ${((performance.now() - t0) / 1000).toFixed(0)} s: ${updatedAt.size}/${fleet} updated`,
        );
      }
    }
    const times = [...updatedAt.values()].sort((a, b) => a - b);
    const at = (p: number) => {
      const need = Math.ceil((p / 100) * fleet);
      return times.length >= need ? Math.round((times[need - 1] as number) / 100) / 10 : null;
    };
    // The server's own account: the job's Success count once every unit reported.
    let confirmed: number | null = null;
    const confirmDeadline = performance.now() + 15_000;
    while (performance.now() < confirmDeadline) {
      const jobs = await jobsOf();
      const job = jobs[0];
      if (job) {
        confirmed = Number(job.succeeded);
        if (job.status === "Finished" || confirmed >= fleet) break;
      }
      await sleep(250);
    }
    clearInterval(rssSampler);
    endPhase(`mass update of ${fleet} units`);
    const updateCpu = processStats(server.pid).cpuSeconds - cpuBeforeUpdate;
    const t100 = at(100);
    console.log(
      `  updated: 50% ${at(50)} s, 95% ${at(95)} s, 100% ${t100} s; server confirmed ${confirmed}`,
    );
    record({
      suite: "fleet",
      case: `mass update of ${fleet} units (${trigger})`,
      database: database.name,
      metric: {
        "50% s": at(50),
        "95% s": at(95),
        "100% s": t100,
        updated: updatedAt.size,
        "server Success": confirmed,
        "server cpu-s": Math.round(updateCpu * 10) / 10,
        "peak rss MB": Math.round(peakRss / MB),
        [CPU_PER_UNIT]: usPerUnit(updateCpu, updatedAt.size),
        [WORK_UNIT]: "unit updated",
      },
      goal: "100 % < 60 s",
      met: t100 !== null && t100 < 60,
    });
    await pool(sims, 100, (s) => s.stop());
    sims = [];

    // --- the same fleet, idle, on Mosquitto
    let mosIdle: IdleCost | null = null;
    mosquitto = await startMosquitto();
    if (mosquitto) {
      await sleep(500);
      sims = createFleet(dirs, `mqtt://127.0.0.1:${mosquitto.port}`, server.url);
      mosIdle = await idleFleet(mosquitto.pid, sims, idleSeconds);
      console.log(
        `  mosquitto: connected in ${mosIdle.connectS} s; idle: ${mosIdle.rssMbPer1k} MB RSS per 1 000 units (slope; +${mosIdle.deltaRssMbPer1k} warm→all, +${mosIdle.totalRssMbPer1k} from none), ${mosIdle.cpuSecPerMinPer1k} cpu-s/min per 1 000 units`,
      );
      await pool(sims, 100, (s) => s.stop());
      sims = [];
    } else {
      console.log("  mosquitto is not installed: no reference for the idle fleet");
    }
    record({
      suite: "fleet",
      case: `${fleet} connected idle units: server cost`,
      database: database.name,
      metric: {
        "rss MB/1k units (slope)": pepIdle.rssMbPer1k,
        "rss MB/1k warm→all": pepIdle.deltaRssMbPer1k,
        "rss MB/1k from none": pepIdle.totalRssMbPer1k,
        "cpu-s/min per 1k": pepIdle.cpuSecPerMinPer1k,
        "connect s": pepIdle.connectS,
        "server rss MB": pepIdle.rssMb,
        "mosquitto rss MB/1k": mosIdle?.rssMbPer1k ?? null,
        "mosquitto cpu-s/min per 1k": mosIdle?.cpuSecPerMinPer1k ?? null,
        "× rss": ratio(pepIdle.rssMbPer1k, mosIdle?.rssMbPer1k ?? null),
        [CPU_PER_UNIT]: pepIdle.cpuUsPerUnitMin,
        [WORK_UNIT]: "connected unit and idle minute",
        "mosquitto cpu_us_per_unit": mosIdle?.cpuUsPerUnitMin ?? null,
      },
      goal: "< 20 MB RSS per 1000 idle units",
      met: pepIdle.rssMbPer1k < 20,
    });
  } finally {
    await pool(sims, 100, (s) => s.stop().catch(() => {}));
    await mosquitto?.stop();
    inspector.close();
    await server.stop();
    await rm(root, { recursive: true, force: true });
  }
  const profile = server.cpuProfDir ? newestProfile(server.cpuProfDir) : null;
  if (profile) for (const w of windows) printProfile(`fleet: ${w.title}`, profile, 15, w.window);
}
