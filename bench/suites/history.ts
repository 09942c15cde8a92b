import { performance } from "node:perf_hooks";
import {
  type BenchUnit,
  type BenchWorld,
  call,
  createBenchWorld,
  pool,
} from "../lib/bench-world.ts";
import { CPU_PER_UNIT, cpuMeter, usPerUnit, WORK_UNIT } from "../lib/cpu-per-unit.ts";
import { newestProfile, printProfile } from "../lib/cpu-profile.ts";
import { connectInspector, type Inspector } from "../lib/inspector.ts";
import { connectUnit, type LeanClient, PublishEncoder } from "../lib/lean-mqtt.ts";
import { processStats, untilIdle } from "../lib/process-stats.ts";
import { record } from "../lib/report.ts";
import { type BenchServer, startBenchServer } from "../lib/server.ts";
import { ms, percentile, ratio, sleep } from "../lib/stats.ts";

// Value history ("data pipes") under load. 1 000 output variables, each with a pipe:
// a third NRecords, a third TimeWindow, a third Aggregation Median (windows of a day,
// so they stay open during the run). Devices publish numbers spread evenly over the
// variables; after the run the server is stopped (which flushes the writer) and the
// stored rows are counted in the database: records + open-window values must equal
// the values sent, and the writer must have caught up (server idle) within 5 s of the
// last send, or the rate is not sustained but buffered. Also: unit→instance→unit
// latency at 1 000 msg/s with pipes off and on, reading 10 000 records over HTTP, and
// the server's RSS with the pipes on.

const OUTPUTS_PER_UNIT = 20;
const VARIABLES = 1000;
const GOAL = { postgres: 20_000, pglite: 5_000 } as Record<string, number>;
const READS = 100;
const HISTORY_ROWS = 10_000;

const outputNames = Array.from(
  { length: OUTPUTS_PER_UNIT },
  (_, i) => `v${String(i).padStart(2, "0")}`,
);
const FILES = {
  "env_example.json": JSON.stringify({ PUC_WIFI_SSID: "", PEPEUNIT_URL: "" }),
  "schema_example.json": JSON.stringify({
    input_base_topic: ["update/pepeunit", "env_update/pepeunit", "schema_update/pepeunit"],
    output_base_topic: ["state/pepeunit"],
    input_topic: ["in"],
    output_topic: outputNames,
  }),
  "main.py": "print('bench')\n",
};

const pipeYaml = (policy: string) =>
  `active_period: {type: Permanent}\nfilters: {type_input_value: Number}\nprocessing_policy: ${policy}\n`;
const POLICIES = [
  "{policy_type: NRecords, n_records_count: 1024}",
  "{policy_type: TimeWindow, time_window_size: 86400}",
  "{policy_type: Aggregation, time_window_size: 86400, aggregation_functions: Median}",
];

async function setPipe(world: BenchWorld, nodeUuid: string, yaml: string): Promise<void> {
  const res = await fetch(
    `${world.url}/pepeunit/api/v1/unit_nodes/set_data_pipe_config/${nodeUuid}`,
    {
      method: "POST",
      headers: { "content-type": "application/yaml", "x-auth-token": world.token },
      body: yaml,
    },
  );
  if (res.status !== 204)
    throw new Error(`set_data_pipe_config: ${res.status} ${await res.text()}`);
  await call(
    world.url,
    "PATCH",
    `/unit_nodes/${nodeUuid}`,
    { is_data_pipe_active: true },
    world.token,
  );
}

/** A 7-byte number that always parses: 10000.5 … 99999.5. */
const numberPayload = (seq: number) => `${10_000 + (seq % 90_000)}.5`;

type Latency = { sent: number; received: number; p50: number | null; p99: number | null };

/** `seconds` at `rate` msg/s from one output to its linked input; each payload is its sequence number. */
async function latencyRun(
  sender: LeanClient,
  topic: string,
  receiver: LeanClient,
  rate: number,
  seconds: number,
): Promise<Latency> {
  const total = rate * seconds;
  const base = 1_000_000 + Math.floor(Math.random() * 1_000_000);
  const sentAt = new Float64Array(total);
  const latencies: number[] = [];
  receiver.onMessage = (_t, payload) => {
    const i = Number(payload.toString("latin1")) - base;
    if (Number.isInteger(i) && i >= 0 && i < total)
      latencies.push(performance.now() - (sentAt[i] as number));
  };
  const start = performance.now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) * rate) / 1000));
    for (; sent < due; sent++) {
      sentAt[sent] = performance.now();
      sender.publish(topic, String(base + sent));
    }
    await sleep(1);
  }
  const until = performance.now() + 3000;
  while (latencies.length < total && performance.now() < until) await sleep(5);
  receiver.onMessage = () => {};
  return {
    sent: total,
    received: latencies.length,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
  };
}

