import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import os, { tmpdir } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import autocannon from "autocannon";
import type { Redis } from "ioredis";
import { type BenchUnit, createBenchWorld, pool } from "../lib/bench-world.ts";
import { CPU_PER_UNIT, usPerUnit, WORK_UNIT } from "../lib/cpu-per-unit.ts";
import {
  monotonicUs,
  newestProfile,
  type ProfileWindow,
  printProfile,
} from "../lib/cpu-profile.ts";
import { type LeanClient, PublishEncoder } from "../lib/lean-mqtt.ts";
import { createPacedSender, type PacedPublisher } from "../lib/paced-sender.ts";
import { processStats, untilIdle } from "../lib/process-stats.ts";
import { record } from "../lib/report.ts";
import { type BenchServer, startBenchServer } from "../lib/server.ts";
import { ms, percentile, sleep } from "../lib/stats.ts";
import { connectUnits } from "./mqtt.ts";

// Cluster mode (issue 14): two `node src/main.ts` processes on one PostgreSQL database
// and one Redis against one, on the same machine. Three layouts of the same fleet (same
// database, units, edges and tokens; every server gets the same secrets, domain and
// repositories directory, so a unit made on one is valid on all):
//   single      one process without cluster mode (the default deployment);
//   cluster ×1  one process in cluster mode (Redis in every message's path);
//   cluster ×2  two processes in cluster mode, each with its own HTTP and MQTT port.
// Measured on each: unit → unit latency at 1 000 msg/s (on ×2 the publisher is on P1 and
// the subscriber on P2), the highest sustained routed rate (PAIRS pairs; on ×2 half of
// them cross processes), REST reads from REST_CONNECTIONS clients (spread over the
// processes), and server CPU-seconds per 1 000 routed messages (with Redis's own CPU),
// plus Redis PUBLISH → message alone (latency, and the CPU it costs an ioredis client and
// Redis) as the reference for the hop. mqemitter-redis sends local deliveries through
// Redis too: cluster ×1 already pays the hop, so cluster − single is its cost.
// A rate is sustained when every message arrived, the last within DRAIN_LIMIT_MS of the
// last send (no backlog left), and the last quarter's p50 is at most 3× the first's
// + 10 ms (no backlog growing); a failing step runs once more before it counts.
// Figures are reported as ratios ×2/×1 and cluster/single; no goal (issue 14 asks for
// the capacity model of docs/cluster.md, filled from these figures).
//
// Cores: with 3 or more, P1 runs on core 0 and P2 on core 2 (the load generator is on 1),
// so ×2 has twice ×1's CPU; with 2 cores both share core 0 and the ratios show the
// cluster's overhead rather than its scale-out. BENCH_CLUSTER_CPUS="0;2-3" overrides
// (taskset lists of P1 and P2).
//
// Redis's CPU comes from its INFO: on a Redis shared with other work it includes theirs.
// BENCH_CPU_PROF=1 also prints each process's CPU profile over its CPU run (which of
// Aedes, mqemitter-redis, ioredis and our hooks the routed messages cost).

const PAIRS = 8; // a multiple of 4: on ×2, 2 of every 4 pairs cross processes
const RATE_STEPS = [2_000, 5_000, 10_000, 20_000, 40_000, 60_000, 80_000];
const STEP_SECONDS = 2;
/** At a sustained rate the last message arrives within this of the last send (no backlog left). */
const DRAIN_LIMIT_MS = 250;
const CPU_RATE = 5_000;
const CPU_SECONDS = 4;
const REST_CONNECTIONS = 32;
const REST_SECONDS = 5;
const REDIS_REF_SECONDS = 3;
const MAGIC = 0x636c7573;
const OUT = "output/pepeunit";
const IN = "input/pepeunit";

type LayoutName = "single" | "cluster ×1" | "cluster ×2";

type FlowResult = {
  sent: number;
  received: number;
  lost: number;
  p50: number | null;
  p99: number | null;
  /** From the last send to the last arrival (null when some never arrived). */
  drainMs: number | null;
  /** p50 of the messages sent in the first and the last quarter of the run. */
  earlyP50: number | null;
  lateP50: number | null;
  /** CPU-seconds of every server process, and of Redis, over the run. */
  serverCpuS: number;
  redisCpuS: number | null;
  /** Busy share of one core of the load generator, in %. */
  generatorCpu: number;
};

