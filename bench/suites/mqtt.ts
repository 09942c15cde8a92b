import { performance } from "node:perf_hooks";
import { type BenchUnit, call, createBenchWorld, pool } from "../lib/bench-world.ts";
import { CPU_PER_UNIT, cpuMeter, usPerUnit, WORK_UNIT } from "../lib/cpu-per-unit.ts";
import {
  monotonicUs,
  newestProfile,
  type ProfileWindow,
  printProfile,
} from "../lib/cpu-profile.ts";
import { LeanClient, PublishEncoder } from "../lib/lean-mqtt.ts";
import { type ReferenceBroker, startMosquitto } from "../lib/mosquitto.ts";
import { createPacedSender } from "../lib/paced-sender.ts";
import { processStats, untilIdle } from "../lib/process-stats.ts";
import { record } from "../lib/report.ts";
import { startBenchServer } from "../lib/server.ts";
import { ms, percentile, ratio, sleep } from "../lib/stats.ts";

// Device-plane routing, Pepeunit against a Mosquitto started here, both pinned to
// core 0 and driven by the same load generator (bench/lib/lean-mqtt.ts) from this
// process. On Pepeunit every client is a real unit (its JWT, its exact ACL) and every
// route a real edge; Mosquitto gets the same client ids, topics and payloads,
// anonymously. Goals: latency within 3× Mosquitto's; ≥ 30 000 routed msg/s with
// authorization on.
//
// The per-client rate limit of the instance (PEPEUNIT_MQTT_MAX_MSG_PER_S, default 100)
// is raised for this server: a few clients carry the whole load here.

const PAIRS = 10;
const FANOUT = 100;
const RATE_STEPS = [
  2_000, 5_000, 10_000, 20_000, 30_000, 40_000, 50_000, 60_000, 80_000, 100_000, 150_000, 200_000,
];
/** Sustained: every message arrived (at most 3 s after the step) and the backlog stayed bounded (p99 under this). */
const SUSTAINED_P99_MS = 100;
const MAGIC = 0x70657065;

export type Target = { name: "pepeunit" | "mosquitto"; port: number; pid: number };

type Endpoint = { unit: BenchUnit; topics: string[] };

/** Connects one lean client per unit, subscribing one topic per SUBSCRIBE like a device. */
export async function connectUnits(target: Target, endpoints: Endpoint[]): Promise<LeanClient[]> {
  return pool(endpoints, 20, async ({ unit, topics }) => {
    const c = await LeanClient.connect({
      port: target.port,
      clientId: unit.uuid,
      username: unit.token,
    });
    for (const t of topics) {
      const granted = await c.subscribe(t);
      if (granted === 0x80) throw new Error(`${target.name} refused ${t} to ${unit.uuid}`);
    }
    return c;
  });
}

type FlowResult = {
  sent: number;
  received: number;
  lost: number;
  p50: number | null;
  p99: number | null;
  /** Busy share of one core, in %, from the step's start until the last message arrived. */
  serverCpu: number;
  /** The broker's CPU-seconds over the same window. */
  cpuSeconds: number;
  generatorCpu: number;
};

/**
 * Each sender publishes on its output at rate/senders msg/s for `seconds`; every
 * message carries its send time, the receivers record the latency. Then up to 3 s
 * for stragglers.
 */
export async function flow(
  target: Target,
  senders: Array<{ client: LeanClient; encoder: PublishEncoder }>,
  receivers: LeanClient[],
  rate: number,
  seconds: number,
): Promise<FlowResult> {
  const runId = (Math.random() * 0xffffffff) >>> 0;
  const capacity = Math.ceil(rate * seconds * 1.05) + 1000;
  const latencies = new Float64Array(capacity);
  let received = 0;
  for (const r of receivers) {
    r.onMessage = (_topic, payload) => {
      if (
        payload.length !== 20 ||
        payload.readUInt32LE(12) !== runId ||
        payload.readUInt32LE(16) !== MAGIC
      )
        return;
      const sentAt = payload.readDoubleLE(0);
      if (received < capacity) latencies[received] = performance.now() - sentAt;
      received++;
    };
  }
  const cpuBefore = processStats(target.pid).cpuSeconds;
  const genBefore = process.cpuUsage();
  const durationMs = seconds * 1000;
  const start = performance.now();
  const pacer = createPacedSender({ senders, rate, durationMs, runId, magic: MAGIC });
  const sendDue = pacer.sendDue;
  for (;;) {
    const now = performance.now();
    const elapsed = now - start;
    sendDue(now, elapsed);
    if (elapsed >= durationMs) break;
    await sleep(1);
  }
  const drainUntil = performance.now() + 3000;
  while (received < pacer.sent() && performance.now() < drainUntil) await sleep(5);
  const wallS = (performance.now() - start) / 1000;
  const cpu = processStats(target.pid).cpuSeconds - cpuBefore;
  const gen = process.cpuUsage(genBefore);
  for (const r of receivers) r.onMessage = () => {};
  const samples = latencies.subarray(0, Math.min(received, capacity));
  const sent = pacer.sent();
  return {
    sent,
    received,
    lost: sent - received,
    p50: percentile(samples, 50),
    p99: percentile(samples, 99),
    serverCpu: Math.round((cpu / wallS) * 100),
    cpuSeconds: cpu,
    generatorCpu: Math.round(((gen.user + gen.system) / 1e6 / wallS) * 100),
  };
}