type Target = { client: LeanClient; encoder: PublishEncoder; uuid: string; sent: number };

/** Sends `rate` values/s for `seconds`, round-robin over the targets; returns the server's busy share. */
async function throughputRun(
  server: BenchServer,
  targets: Target[],
  rate: number,
  seconds: number,
) {
  const cpuBefore = processStats(server.pid).cpuSeconds;
  const start = performance.now();
  const durationMs = seconds * 1000;
  let sent = 0;
  for (;;) {
    const elapsed = performance.now() - start;
    const due = Math.floor((Math.min(elapsed, durationMs) * rate) / 1000) - sent;
    if (due > 0) {
      const perClient = new Map<LeanClient, Buffer[]>();
      for (let k = 0; k < due; k++) {
        const t = targets[(sent + k) % targets.length] as Target;
        const buf = Buffer.allocUnsafe(t.encoder.packetBytes);
        buf.write(numberPayload(sent + k), t.encoder.writeInto(buf, 0), "latin1");
        t.sent++;
        const list = perClient.get(t.client) ?? [];
        list.push(buf);
        perClient.set(t.client, list);
      }
      for (const [client, bufs] of perClient) client.write(Buffer.concat(bufs));
      sent += due;
    }
    if (elapsed >= durationMs) break;
    await sleep(1);
  }
  const sendS = (performance.now() - start) / 1000;
  // The writer flushes every 500 ms; done when the server goes idle.
  await untilIdle(server.pid);
  const wallS = (performance.now() - start) / 1000;
  const cpu = processStats(server.pid).cpuSeconds - cpuBefore;
  return { sent, sendS, wallS, cpu, serverCpu: Math.round((cpu / wallS) * 100) };
}

/** Rows stored per variable (records and open-window values), read after the server stopped. */
async function storedPerNode(database: { name: string; url?: string }, server: BenchServer) {
  const q =
    "select node_uuid::text as node, count(*)::int as n from (select node_uuid from history_records union all select node_uuid from history_window_values) t group by node_uuid";
  const out = new Map<string, number>();
  if (database.url) {
    const { default: postgres } = await import("postgres");
    const sql = postgres(database.url, { max: 1, onnotice: () => {} });
    for (const r of await sql.unsafe<Array<{ node: string; n: number }>>(q)) out.set(r.node, r.n);
    await sql.end();
  } else {
    const { PGlite } = await import("@electric-sql/pglite");
    const db = new PGlite(`${server.dir}/data/pglite`);
    for (const r of (await db.query<{ node: string; n: number }>(q)).rows) out.set(r.node, r.n);
    await db.close();
  }
  return out;
}

async function rssMb(server: BenchServer, inspector: Inspector | null): Promise<number> {
  await inspector?.collectGarbage();
  await sleep(200);
  return Math.round(processStats(server.pid).rssBytes / 2 ** 20);
}