type Measured = {
  latency: FlowResult;
  cpu: FlowResult;
  /** Redis commands per routed message during the CPU run (all of Redis's: see the header). */
  redisCommandsPerMsg: number | null;
  sustained: { rate: number; limitedBy: string };
  rest: { rps: number; perProcess: number[]; p50: number; p99: number; errors: number };
  /** The processes' CPU in µs per REST request answered. */
  restCpuUs: number | null;
};

const diff2 = (a: number | null, b: number | null) => (a === null || b === null ? null : a - b);
const cpu4 = (v: number | null) => (v === null ? null : Math.round(v * 10_000) / 10_000);
const ratio2 = (a: number | null | undefined, b: number | null | undefined) =>
  a === null || a === undefined || b === null || b === undefined || b === 0
    ? null
    : Math.round((a / b) * 100) / 100;

/** Redis's own CPU-seconds (INFO cpu), or null when it does not say. */
async function redisCpu(redis: Redis): Promise<number | null> {
  const info = await redis.info("cpu");
  const user = /used_cpu_user:([\d.]+)/.exec(info)?.[1];
  const sys = /used_cpu_sys:([\d.]+)/.exec(info)?.[1];
  return user && sys ? Number(user) + Number(sys) : null;
}

/** Commands Redis has processed since it started (INFO stats). */
async function redisCommands(redis: Redis): Promise<number | null> {
  const n = /total_commands_processed:(\d+)/.exec(await redis.info("stats"))?.[1];
  return n ? Number(n) : null;
}

/**
 * Each sender publishes on its output at rate/senders msg/s for `seconds`; each message
 * carries its send time and the receivers record its latency; then up to 3 s for
 * stragglers (the same schedule as suites/mqtt.ts's flow, with the backlog measures the
 * sustained-rate test needs and the CPU of several processes).
 */
async function flow(
  senders: PacedPublisher[],
  receivers: LeanClient[],
  rate: number,
  seconds: number,
  pids: number[],
  redis: Redis,
): Promise<FlowResult> {
  const runId = (Math.random() * 0xffffffff) >>> 0;
  const capacity = Math.ceil(rate * seconds * 1.05) + 1000;
  const latencies = new Float64Array(capacity);
  const sentAts = new Float64Array(capacity);
  let received = 0;
  let lastArrival = 0;
  for (const r of receivers) {
    r.onMessage = (_topic, payload) => {
      if (
        payload.length !== 20 ||
        payload.readUInt32LE(12) !== runId ||
        payload.readUInt32LE(16) !== MAGIC
      )
        return;
      const now = performance.now();
      const sentAt = payload.readDoubleLE(0);
      if (received < capacity) {
        latencies[received] = now - sentAt;
        sentAts[received] = sentAt;
      }
      received++;
      lastArrival = now;
    };
  }
  const cpuBefore = pids.map((pid) => processStats(pid).cpuSeconds);
  const redisBefore = await redisCpu(redis);
  const genBefore = process.cpuUsage();
  const durationMs = seconds * 1000;
  const start = performance.now();
  const pacer = createPacedSender({ senders, rate, durationMs, runId, magic: MAGIC });
  const sendDue = pacer.sendDue;
  let lastSend = start;
  for (;;) {
    const now = performance.now();
    const elapsed = now - start;
    sendDue(now, elapsed);
    lastSend = now;
    if (elapsed >= durationMs) break;
    await sleep(1);
  }
  const drainUntil = performance.now() + 3000;
  while (received < pacer.sent() && performance.now() < drainUntil) await sleep(5);
  const wallS = (performance.now() - start) / 1000;
  const serverCpuS = pids.reduce(
    (sum, pid, i) => sum + processStats(pid).cpuSeconds - (cpuBefore[i] ?? 0),
    0,
  );
  const redisAfter = await redisCpu(redis);
  const gen = process.cpuUsage(genBefore);
  for (const r of receivers) r.onMessage = () => {};
  const n = Math.min(received, capacity);
  const early: number[] = [];
  const late: number[] = [];
  for (let i = 0; i < n; i++) {
    const at = (sentAts[i] as number) - start;
    if (at < durationMs / 4) early.push(latencies[i] as number);
    else if (at >= (durationMs * 3) / 4) late.push(latencies[i] as number);
  }
  const samples = latencies.subarray(0, n);
  const sent = pacer.sent();
  return {
    sent,
    received,
    lost: sent - received,
    p50: percentile(samples, 50),
    p99: percentile(samples, 99),
    drainMs: received >= sent ? Math.max(0, lastArrival - lastSend) : null,
    earlyP50: percentile(early, 50),
    lateP50: percentile(late, 50),
    serverCpuS,
    redisCpuS: redisBefore !== null && redisAfter !== null ? redisAfter - redisBefore : null,
    generatorCpu: Math.round(((gen.user + gen.system) / 1e6 / wallS) * 100),
  };
}