/** Steps the rate up until a step loses messages or its backlog grows; the last good rate. */
async function maxSustained(
  target: Target,
  senders: Array<{ client: LeanClient; encoder: PublishEncoder }>,
  receivers: LeanClient[],
  stepSeconds: number,
): Promise<{ rate: number; limitedBy: string; last: FlowResult | null }> {
  let best = 0;
  let last: FlowResult | null = null;
  for (const rate of RATE_STEPS) {
    const r = await flow(target, senders, receivers, rate, stepSeconds);
    const ok = r.lost === 0 && (r.p99 ?? Infinity) < SUSTAINED_P99_MS;
    console.log(
      `    ${target.name} @ ${rate} msg/s: sent ${r.sent} undelivered ${r.lost} p50 ${ms(r.p50)} ms p99 ${ms(r.p99)} ms, cpu: server ${r.serverCpu}% generator ${r.generatorCpu}%${ok ? "" : "  <- not sustained"}`,
    );
    // A generator near a full core of its own is the limit, whatever the broker could do.
    const generatorBound = r.generatorCpu >= 90;
    if (!ok) {
      const why = r.lost
        ? `${r.lost} undelivered 3 s after ${rate}/s`
        : `p99 ${ms(r.p99)} ms at ${rate}/s`;
      return { rate: best, limitedBy: generatorBound ? `load generator (${why})` : why, last: r };
    }
    best = rate;
    last = r;
    await sleep(300);
  }
  return { rate: best, limitedBy: "highest step", last };
}

type FanResult = {
  rounds: number;
  complete: number;
  p50: number | null;
  p99: number | null;
  /** The broker's CPU in µs per message delivered to a subscriber. */
  cpuUs: number | null;
};

/**
 * Rounds of "one message to each of `receivers`": `send(tag)` starts a round, the round
 * ends when every receiver got a payload with that tag. Time to the last subscriber.
 */
async function fanout(
  pid: number,
  receivers: LeanClient[],
  rounds: number,
  send: (tag: string) => Promise<void> | void,
): Promise<FanResult> {
  const runId = Math.random().toString(36).slice(2, 8);
  let counts = new Map<string, number>();
  let done: ((t: number) => void) | null = null;
  let current = "";
  let delivered = 0;
  for (const r of receivers) {
    r.onMessage = (_topic, payload) => {
      const tag = payload.toString("latin1");
      if (tag !== current) return;
      delivered++;
      const n = (counts.get(tag) ?? 0) + 1;
      counts.set(tag, n);
      if (n === receivers.length) done?.(performance.now());
    };
  }
  const times: number[] = [];
  const cpu = cpuMeter([pid]);
  for (let i = 0; i < rounds; i++) {
    current = `fan:${runId}:${i}`;
    counts = new Map();
    const finished = new Promise<number | null>((resolve) => {
      done = resolve;
      setTimeout(() => resolve(null), 5000).unref();
    });
    const t0 = performance.now();
    await send(current);
    const t1 = await finished;
    if (t1 !== null) times.push(t1 - t0);
    await sleep(5);
  }
  const cpuUs = usPerUnit(cpu(), delivered);
  for (const r of receivers) r.onMessage = () => {};
  return {
    rounds,
    complete: times.length,
    p50: percentile(times, 50),
    p99: percentile(times, 99),
    cpuUs,
  };
}