export async function historySuite(
  database: { name: string; url?: string },
  seconds: number,
): Promise<void> {
  console.log(`\n# Value history (data pipes) on ${database.name}`);
  const server = await startBenchServer({
    databaseUrl: database.url,
    inspect: true,
    env: { PEPEUNIT_MQTT_MAX_MSG_PER_S: "10000000" },
  });
  const clients: LeanClient[] = [];
  let inspector: Inspector | null = null;
  let stopped = false;
  try {
    inspector = await connectInspector(server.inspectPort as number).catch(() => null);
    const world = await createBenchWorld(server.url, "bench-history", FILES);
    const units = await world.createUnits(VARIABLES / OUTPUTS_PER_UNIT + 2);
    const [pairOut, pairIn, ...loadUnits] = units as [BenchUnit, BenchUnit, ...BenchUnit[]];
    await world.link(pairOut.nodeUuid("Output", "v00"), pairIn.nodeUuid("Input", "in"));
    await world.refresh(pairIn);
    const connect = (u: BenchUnit) => connectUnit(server.mqttPort, u, clients);
    const sender = await connect(pairOut);
    const receiver = await connect(pairIn);
    for (const t of pairIn.inputTopics()) await receiver.subscribe(t);
    const pairTopic = pairOut.topic("Output", "v00");
    const targets: Target[] = [];
    for (const u of loadUnits) {
      const client = await connect(u);
      for (const name of outputNames)
        targets.push({
          client,
          encoder: new PublishEncoder(u.topic("Output", name), 7),
          uuid: u.nodeUuid("Output", name),
          sent: 0,
        });
    }
    const latencySeconds = Math.max(3, Math.min(10, seconds));

    // Pipes off: routing only.
    await latencyRun(sender, pairTopic, receiver, 1000, 2);
    const off = await latencyRun(sender, pairTopic, receiver, 1000, latencySeconds);
    const rssOff = await rssMb(server, inspector);
    console.log(
      `  latency, pipes off: p50 ${ms(off.p50)} ms p99 ${ms(off.p99)} ms (${off.received}/${off.sent})`,
    );

    // Pipes on for the 1 000 load variables and the latency pair's output.
    const t0 = performance.now();
    await pool(targets, 8, (t, i) => setPipe(world, t.uuid, pipeYaml(POLICIES[i % 3] as string)));
    await setPipe(world, pairOut.nodeUuid("Output", "v00"), pipeYaml(POLICIES[0] as string));
    console.log(
      `  ${targets.length + 1} pipes set in ${Math.round((performance.now() - t0) / 1000)} s`,
    );
    await latencyRun(sender, pairTopic, receiver, 1000, 2);
    const onCpu = cpuMeter([server.pid]);
    const on = await latencyRun(sender, pairTopic, receiver, 1000, latencySeconds);
    const onCpuUs = usPerUnit(onCpu(), on.received);
    console.log(
      `  latency, pipes on: p50 ${ms(on.p50)} ms p99 ${ms(on.p99)} ms (${on.received}/${on.sent})`,
    );
    // Off again, now with the 1 000 other pipes loaded: the same server state but for this
    // variable's pipe, so a busy machine's drift between the first run and now cancels out.
    await call(
      world.url,
      "PATCH",
      `/unit_nodes/${pairOut.nodeUuid("Output", "v00")}`,
      { is_data_pipe_active: false },
      world.token,
    );
    const offAgain = await latencyRun(sender, pairTopic, receiver, 1000, latencySeconds);
    console.log(
      `  latency, pair's pipe off again: p50 ${ms(offAgain.p50)} ms p99 ${ms(offAgain.p99)} ms`,
    );
    const offBest = (offAgain.p50 ?? Infinity) < (off.p50 ?? Infinity) ? offAgain : off;

    const rate = GOAL[database.name] ?? 5000;
    const run = await throughputRun(server, targets, rate, seconds);
    console.log(
      `  ${run.sent} values at ${rate}/s over ${run.sendS.toFixed(1)} s; writer idle after ${run.wallS.toFixed(1)} s, server cpu ${run.serverCpu}%`,
    );
    const rssOn = await rssMb(server, inspector);

    // Reading: 10 000 records of one variable (imported as CSV), whole page and 500 points.
    const readNode = pairIn.nodeUuid("Output", "v00");
    await setPipe(world, readNode, pipeYaml("{policy_type: TimeWindow, time_window_size: 86400}"));
    const now = Date.now();
    const csv = [
      "state,state_type,create_datetime",
      ...Array.from(
        { length: HISTORY_ROWS },
        (_, i) =>
          `${(20 + Math.sin(i / 50)).toFixed(3)},Number,${new Date(now - (HISTORY_ROWS - i) * 5000).toISOString()}`,
      ),
    ].join("\n");
    const imported = await fetch(
      `${server.url}/pepeunit/api/v1/unit_nodes/set_data_pipe_data_csv/${readNode}`,
      {
        method: "POST",
        headers: { "content-type": "text/csv", "x-auth-token": world.token },
        body: csv,
      },
    );
    if (imported.status !== 200)
      throw new Error(`csv import: ${imported.status} ${await imported.text()}`);
    // Latency of a read is the time to the answer's last byte; parsing the JSON is the
    // client's work (~10 ms for 850 kB here) and is reported beside it, not inside it.
    const timeReads = async (query: string) => {
      const url = `${server.url}/pepeunit/api/v1/unit_nodes/get_data_pipe_data?uuid=${readNode}&${query}`;
      const read = async () => {
        const res = await fetch(url, { headers: { "x-auth-token": world.token } });
        const body = await res.arrayBuffer();
        if (res.status !== 200) throw new Error(`read: ${res.status}`);
        return body;
      };
      const times: number[] = [];
      const parses: number[] = [];
      let rows = 0;
      // Steady state: the first reads after the import warm the caches and the JIT.
      for (let i = 0; i < 3; i++) await read();
      const cpu = cpuMeter([server.pid]);
      for (let i = 0; i < READS; i++) {
        // The bench's own garbage (each read parses ~850 kB into 10 000 objects) is
        // collected between reads, so a client pause is not timed as the server's.
        (globalThis as { gc?: () => void }).gc?.();
        const t = performance.now();
        const body = await read();
        const t1 = performance.now();
        rows = JSON.parse(Buffer.from(body).toString()).pipe_data.length;
        times.push(t1 - t);
        parses.push(performance.now() - t1);
      }
      return {
        rows,
        p50: percentile(times, 50),
        p99: percentile(times, 99),
        parseP50: percentile(parses, 50),
        cpuUs: usPerUnit(cpu(), READS),
      };
    };
    const full = await timeReads(`limit=${HISTORY_ROWS}`);
    const points = await timeReads("relative_time=24h&max_points=500");

    for (const c of clients.splice(0)) c.close();
    inspector?.close();
    inspector = null;
    await server.stop();
    stopped = true;
    const stored = await storedPerNode(database, server);
    const profile = server.cpuProfDir ? newestProfile(server.cpuProfDir) : null;
    if (profile) printProfile(`history suite on ${database.name}, whole run`, profile, 25);
    let written = 0;
    let short = 0;
    for (const t of targets) {
      const n = stored.get(t.uuid) ?? 0;
      written += n;
      if (n !== t.sent) short++;
    }

    record({
      suite: "history",
      case: `sustained values/s through ${targets.length} pipes (⅓ NRecords, ⅓ TimeWindow, ⅓ Median)`,
      database: database.name,
      metric: {
        "values/s": rate,
        sent: run.sent,
        written,
        lost: run.sent - written,
        "vars short": short,
        "drain s": Math.round((run.wallS - run.sendS) * 10) / 10,
        "server cpu": `${run.serverCpu}%`,
        // Until the writer is idle again: routing, the pipes and the writes.
        [CPU_PER_UNIT]: usPerUnit(run.cpu, run.sent),
        [WORK_UNIT]: "value sent and stored",
      },
      goal: `>= ${rate} values/s, no loss`,
      met: written === run.sent && run.wallS - run.sendS < 5,
    });
    record({
      suite: "history",
      case: "unit→instance→unit latency @ 1k msg/s, pipes on vs off",
      database: database.name,
      metric: {
        "off p50 ms": ms(off.p50),
        "off again p50 ms": ms(offAgain.p50),
        "on p50 ms": ms(on.p50),
        "× p50 (vs lower off)": ratio(on.p50, offBest.p50),
        "off p99 ms": ms(off.p99),
        "on p99 ms": ms(on.p99),
        undelivered: [off, on, offAgain].reduce((n, r) => n + r.sent - r.received, 0),
        [CPU_PER_UNIT]: onCpuUs,
        [WORK_UNIT]: "message routed (pipes on)",
      },
      goal: "p50 with pipes ≤ 1.5× without",
      met: on.p50 !== null && offBest.p50 !== null && on.p50 <= 1.5 * offBest.p50,
    });
    record({
      suite: "history",
      case: `read ${HISTORY_ROWS} records (get_data_pipe_data, ${READS} reads)`,
      database: database.name,
      metric: {
        rows: full.rows,
        "p50 ms": ms(full.p50),
        "p99 ms": ms(full.p99),
        "client JSON.parse p50 ms": ms(full.parseP50),
        "max_points=500 p50 ms": ms(points.p50),
        "max_points=500 p99 ms": ms(points.p99),
        [CPU_PER_UNIT]: full.cpuUs,
        [WORK_UNIT]: `read of ${HISTORY_ROWS} records`,
      },
      goal: "p99 < 50 ms",
      met: full.rows === HISTORY_ROWS && full.p99 !== null && full.p99 < 50,
    });
    record({
      suite: "history",
      case: `server RSS, ${targets.length} variables with pipes on and open Median windows`,
      database: database.name,
      metric: {
        "pipes off MB": rssOff,
        "pipes on MB": rssOn,
        "Δ per 1000 vars MB": Math.round(((rssOn - rssOff) * 1000) / targets.length),
      },
      goal: "reported",
      met: null,
    });
  } finally {
    for (const c of clients) c.close();
    inspector?.close();
    if (!stopped) await server.stop();
  }
}