/** Why a step was not sustained, or null: loss, a backlog left at the end, or one growing. */
function notSustained(r: FlowResult): string | null {
  if (r.lost) return `${r.lost} undelivered 3 s after`;
  if (r.drainMs === null || r.drainMs > DRAIN_LIMIT_MS)
    return `backlog: last message ${Math.round(r.drainMs ?? 0)} ms after the last send`;
  if ((r.lateP50 ?? 0) > 3 * (r.earlyP50 ?? 0) + 10)
    return `backlog growing: p50 ${ms(r.earlyP50)} → ${ms(r.lateP50)} ms`;
  return null;
}

/**
 * Steps the offered rate up until a step is not sustained; the last one that was. A step
 * that fails is run once more before it counts: on a shared machine a stall of another
 * process can fail one step, an overload fails both.
 */
async function maxSustained(
  label: string,
  senders: PacedPublisher[],
  receivers: LeanClient[],
  pids: number[],
  redis: Redis,
): Promise<{ rate: number; limitedBy: string }> {
  let best = 0;
  for (const rate of RATE_STEPS) {
    let why: string | null = null;
    let generatorBound = false;
    for (let attempt = 1; attempt <= 2; attempt++) {
      const r = await flow(senders, receivers, rate, STEP_SECONDS, pids, redis);
      why = notSustained(r);
      // A generator near a full core of its own is the limit, whatever the servers could do.
      generatorBound = r.generatorCpu >= 90;
      const wallS = STEP_SECONDS + (r.drainMs ?? 3000) / 1000;
      console.log(
        `    ${label} @ ${rate} msg/s${attempt > 1 ? " (again)" : ""}: undelivered ${r.lost} p50 ${ms(r.p50)} ms p99 ${ms(r.p99)} ms drain ${r.drainMs === null ? "-" : Math.round(r.drainMs)} ms, cpu: servers ${Math.round((r.serverCpuS / wallS) * 100)}% generator ${r.generatorCpu}%${why ? `  <- not sustained (${why})` : ""}`,
      );
      if (!why) break;
      for (const pid of pids) await untilIdle(pid);
    }
    if (why)
      return {
        rate: best,
        limitedBy: `${generatorBound ? "load generator: " : ""}${why} at ${rate}/s`,
      };
    best = rate;
    await sleep(300);
  }
  return { rate: best, limitedBy: "highest step" };
}

/** GET /units/{uuid} from REST_CONNECTIONS clients spread evenly over the processes. */
async function restReads(procs: BenchServer[], unitUuid: string, token: string) {
  const results = await Promise.all(
    procs.map((p, i) =>
      autocannon({
        url: `${p.url}/pepeunit/api/v1/units/${unitUuid}`,
        headers: { "x-auth-token": token },
        connections:
          Math.floor(REST_CONNECTIONS / procs.length) +
          (i < REST_CONNECTIONS % procs.length ? 1 : 0),
        duration: REST_SECONDS,
      }),
    ),
  );
  const perProcess = results.map((r) => Math.round(r.requests.average));
  return {
    rps: perProcess.reduce((a, b) => a + b, 0),
    perProcess,
    // Percentiles of two runs do not merge: the worse of the processes'.
    p50: Math.max(...results.map((r) => r.latency.p50)),
    p99: Math.max(...results.map((r) => r.latency.p99)),
    errors: results.reduce((a, r) => a + r.errors + r.non2xx + r.timeouts, 0),
    requests: results.reduce((a, r) => a + r.requests.total, 0),
  };
}