type Measured = {
  latency: FlowResult;
  sustained: { rate: number; limitedBy: string; last: FlowResult | null };
  unitFan: FanResult;
  instanceFan: FanResult;
  restFan: FanResult | null;
};

export async function mqttSuite(
  database: { name: string; url?: string },
  seconds: number,
): Promise<void> {
  console.log(`\n# MQTT routing on ${database.name}: Pepeunit vs Mosquitto`);
  const server = await startBenchServer({
    databaseUrl: database.url,
    env: { PEPEUNIT_MQTT_MAX_MSG_PER_S: "10000000" },
  });
  let mosquitto: ReferenceBroker | null = null;
  const clients: LeanClient[] = [];
  /** Phases of the Pepeunit server's life, to read its CPU profile by phase. */
  const windows: Array<{ title: string; window: ProfileWindow }> = [];
  const phase = async <T>(target: Target, title: string, run: () => Promise<T>): Promise<T> => {
    const fromUs = monotonicUs();
    try {
      return await run();
    } finally {
      if (target.name === "pepeunit")
        windows.push({ title, window: { fromUs, toUs: monotonicUs() } });
    }
  };
  try {
    mosquitto = await startMosquitto();
    if (!mosquitto)
      console.log("  mosquitto is not installed: Pepeunit is measured alone, without ratios");

    const world = await createBenchWorld(server.url, "bench-mqtt");
    const units = await world.createUnits(2 * PAIRS + 1 + FANOUT);
    const senders = units.slice(0, PAIRS);
    const receivers = units.slice(PAIRS, 2 * PAIRS);
    const fanSender = units[2 * PAIRS] as BenchUnit;
    const fanReceivers = units.slice(2 * PAIRS + 1);
    const OUT = "output/pepeunit";
    const IN = "input/pepeunit";
    await pool(senders, 8, (s, i) =>
      world.link(s.nodeUuid("Output", OUT), (receivers[i] as BenchUnit).nodeUuid("Input", IN)),
    );
    await pool(fanReceivers, 8, (r) =>
      world.link(fanSender.nodeUuid("Output", OUT), r.nodeUuid("Input", IN)),
    );
    // schema.json after the edges: the receivers' input_topic lists now hold the linked outputs.
    await pool([...receivers, ...fanReceivers], 8, (u) => world.refresh(u));

    const stepSeconds = Math.max(2, Math.min(5, seconds / 2));
    const measure = async (target: Target): Promise<Measured> => {
      console.log(`  ${target.name}:`);
      const endpoints = (list: BenchUnit[]) =>
        list.map((unit) => ({ unit, topics: unit.inputTopics() }));
      const sendClients = await connectUnits(target, endpoints(senders));
      const recvClients = await connectUnits(target, endpoints(receivers));
      const fanSendClient = (await connectUnits(target, endpoints([fanSender])))[0] as LeanClient;
      const fanRecvClients = await connectUnits(target, endpoints(fanReceivers));
      clients.push(...sendClients, ...recvClients, fanSendClient, ...fanRecvClients);
      const pairs = sendClients.map((client, i) => ({
        client,
        encoder: new PublishEncoder((senders[i] as BenchUnit).topic("Output", OUT), 20),
      }));

      // Three seconds at the same rate first (both brokers), so JIT warm-up and the collection
      // of the garbage left by connecting the clients are not counted as routing latency.
      await flow(target, pairs.slice(0, 1), recvClients.slice(0, 1), 1000, 3);
      const latency = await flow(target, pairs.slice(0, 1), recvClients.slice(0, 1), 1000, seconds);
      console.log(
        `    1 pair @ 1000 msg/s: p50 ${ms(latency.p50)} ms p99 ${ms(latency.p99)} ms undelivered ${latency.lost}`,
      );
      const sustained = await phase(target, "routing at stepped rates", () =>
        maxSustained(target, pairs, recvClients, stepSeconds),
      );
      // The step that failed may have left a backlog the broker is still routing; the
      // fan-out runs only once it is idle again, or it would measure that backlog.
      await untilIdle(target.pid);

      const fanTopic = fanSender.topic("Output", OUT);
      const unitFan = await fanout(
        target.pid,
        fanRecvClients,
        Math.max(50, Math.min(300, seconds * 20)),
        (tag) => fanSendClient.publish(fanTopic, tag),
      );
      console.log(
        `    1 unit -> ${FANOUT} units: p50 ${ms(unitFan.p50)} ms p99 ${ms(unitFan.p99)} ms (${unitFan.complete}/${unitFan.rounds} complete)`,
      );

      // Instance → 100 units, two ways. (a) A tool or the web UI logged in with the
      // user's JWT publishes into each unit's input over MQTT (authorized per packet as
      // that user); Mosquitto's equivalent is one client publishing the 100 messages.
      // (b) The same through the REST API (PATCH /unit_nodes/set_state_input/{input},
      // 100 requests at once): reported for what an HTTP integration sees, no ratio goal.
      const inputs = fanReceivers.map((u) => ({
        topic: u.topic("Input", IN),
        node: u.nodeUuid("Input", IN),
      }));
      const instanceRounds = Math.max(50, Math.min(300, seconds * 20));
      const publisher = await LeanClient.connect({
        port: target.port,
        clientId: `bench-instance-${target.name}`,
        ...(target.name === "pepeunit" ? { username: world.token } : {}),
      });
      clients.push(publisher);
      const inputEncoders = inputs.map((i) => i.topic);
      const instanceFan = await phase(target, "user client → 100 unit inputs", () =>
        fanout(target.pid, fanRecvClients, instanceRounds, (tag) => {
          for (const topic of inputEncoders) publisher.publish(topic, tag);
        }),
      );
      console.log(
        `    instance (user client) -> ${FANOUT} units: p50 ${ms(instanceFan.p50)} ms p99 ${ms(instanceFan.p99)} ms (${instanceFan.complete}/${instanceFan.rounds} complete)`,
      );
      let restFan: FanResult | null = null;
      if (target.name === "pepeunit") {
        restFan = await phase(target, "instance → 100 units via set_state_input", () =>
          fanout(
            target.pid,
            fanRecvClients,
            Math.max(10, Math.min(40, seconds * 2)),
            async (tag) => {
              await Promise.all(
                inputs.map((i) =>
                  call(
                    server.url,
                    "PATCH",
                    `/unit_nodes/set_state_input/${i.node}`,
                    { state: tag },
                    world.token,
                  ),
                ),
              );
            },
          ),
        );
        console.log(
          `    instance (REST set_state_input x${FANOUT}) -> ${FANOUT} units: p50 ${ms(restFan.p50)} ms p99 ${ms(restFan.p99)} ms (${restFan.complete}/${restFan.rounds} complete)`,
        );
      }
      for (const c of clients.splice(0)) c.close();
      return { latency, sustained, unitFan, instanceFan, restFan };
    };

    const pep = await measure({ name: "pepeunit", port: server.mqttPort, pid: server.pid });
    const mos = mosquitto
      ? await measure({ name: "mosquitto", port: mosquitto.port, pid: mosquitto.pid })
      : null;
    const stats = processStats(server.pid);
    const within3 = (a: number | null, b: number | null | undefined) =>
      b === undefined ? null : a !== null && b !== null && a <= 3 * b;
    const perDelivery = (r: FlowResult | null) => (r ? usPerUnit(r.cpuSeconds, r.received) : null);
    const bothWithin = (
      p: { p50: number | null; p99: number | null },
      m?: { p50: number | null; p99: number | null } | null,
    ) => (m ? Boolean(within3(p.p50, m.p50) && within3(p.p99, m.p99)) : null);

    record({
      suite: "mqtt",
      case: "unit→instance→unit latency @ 1k msg/s",
      database: database.name,
      metric: {
        "p50 ms": ms(pep.latency.p50),
        "p99 ms": ms(pep.latency.p99),
        "mosquitto p50 ms": ms(mos?.latency.p50 ?? null),
        "mosquitto p99 ms": ms(mos?.latency.p99 ?? null),
        "× p50": ratio(pep.latency.p50, mos?.latency.p50 ?? null),
        "× p99": ratio(pep.latency.p99, mos?.latency.p99 ?? null),
        undelivered: pep.latency.lost,
        [CPU_PER_UNIT]: usPerUnit(pep.latency.cpuSeconds, pep.latency.received),
        [WORK_UNIT]: "message delivered",
        "mosquitto cpu_us_per_unit": mos
          ? usPerUnit(mos.latency.cpuSeconds, mos.latency.received)
          : null,
      },
      goal: "p50 and p99 ≤ 3× Mosquitto",
      met: bothWithin(pep.latency, mos?.latency),
    });
    record({
      suite: "mqtt",
      case: `max sustained routed rate, ${PAIRS} unit pairs (ACL on)`,
      database: database.name,
      metric: {
        "msg/s": pep.sustained.rate,
        "limited by": pep.sustained.limitedBy,
        "mosquitto msg/s": mos?.sustained.rate ?? null,
        "mosquitto limited by": mos?.sustained.limitedBy ?? null,
        "× mosquitto": ratio(pep.sustained.rate, mos?.sustained.rate ?? null),
        "server cpu": pep.sustained.last ? `${pep.sustained.last.serverCpu}%` : null,
        [CPU_PER_UNIT]: perDelivery(pep.sustained.last),
        [WORK_UNIT]: "message delivered (at the highest sustained step)",
        "mosquitto cpu_us_per_unit": perDelivery(mos?.sustained.last ?? null),
      },
      goal: ">= 30000 msg/s, no loss",
      met: pep.sustained.rate >= 30_000,
    });
    record({
      suite: "mqtt",
      case: `1 unit → ${FANOUT} units, time to last subscriber`,
      database: database.name,
      metric: {
        "p50 ms": ms(pep.unitFan.p50),
        "p99 ms": ms(pep.unitFan.p99),
        "mosquitto p50 ms": ms(mos?.unitFan.p50 ?? null),
        "mosquitto p99 ms": ms(mos?.unitFan.p99 ?? null),
        "× p50": ratio(pep.unitFan.p50, mos?.unitFan.p50 ?? null),
        "× p99": ratio(pep.unitFan.p99, mos?.unitFan.p99 ?? null),
        incomplete: pep.unitFan.rounds - pep.unitFan.complete,
        [CPU_PER_UNIT]: pep.unitFan.cpuUs,
        [WORK_UNIT]: "message delivered to a subscriber",
        "mosquitto cpu_us_per_unit": mos?.unitFan.cpuUs ?? null,
      },
      goal: "p50 and p99 ≤ 3× Mosquitto",
      met: bothWithin(pep.unitFan, mos?.unitFan),
    });
    record({
      suite: "mqtt",
      case: `instance → ${FANOUT} units (user-JWT client publishes into their inputs), time to last`,
      database: database.name,
      metric: {
        "p50 ms": ms(pep.instanceFan.p50),
        "p99 ms": ms(pep.instanceFan.p99),
        "mosquitto p50 ms": ms(mos?.instanceFan.p50 ?? null),
        "mosquitto p99 ms": ms(mos?.instanceFan.p99 ?? null),
        "× p50": ratio(pep.instanceFan.p50, mos?.instanceFan.p50 ?? null),
        "× p99": ratio(pep.instanceFan.p99, mos?.instanceFan.p99 ?? null),
        incomplete: pep.instanceFan.rounds - pep.instanceFan.complete,
        [CPU_PER_UNIT]: pep.instanceFan.cpuUs,
        [WORK_UNIT]: "message delivered to a subscriber",
        "mosquitto cpu_us_per_unit": mos?.instanceFan.cpuUs ?? null,
      },
      goal: "p50 and p99 ≤ 3× Mosquitto",
      met: bothWithin(pep.instanceFan, mos?.instanceFan),
    });
    if (pep.restFan) {
      record({
        suite: "mqtt",
        case: `instance → ${FANOUT} units (100 concurrent REST set_state_input), time to last`,
        database: database.name,
        metric: {
          "p50 ms": ms(pep.restFan.p50),
          "p99 ms": ms(pep.restFan.p99),
          incomplete: pep.restFan.rounds - pep.restFan.complete,
          "server rss MB": Math.round(stats.rssBytes / 2 ** 20),
          [CPU_PER_UNIT]: pep.restFan.cpuUs,
          [WORK_UNIT]: "input set over REST and delivered",
        },
        goal: "reported (100 HTTP requests; no Mosquitto equivalent)",
        met: null,
      });
    }
  } finally {
    for (const c of clients) c.close();
    await mosquitto?.stop();
    await server.stop();
  }
  const profile = server.cpuProfDir ? newestProfile(server.cpuProfDir) : null;
  if (profile) {
    printProfile("MQTT suite, whole run", profile);
    for (const w of windows) printProfile(`MQTT suite, ${w.title}`, profile, 15, w.window);
  }
}