type Reference = {
  p50: number | null;
  p99: number | null;
  lost: number;
  /** CPU-seconds per 1 000 messages of this process (ioredis publishing and receiving), and of Redis. */
  clientCpuPer1k: number;
  redisCpuPer1k: number | null;
};

/**
 * Redis PUBLISH → message on a second connection, alone (ioredis both ends, the publisher
 * auto-pipelined as mqemitter-redis connects it), at `rate` for `seconds`: the hop's
 * latency and what it costs a client and Redis, without Aedes or Pepeunit around it.
 */
async function redisReference(
  redisUrl: string,
  namespace: string,
  redis: Redis,
  rate: number,
  seconds: number,
): Promise<Reference> {
  const { Redis: RedisClient } = await import("ioredis");
  const pub = new RedisClient(redisUrl, { enableAutoPipelining: true });
  const sub = new RedisClient(redisUrl);
  const channel = `${namespace}:bench-reference`;
  try {
    await sub.subscribe(channel);
    const latencies: number[] = [];
    sub.on("messageBuffer", (_ch: Buffer, msg: Buffer) => {
      latencies.push(performance.now() - msg.readDoubleLE(0));
    });
    const durationMs = seconds * 1000;
    const cpuBefore = process.cpuUsage();
    const redisBefore = await redisCpu(redis);
    const start = performance.now();
    let sent = 0;
    for (;;) {
      const now = performance.now();
      const elapsed = Math.min(now - start, durationMs);
      const due = Math.floor((elapsed * rate) / 1000) - sent;
      for (let i = 0; i < due; i++) {
        const buf = Buffer.alloc(20);
        buf.writeDoubleLE(now, 0);
        void pub.publish(channel, buf);
      }
      sent += Math.max(0, due);
      if (now - start >= durationMs) break;
      await sleep(1);
    }
    const until = performance.now() + 2000;
    while (latencies.length < sent && performance.now() < until) await sleep(5);
    const cpu = process.cpuUsage(cpuBefore);
    const redisAfter = await redisCpu(redis);
    // The first messages pay for connection warm-up, as the brokers' warm-up runs do.
    const steady = latencies.slice(Math.floor(latencies.length / 10));
    return {
      p50: percentile(steady, 50),
      p99: percentile(steady, 99),
      lost: sent - latencies.length,
      clientCpuPer1k: ((cpu.user + cpu.system) / 1e6 / sent) * 1000,
      redisCpuPer1k:
        redisBefore !== null && redisAfter !== null
          ? ((redisAfter - redisBefore) / sent) * 1000
          : null,
    };
  } finally {
    sub.disconnect();
    pub.disconnect();
  }
}

/** Deletes what the run left in Redis under its namespace (sessions, presence). */
async function dropNamespace(redis: Redis, namespace: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${namespace}*`, "COUNT", 1000);
    cursor = next;
    if (keys.length) await redis.unlink(...keys);
  } while (cursor !== "0");
}

async function waitForMembers(proc: BenchServer, n: number): Promise<string[]> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const res = await fetch(`${proc.url}/healthz`);
    const body = (await res.json()) as { cluster?: Array<{ node: string; roles: string[] }> };
    const members = body.cluster ?? [];
    if (members.length >= n) return members.map((m) => `${m.node}[${m.roles.length} roles]`);
    if (Date.now() > deadline)
      throw new Error(`/healthz lists ${members.length} cluster members, expected ${n}`);
    await sleep(200);
  }
}

export async function clusterSuite(
  database: { name: string; url?: string },
  seconds: number,
): Promise<void> {
  console.log(`\n# Cluster mode on ${database.name}: 2 processes vs 1`);
  const began = performance.now();
  if (!database.url) {
    console.log("  skipped: cluster mode needs PostgreSQL (PGlite belongs to one process)");
    record({
      suite: "cluster",
      case: "2 processes vs 1",
      database: database.name,
      metric: { skipped: "cluster mode needs PostgreSQL (PGlite belongs to one process)" },
    });
    return;
  }
  const redisUrl = process.env.PEPEUNIT_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
  const { Redis: RedisClient } = await import("ioredis");
  const redis = new RedisClient(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    redis.disconnect();
    console.log(`  skipped: no Redis at ${redisUrl} (${(err as Error).message})`);
    record({
      suite: "cluster",
      case: "2 processes vs 1",
      database: database.name,
      metric: { skipped: `no Redis at ${redisUrl} (PEPEUNIT_TEST_REDIS_URL)` },
    });
    return;
  }
  const cores = os.cpus().length;
  const cpuSets =
    process.env.BENCH_CLUSTER_CPUS?.split(";") ?? (cores >= 3 ? ["0", "2"] : ["0", "0"]);
  const coresNote =
    cpuSets[0] === cpuSets[1]
      ? `P1 and P2 share core ${cpuSets[0]} (${cores} cores): ×2 shows overhead, not scale-out`
      : `P1 on ${cpuSets[0]}, P2 on ${cpuSets[1]}`;
  console.log(`  cores: ${coresNote}`);

  const namespace = `bench-${randomBytes(4).toString("hex")}`;
  // The same keys, domain and repositories for every server: tokens, topics and
  // firmware templates made through one are valid on all.
  const common: Record<string, string> = {
    PEPEUNIT_MQTT_MAX_MSG_PER_S: "10000000",
    PEPEUNIT_SECRET_KEY: randomBytes(32).toString("base64"),
    PEPEUNIT_ENCRYPT_KEY: randomBytes(32).toString("base64"),
    PEPEUNIT_DOMAIN: "pepeunit-bench.test",
    PEPEUNIT_REPOSITORIES_DIR: path.join(
      mkdtempSync(path.join(tmpdir(), "pepeunit-bench-cluster-")),
      "repositories",
    ),
  };
  const clusterEnv = (node: string) => ({
    ...common,
    PEPEUNIT_CLUSTER_REDIS_URL: redisUrl,
    PEPEUNIT_CLUSTER_NAMESPACE: namespace,
    PEPEUNIT_NODE_NAME: node,
  });
  const databaseUrl = database.url;
  const running: BenchServer[] = [];
  /** With BENCH_CPU_PROF=1: each server's name and the routing runs to read its profile by. */
  const profiled = new Map<
    BenchServer,
    { name: string; windows: ProfileWindow[]; titles: string[] }
  >();
  const start = async (name: string, env: Record<string, string>, cpus: string) => {
    const s = await startBenchServer({ databaseUrl, env, cpus });
    running.push(s);
    profiled.set(s, { name, windows: [], titles: [] });
    return s;
  };
  const stopAll = async () => {
    for (const s of running.splice(0)) {
      await s.stop();
      const file = s.cpuProfDir ? newestProfile(s.cpuProfDir) : null;
      const p = profiled.get(s);
      if (!file || !p) continue;
      p.windows.forEach((w, i) => {
        printProfile(`${p.name}, ${p.titles[i]}`, file, 12, w);
      });
    }
  };
  const clients: LeanClient[] = [];
  const closeClients = async () => {
    const closing = clients.splice(0);
    for (const c of closing) c.close();
    await Promise.all(closing.map((c) => Promise.race([c.closed, sleep(2000)])));
  };
  const results: Partial<Record<LayoutName, Measured>> = {};
  let reference: { latency: Reference; cost: Reference } | null = null;
  try {
    // The fleet, made once on the single server: a latency pair and PAIRS routing pairs.
    let procs = [await start("single", common, cpuSets[0] as string)];
    const world = await createBenchWorld((procs[0] as BenchServer).url, "bench-cluster");
    const units = await world.createUnits(2 + 2 * PAIRS);
    const [latSender, latReceiver] = units as [BenchUnit, BenchUnit];
    const senders = units.slice(2, 2 + PAIRS);
    const receivers = units.slice(2 + PAIRS);
    await world.link(latSender.nodeUuid("Output", OUT), latReceiver.nodeUuid("Input", IN));
    await pool(senders, 8, (s, i) =>
      world.link(s.nodeUuid("Output", OUT), (receivers[i] as BenchUnit).nodeUuid("Input", IN)),
    );
    // schema.json after the edges: the receivers' input_topic lists now hold the linked outputs.
    await pool([latReceiver, ...receivers], 8, (u) => world.refresh(u));

    const connectOn = async (proc: BenchServer, unit: BenchUnit) => {
      const [c] = await connectUnits({ name: "pepeunit", port: proc.mqttPort, pid: proc.pid }, [
        { unit, topics: unit.inputTopics() },
      ]);
      clients.push(c as LeanClient);
      return c as LeanClient;
    };

    const measure = async (layout: LayoutName): Promise<Measured> => {
      console.log(`  ${layout} (${procs.length} process${procs.length > 1 ? "es" : ""}):`);
      const pids = procs.map((p) => p.pid);
      const at = (i: number) => procs[i % procs.length] as BenchServer;
      // Latency: publisher on P1, subscriber on the last process (P2 on ×2).
      const latPair: PacedPublisher = {
        client: await connectOn(at(0), latSender),
        encoder: new PublishEncoder(latSender.topic("Output", OUT), 20),
      };
      const latRecv = await connectOn(at(procs.length - 1), latReceiver);
      // Routing pairs: senders alternate P1/P2; receivers so that pairs 0,1 of every 4
      // stay on their process and pairs 2,3 cross (half of the traffic, both directions).
      const pairs: PacedPublisher[] = [];
      const recvClients: LeanClient[] = [];
      let crossing = 0;
      await pool(senders, 8, async (s, i) => {
        const r = receivers[i] as BenchUnit;
        const sp = i % procs.length;
        const rp = (i + (i >> 1)) % procs.length;
        if (sp !== rp) crossing++;
        recvClients[i] = await connectOn(at(rp), r);
        pairs[i] = {
          client: await connectOn(at(sp), s),
          encoder: new PublishEncoder(s.topic("Output", OUT), 20),
        };
      });
      console.log(`    ${PAIRS} routing pairs, ${crossing} across processes`);

      // Warm-up (JIT, the garbage of connecting, a new subscription's first trip through Redis).
      await flow(pairs, recvClients, 2_000, 2, pids, redis);
      await flow([latPair], [latRecv], 1_000, 2, pids, redis);
      const latency = await flow([latPair], [latRecv], 1_000, seconds, pids, redis);
      console.log(
        `    1 pair${procs.length > 1 ? " P1 → P2" : ""} @ 1000 msg/s: p50 ${ms(latency.p50)} ms p99 ${ms(latency.p99)} ms undelivered ${latency.lost}`,
      );
      for (const pid of pids) await untilIdle(pid);
      const fromUs = monotonicUs();
      const commandsBefore = await redisCommands(redis);
      const cpu = await flow(pairs, recvClients, CPU_RATE, CPU_SECONDS, pids, redis);
      const commandsAfter = await redisCommands(redis);
      const redisCommandsPerMsg =
        commandsBefore !== null && commandsAfter !== null
          ? Math.round(((commandsAfter - commandsBefore) / cpu.sent) * 100) / 100
          : null;
      for (const proc of procs) {
        profiled.get(proc)?.windows.push({ fromUs, toUs: monotonicUs() });
        profiled.get(proc)?.titles.push(`${layout}, ${CPU_RATE} msg/s for ${CPU_SECONDS} s`);
      }
      console.log(
        `    ${CPU_RATE} msg/s for ${CPU_SECONDS} s: servers ${cpu.serverCpuS.toFixed(2)} cpu-s, Redis ${cpu.redisCpuS?.toFixed(2) ?? "?"} cpu-s (${redisCommandsPerMsg ?? "?"} commands/msg), undelivered ${cpu.lost}`,
      );
      const sustained = await maxSustained(layout, pairs, recvClients, pids, redis);
      // The step that failed may have left a backlog: REST reads start once it is routed.
      for (const pid of pids) await untilIdle(pid);
      const before = pids.map((pid) => processStats(pid).cpuSeconds);
      const rest = await restReads(procs, latSender.uuid, world.token);
      const restCpuS = pids.map((pid, i) => processStats(pid).cpuSeconds - (before[i] ?? 0));
      const restCpu = restCpuS.map((s) => Math.round((s / REST_SECONDS) * 100));
      const restCpuUs = usPerUnit(
        restCpuS.reduce((a, b) => a + b, 0),
        rest.requests,
      );
      console.log(
        `    GET /units/{uuid} x${REST_CONNECTIONS}: ${rest.rps} req/s (${rest.perProcess.join(" + ")}) p99 ${rest.p99} ms errors ${rest.errors}, server cpu ${restCpu.map((c) => `${c}%`).join(" + ")}`,
      );
      await closeClients();
      return { latency, cpu, redisCommandsPerMsg, sustained, rest, restCpuUs };
    };

    results.single = await measure("single");
    await stopAll();

    procs = [await start("P1", clusterEnv("bench-p1"), cpuSets[0] as string)];
    await waitForMembers(procs[0] as BenchServer, 1);
    results["cluster ×1"] = await measure("cluster ×1");

    procs.push(await start("P2", clusterEnv("bench-p2"), cpuSets[1] as string));
    console.log(`  cluster: ${(await waitForMembers(procs[0] as BenchServer, 2)).join(", ")}`);
    results["cluster ×2"] = await measure("cluster ×2");
    await stopAll();

    const latency = await redisReference(redisUrl, namespace, redis, 1000, REDIS_REF_SECONDS);
    console.log(
      `  Redis PUBLISH → message alone @ 1000 msg/s: p50 ${ms(latency.p50)} ms p99 ${ms(latency.p99)} ms`,
    );
    const cost = await redisReference(redisUrl, namespace, redis, CPU_RATE, CPU_SECONDS);
    console.log(
      `  Redis PUBLISH → message alone @ ${CPU_RATE} msg/s: ioredis client ${cpu4(cost.clientCpuPer1k)} cpu-s and Redis ${cpu4(cost.redisCpuPer1k)} cpu-s per 1000 messages, undelivered ${cost.lost}`,
    );
    reference = { latency, cost };
  } finally {
    await closeClients();
    await stopAll();
    await dropNamespace(redis, namespace).catch(() => {});
    redis.disconnect();
  }
  console.log(`  (cluster suite: ${Math.round((performance.now() - began) / 1000)} s)`);
  report(database.name, results, reference, coresNote);
}

function report(
  db: string,
  results: Partial<Record<LayoutName, Measured>>,
  reference: { latency: Reference; cost: Reference } | null,
  coresNote: string,
): void {
  const single = results.single;
  const one = results["cluster ×1"];
  const two = results["cluster ×2"];
  if (!single || !one || !two) return;
  record({
    suite: "cluster",
    case: "unit → unit latency @ 1k msg/s (×2: publisher on P1, subscriber on P2)",
    database: db,
    metric: {
      "single p50/p99 ms": `${ms(single.latency.p50)}/${ms(single.latency.p99)}`,
      "cluster ×1 p50/p99 ms": `${ms(one.latency.p50)}/${ms(one.latency.p99)}`,
      "cluster ×2 p50/p99 ms": `${ms(two.latency.p50)}/${ms(two.latency.p99)}`,
      "×2/×1 p50": ratio2(two.latency.p50, one.latency.p50),
      "×2/×1 p99": ratio2(two.latency.p99, one.latency.p99),
      "cluster/single p50": ratio2(one.latency.p50, single.latency.p50),
      "cluster/single p99": ratio2(one.latency.p99, single.latency.p99),
      undelivered: single.latency.lost + one.latency.lost + two.latency.lost,
      // ×2, the layout the suite is about; the processes' CPU added up.
      [CPU_PER_UNIT]: usPerUnit(two.latency.serverCpuS, two.latency.received),
      [WORK_UNIT]: "message delivered (×2, both processes)",
    },
    goal: "reported (docs/cluster.md: cross-process p50/p99)",
    met: null,
  });
  record({
    suite: "cluster",
    case: `max sustained routed rate, ${PAIRS} pairs (×2: half across processes), no loss, no backlog`,
    database: db,
    metric: {
      "single msg/s": single.sustained.rate,
      "cluster ×1 msg/s": one.sustained.rate,
      "cluster ×2 msg/s": two.sustained.rate,
      "×2/×1": ratio2(two.sustained.rate, one.sustained.rate),
      "cluster/single": ratio2(one.sustained.rate, single.sustained.rate),
      "single limited by": single.sustained.limitedBy,
      "×1 limited by": one.sustained.limitedBy,
      "×2 limited by": two.sustained.limitedBy,
      cores: coresNote,
    },
    goal: "reported (docs/cluster.md: msg/s per process, ×2/×1)",
    met: null,
  });
  record({
    suite: "cluster",
    case: `REST GET /units/{uuid}, ${REST_CONNECTIONS} clients (×2: spread over both)`,
    database: db,
    metric: {
      "single req/s": single.rest.rps,
      "cluster ×1 req/s": one.rest.rps,
      "cluster ×2 req/s": `${two.rest.rps} (${two.rest.perProcess.join("+")})`,
      "×2/×1": ratio2(two.rest.rps, one.rest.rps),
      "cluster/single": ratio2(one.rest.rps, single.rest.rps),
      "p99 ms single/×1/×2": `${single.rest.p99}/${one.rest.p99}/${two.rest.p99}`,
      errors: single.rest.errors + one.rest.errors + two.rest.errors,
      cores: coresNote,
      [CPU_PER_UNIT]: two.restCpuUs,
      [WORK_UNIT]: "request answered (×2, both processes)",
      "single cpu_us_per_unit": single.restCpuUs,
    },
    goal: "reported (docs/cluster.md: REST reads per process, ×2/×1)",
    met: null,
  });
  const per1000 = (r: FlowResult, v: number | null) => (v === null ? null : (v / r.sent) * 1000);
  const srv = (m: Measured) => per1000(m.cpu, m.cpu.serverCpuS);
  const red = (m: Measured) => per1000(m.cpu, m.cpu.redisCpuS);
  const diff = (a: number | null, b: number | null) =>
    a === null || b === null ? null : Math.round((a - b) * 100) / 100;
  // mqemitter-redis sends a local delivery through Redis too, so ×1 already pays the hop:
  // cluster − single is the hop as the broker pays it, ×2 − ×1 what crossing adds to it.
  const hop = diff(one.latency.p50, single.latency.p50);
  record({
    suite: "cluster",
    case: `where the cross-process cost goes: cpu-s per 1000 routed msgs @ ${CPU_RATE}/s, Redis hop`,
    database: db,
    metric: {
      "redis pub→msg p50/p99 ms": reference
        ? `${ms(reference.latency.p50)}/${ms(reference.latency.p99)}`
        : null,
      "redis alone: client cpu-s/1k": cpu4(reference?.cost.clientCpuPer1k ?? null),
      "redis alone: redis cpu-s/1k": cpu4(reference?.cost.redisCpuPer1k ?? null),
      "server cpu-s/1k single": cpu4(srv(single)),
      "server cpu-s/1k ×1": cpu4(srv(one)),
      "server cpu-s/1k ×2": cpu4(srv(two)),
      "server ×2/×1": ratio2(srv(two), srv(one)),
      "server cluster/single": ratio2(srv(one), srv(single)),
      "redis cpu-s/1k single": cpu4(red(single)),
      "redis cpu-s/1k ×1": cpu4(red(one)),
      "redis cpu-s/1k ×2": cpu4(red(two)),
      "redis ×2/×1": ratio2(red(two), red(one)),
      "redis commands/msg single/×1/×2": `${single.redisCommandsPerMsg}/${one.redisCommandsPerMsg}/${two.redisCommandsPerMsg}`,
      // Negative when the machine's noise is larger than the difference: no ratio then.
      "p50 cluster − single ms": hop,
      "that / redis alone p50":
        hop !== null && hop > 0 ? ratio2(hop, reference?.latency.p50 ?? null) : null,
      "p50 ×2 − ×1 ms": diff(two.latency.p50, one.latency.p50),
      "server cpu-s/1k cluster − single": cpu4(diff2(srv(one), srv(single))),
      "that / redis alone client cpu-s/1k": ratio2(
        diff2(srv(one), srv(single)),
        reference?.cost.clientCpuPer1k ?? null,
      ),
      undelivered: single.cpu.lost + one.cpu.lost + two.cpu.lost,
      [CPU_PER_UNIT]: usPerUnit(two.cpu.serverCpuS, two.cpu.received),
      [WORK_UNIT]: `message routed @ ${CPU_RATE}/s (×2, both processes)`,
      "single cpu_us_per_unit": usPerUnit(single.cpu.serverCpuS, single.cpu.received),
    },
    goal: "reported (docs/cluster.md: Redis PUBLISH → message p50)",
    met: null,
  });
}
