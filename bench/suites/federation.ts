import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { connectAsync, type MqttClient } from "mqtt";
import { createFixtureRepo } from "../../test/helpers/git-fixtures.ts";
import { freePort } from "../../test/helpers/ports.ts";
import { cpuPerUnit, usPerUnit } from "../lib/cpu-per-unit.ts";
import { monotonicUs, type ProfileWindow, printProfile } from "../lib/cpu-profile.ts";
import { LeanClient, PublishEncoder } from "../lib/lean-mqtt.ts";
import type { PacedPublisher } from "../lib/paced-sender.ts";
import { untilIdle } from "../lib/process-stats.ts";
import { record } from "../lib/report.ts";
import { routedPairs } from "../lib/routed-pairs.ts";
import { SERVER_ENTRY, startBenchServer, startNodeFlags } from "../lib/server.ts";
import { ms, ratio } from "../lib/stats.ts";
import {
  MAX_LAG_MS,
  maxSustainedRate,
  type StepResult,
  stampedFlow,
} from "../lib/sustained-rate.ts";

// Instance ↔ instance relay: a unit on B publishes, a unit on A receives the value
// through B → (signed Add, delivery queue) → A → A's broker. Two real server
// processes (B pinned to core 0, A to core 1, where bench/run.ts pins this load generator too).
//
// Cases: the highest routed MQTT rate of one instance (suites/mqtt.ts's search, on a
// server of its own, same database kind), the reference of this run; one output at
// 1 000 values/s (p99); 100 outputs at stepped rates, the highest rate sustained
// (no value lost, none out of order per output, backlog bounded: at the end of a
// step the values still on their way are under MAX_LAG_MS worth) as a ratio of that
// reference; one output while A is restarted mid-stream (loss/reordering).
// Goals (issue 15): 100 outputs ≥ 0.8× the routed MQTT rate; 1 output @ 1 000/s p99 < 50 ms.
// BENCH_CPU_PROF=1 profiles A and B and prints where their time went.

type Json = Record<string, unknown>;

type Server = {
  url: string;
  domain: string;
  mqttUrl: string;
  mqttPort: number;
  /** Where `node --cpu-prof` writes profiles when BENCH_CPU_PROF is set. */
  cpuProfDir: string | null;
  pid(): number;
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
};

async function startServer(core: number, databaseUrl: string | undefined): Promise<Server> {
  const dir = mkdtempSync(path.join(tmpdir(), "pepeunit-fedbench-"));
  const port = await freePort();
  const mqttPort = await freePort();
  const domain = `127.0.0.1:${port}`;
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    PEPEUNIT_DOMAIN: domain,
    PEPEUNIT_HTTP_TYPE: "http",
    PEPEUNIT_HTTP_HOST: "127.0.0.1",
    PEPEUNIT_HTTP_PORT: String(port),
    PEPEUNIT_MQTT_BIND_HOST: "127.0.0.1",
    PEPEUNIT_MQTT_HOST: "127.0.0.1",
    PEPEUNIT_MQTT_PORT: String(mqttPort),
    PEPEUNIT_MQTT_MAX_MSG_PER_S: "100000",
    PEPEUNIT_DATA_DIR: path.join(dir, "data"),
    PEPEUNIT_REPOSITORIES_DIR: path.join(dir, "repositories"),
    PEPEUNIT_GIT_ALLOW_LOCAL: "true",
    PEPEUNIT_FEDERATION_ALLOW_LOCAL: "true",
    PEPEUNIT_FEDERATION_RETRY_MAX_S: "1",
    PEPEUNIT_LOG_LEVEL: "warn",
    DATABASE_URL: databaseUrl ?? "",
  };
  let child: ChildProcess | null = null;
  const url = `http://${domain}`;
  const cpuProfDir = ["1", "true"].includes(process.env.BENCH_CPU_PROF ?? "")
    ? path.join(dir, "cpu-prof")
    : null;
  // The flags `npm start` gives the server: without --v8-pool-size=1, four V8 helper
  // threads share the pinned core with the main thread, and a scavenge they run in
  // parallel stalls it 10–30 ms (one output at 1 000/s read p99 80 ms instead of 25).
  const nodeArgs = startNodeFlags();
  if (cpuProfDir) nodeArgs.push("--cpu-prof", `--cpu-prof-dir=${cpuProfDir}`);
  // BENCH_SERVER_NODE_ARGS: extra node flags, as for every bench server (lib/server.ts).
  nodeArgs.push(...(process.env.BENCH_SERVER_NODE_ARGS ?? "").split(" ").filter(Boolean));
  const start = async () => {
    const c = spawn("taskset", ["-c", String(core), process.execPath, ...nodeArgs, SERVER_ENTRY], {
      env,
      stdio: ["ignore", "inherit", "inherit"],
    });
    child = c;
    const deadline = Date.now() + 180_000;
    for (;;) {
      if (c.exitCode !== null) throw new Error(`server exited with ${c.exitCode}`);
      try {
        if ((await fetch(`${url}/healthz`)).ok) return;
      } catch {}
      if (Date.now() > deadline) {
        c.kill("SIGKILL");
        throw new Error("server did not start in 180 s");
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const stop = () =>
    new Promise<void>((resolve) => {
      const c = child;
      child = null;
      if (!c || c.exitCode !== null) return resolve();
      c.once("exit", () => resolve());
      c.kill("SIGTERM");
      setTimeout(() => c.kill("SIGKILL"), 10_000).unref();
    });
  await start();
  return {
    url,
    domain,
    mqttUrl: `mqtt://127.0.0.1:${mqttPort}`,
    mqttPort,
    cpuProfDir,
    pid: () => child?.pid ?? 0,
    stop,
    start,
    async close() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function call(
  url: string,
  method: string,
  p: string,
  body?: unknown,
  token?: string,
): Promise<Json> {
  const res = await fetch(`${url}/pepeunit/api/v1${p}`, {
    method,
    headers: { "content-type": "application/json", ...(token ? { "x-auth-token": token } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${p}: ${res.status} ${text}`);
  return text ? (JSON.parse(text) as Json) : {};
}

type Unit = {
  uuid: string;
  token: string;
  nodes: Array<{ uuid: string; type: string; topic_name: string }>;
};

async function setUp(s: Server, units: number): Promise<{ token: string; units: Unit[] }> {
  await call(s.url, "POST", "/users", {
    login: "bench",
    email: "bench@example.test",
    password: "bench-password",
  });
  const { token } = (await call(s.url, "POST", "/users/auth", {
    login: "bench",
    password: "bench-password",
  })) as { token: string };
  const repo = await call(
    s.url,
    "POST",
    "/repos",
    { name: "bench", url: createFixtureRepo().url },
    token,
  );
  await call(s.url, "PATCH", `/repos/${repo.uuid}`, { default_branch: "main" }, token);
  const out: Unit[] = [];
  for (let i = 0; i < units; i++) {
    const u = (await call(
      s.url,
      "POST",
      "/units",
      { repo_uuid: repo.uuid, name: `bench-${i}-${Date.now()}` },
      token,
    )) as unknown as Unit;
    const env = (await call(s.url, "GET", `/units/env/${u.uuid}`, undefined, token)) as {
      PU_AUTH_TOKEN: string;
    };
    out.push({
      uuid: u.uuid,
      token: env.PU_AUTH_TOKEN,
      nodes: u.nodes ?? (u as unknown as { unit_nodes: Unit["nodes"] }).unit_nodes,
    });
  }
  return { token, units: out };
}

const node = (u: Unit, type: string, name: string) => {
  const n = u.nodes.find((x) => x.type === type && x.topic_name === name);
  if (!n) throw new Error(`no ${type} ${name}`);
  return n.uuid;
};
const topicOf = (domain: string, uuid: string, name: string) =>
  name.endsWith("/pepeunit") ? `${domain}/${uuid}/pepeunit` : `${domain}/${uuid}`;

async function mqtt(url: string, token: string, reconnectPeriod = 0): Promise<MqttClient> {
  return connectAsync(url, {
    username: token,
    password: "",
    protocolVersion: 4,
    reconnectPeriod,
  });
}

/** Links every B output (name list) of every B unit into the same-index A unit's inputs; waits for Accept. */
async function link(a: Server, aToken: string, pairs: Array<{ output: string; input: string }>) {
  const edges: string[] = [];
  for (const p of pairs) {
    const e = await call(
      a.url,
      "POST",
      "/unit_node_edges",
      { output: p.output, input_uuid: p.input },
      aToken,
    );
    edges.push(e.uuid as string);
  }
  const deadline = Date.now() + 60_000;
  for (;;) {
    const list = (await call(a.url, "GET", "/federation/remote_edges", undefined, aToken)) as {
      remote_edges: Array<{ uuid: string; status: string }>;
    };
    const active = list.remote_edges.filter(
      (e) => edges.includes(e.uuid) && e.status === "Active",
    ).length;
    if (active === edges.length) return;
    if (Date.now() > deadline)
      throw new Error(`only ${active}/${edges.length} remote edges became active`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** B's view of A: delivery error count and the last error (admin API; the bench user is B's admin). */
async function peerOf(s: Server, token: string, domain: string) {
  const res = (await call(s.url, "GET", "/admin/federation/peers", undefined, token)) as {
    peers: Array<{ domain: string; delivery_errors: number; last_error: string | null }>;
  };
  return res.peers.find((p) => p.domain === domain);
}

const pct = (sorted: number[], p: number) =>
  sorted.length
    ? Math.round(
        sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number,
      )
    : null;

/** The oldest .cpuprofile of a directory (profiles are named by time). */
function firstProfile(dir: string): string | null {
  try {
    const first = readdirSync(dir)
      .filter((f) => f.endsWith(".cpuprofile"))
      .sort()[0];
    return first ? path.join(dir, first) : null;
  } catch {
    return null;
  }
}

/** Both instances' CPU (B sends, A receives) per value relayed. */
const relayCost = (r: StepResult | null) =>
  cpuPerUnit(
    r ? (r.cpuSeconds[0] ?? 0) + (r.cpuSeconds[1] ?? 0) : null,
    r?.received ?? 0,
    "value relayed (B's + A's CPU)",
  );

/** Rates offered to the relay and to the routed reference, one step each. */
const STEPS = [
  2_000, 5_000, 10_000, 15_000, 20_000, 25_000, 30_000, 35_000, 40_000, 45_000, 50_000, 60_000,
  80_000, 100_000,
];

/** The highest routed MQTT rate of one instance (10 unit pairs), this run's reference. */
async function routedReference(databaseUrl: string | undefined, stepSeconds: number) {
  const server = await startBenchServer({
    databaseUrl,
    env: { PEPEUNIT_MQTT_MAX_MSG_PER_S: "10000000" },
    cpuProfile: false,
  });
  try {
    const fleet = await routedPairs(server, "bench-fedref", 10);
    console.log("  reference: routed MQTT, one instance, 10 unit pairs");
    // Warm-up, as the mqtt suite does.
    await stampedFlow([server.pid], fleet.pairs, fleet.receivers, 1000, 3);
    const r = await maxSustainedRate({
      label: "routed",
      steps: STEPS,
      pids: [server.pid],
      names: ["server"],
      senders: fleet.pairs,
      receivers: fleet.receivers,
      stepSeconds,
    });
    fleet.close();
    return r;
  } finally {
    await server.stop();
  }
}

async function freshDatabases(
  url: string | undefined,
): Promise<[string | undefined, string | undefined, string | undefined]> {
  if (!url) return [undefined, undefined, undefined];
  const { default: postgres } = await import("postgres");
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  const names = ["pepeunit_bench_fed_a", "pepeunit_bench_fed_b", "pepeunit_bench_fed_ref"];
  for (const n of names) {
    await sql.unsafe(`drop database if exists ${n} with (force)`);
    await sql.unsafe(`create database ${n}`);
  }
  await sql.end();
  return names.map((n) => {
    const u = new URL(url);
    u.pathname = `/${n}`;
    return u.toString();
  }) as [string, string, string];
}

export async function federationSuite(
  database: { name: string; url?: string },
  seconds: number,
  /** Run only the cases whose name contains this (debugging). */
  only?: string,
): Promise<void> {
  console.log(`\n# federation (instance ↔ instance relay) on ${database.name}`);
  const [urlA, urlB, urlRef] = await freshDatabases(database.url);
  const stepSeconds = Math.max(3, Math.min(5, seconds / 2));
  const reference =
    !only || "100 outputs".includes(only) ? await routedReference(urlRef, stepSeconds) : null;
  const b = await startServer(0, urlB);
  const a = await startServer(1, urlA).catch(async (err: unknown) => {
    await b.close();
    throw err;
  });
  const clients: MqttClient[] = [];
  const lean: LeanClient[] = [];
  let relayWindow: ProfileWindow | null = null;
  let oneWindow: ProfileWindow | null = null;
  try {
    const sb = await setUp(b, 50);
    const sa = await setUp(a, 50);
    const names = ["temperature", "output/pepeunit"];
    const inputs = ["relay", "input/pepeunit"];
    const pairs = sa.units.flatMap((ua, i) =>
      names.map((n, k) => ({
        output: `${node(sb.units[i] as Unit, "Output", n)}@${b.domain}`,
        input: node(ua, "Input", inputs[k] as string),
        topic: topicOf(b.domain, node(sb.units[i] as Unit, "Output", n), n),
        bUnit: sb.units[i] as Unit,
        aUnit: ua,
      })),
    );
    await link(a, sa.token, pairs);

    // Lean MQTT clients (bench/lib/lean-mqtt.ts), as suites/mqtt.ts drives its reference:
    // one per unit, B's publishing both outputs, A's subscribed to both remote topics.
    const leanB = new Map<string, LeanClient>();
    const leanA = new Map<string, LeanClient>();
    for (const p of pairs) {
      if (!leanB.has(p.bUnit.uuid)) {
        leanB.set(
          p.bUnit.uuid,
          await LeanClient.connect({
            port: b.mqttPort,
            clientId: p.bUnit.uuid,
            username: p.bUnit.token,
          }),
        );
      }
      let sub = leanA.get(p.aUnit.uuid);
      if (!sub) {
        sub = await LeanClient.connect({
          port: a.mqttPort,
          clientId: p.aUnit.uuid,
          username: p.aUnit.token,
        });
        leanA.set(p.aUnit.uuid, sub);
      }
      if ((await sub.subscribe(p.topic)) === 0x80) throw new Error(`A refused ${p.topic}`);
    }
    lean.push(...leanB.values(), ...leanA.values());
    const sendersOf = (ps: typeof pairs): PacedPublisher[] =>
      ps.map((p) => ({
        client: leanB.get(p.bUnit.uuid) as LeanClient,
        encoder: new PublishEncoder(p.topic, 20),
      }));
    const receiversOf = (ps: typeof pairs) => [
      ...new Set(ps.map((p) => leanA.get(p.aUnit.uuid) as LeanClient)),
    ];
    const pids = () => [b.pid(), a.pid()];
    const deliveryErrors = async () => {
      const peer = await peerOf(b, sb.token, a.domain);
      return {
        "B→A delivery errors": peer?.delivery_errors ?? null,
        "last error": peer?.last_error ?? null,
      };
    };

    if (!only || "1 output".includes(only)) {
      const one = pairs.slice(0, 1);
      // Three seconds first, so JIT warm-up and start-up garbage are not counted as latency.
      await stampedFlow(pids(), sendersOf(one), receiversOf(one), 1000, 3);
      const fromUs = monotonicUs();
      const r = await stampedFlow(pids(), sendersOf(one), receiversOf(one), 1000, seconds);
      oneWindow = { fromUs, toUs: monotonicUs() };
      record({
        suite: "federation",
        case: "1 output @ 1000 values/s",
        database: database.name,
        metric: {
          sent: r.sent,
          lost: r.lost,
          reordered: r.reordered,
          "p50 ms": ms(r.p50),
          "p99 ms": ms(r.p99),
          "B cpu %": r.cpu[0] ?? null,
          "A cpu %": r.cpu[1] ?? null,
          ...relayCost(r),
          ...(await deliveryErrors()),
        },
        goal: "p99 < 50 ms, no loss, in order",
        met: r.p99 !== null && r.p99 < 50 && r.lost === 0 && r.reordered === 0,
      });
    }

    if (!only || "100 outputs".includes(only)) {
      await Promise.all([untilIdle(a.pid()), untilIdle(b.pid())]);
      const fromUs = monotonicUs();
      const s = await maxSustainedRate({
        label: "relay",
        steps: STEPS,
        pids: pids(),
        names: ["B", "A"],
        senders: sendersOf(pairs),
        receivers: receiversOf(pairs),
        stepSeconds,
      });
      relayWindow = { fromUs, toUs: monotonicUs() };
      const routed = reference?.rate ?? null;
      const x = ratio(s.rate, routed);
      record({
        suite: "federation",
        case: `100 outputs, max sustained relay rate (vs routed MQTT of one instance)`,
        database: database.name,
        metric: {
          "values/s": s.rate,
          "limited by": s.limitedBy,
          "routed msg/s": routed,
          "routed limited by": reference?.limitedBy ?? null,
          "× routed": x,
          "p99 ms at max": ms(s.last?.p99 ?? null),
          "B cpu % at max": s.last?.cpu[0] ?? null,
          "A cpu % at max": s.last?.cpu[1] ?? null,
          ...relayCost(s.last),
          "routed cpu_us_per_unit": reference?.last
            ? usPerUnit(reference.last.cpuSeconds[0], reference.last.received)
            : null,
          ...(await deliveryErrors()),
        },
        goal: `>= 0.8x routed MQTT (no loss, in order, lag <= ${MAX_LAG_MS} ms)`,
        met: x === null ? null : s.rate >= 0.8 * (routed ?? 0),
      });
    }

    // Follower restart: A is stopped mid-stream and started again on the same data.
    if (only && !"restart".includes(only)) return;
    const one = pairs.slice(0, 1);
    const r = await (async () => {
      // The listener is a device on A that reconnects on its own (every 50 ms, re-subscribing),
      // as devices do: it is back as soon as A's broker listens, which is before A's inbox
      // takes the values B queued meanwhile. (A client that reconnected only after start()
      // returned would miss, by MQTT QoS 0 rules, values A had already relayed.)
      const listener = await mqtt(a.mqttUrl, one[0]?.aUnit.token ?? "", 50);
      listener.on("error", () => {});
      clients.push(listener);
      await listener.subscribeAsync(one[0]?.topic ?? "", { qos: 0 });
      const lat: number[] = [];
      let got = 0;
      let reordered = 0;
      let last = -1;
      listener.on("message", (_t: string, payload: Buffer) => {
        // Only this case's values: a step before may still be delivering its stamped ones.
        const text = payload.toString();
        if (!/^0:\d+:[\d.]+$/.test(text)) return;
        const [, s, t] = text.split(":").map(Number);
        got++;
        lat.push(performance.now() - (t ?? 0));
        if ((s ?? 0) <= last) reordered++;
        last = s ?? 0;
      });
      const rate = 200;
      const total = rate * Math.max(6, seconds);
      const pub = await mqtt(b.mqttUrl, one[0]?.bUnit.token ?? "");
      clients.push(pub);
      const started = performance.now();
      let sent = 0;
      let restarted: Promise<void> | null = null;
      while (sent < total) {
        const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate));
        for (; sent < due; sent++)
          pub.publish(one[0]?.topic ?? "", `0:${sent}:${performance.now()}`, { qos: 0 });
        if (!restarted && sent >= total / 3) {
          restarted = (async () => {
            await a.stop();
            await a.start();
          })();
        }
        await new Promise((res) => setTimeout(res, 5));
      }
      await restarted;
      let prev = -1;
      const deadline = Date.now() + 120_000;
      while (got < total && got !== prev && Date.now() < deadline) {
        prev = got;
        await new Promise((res) => setTimeout(res, 8000));
      }
      lat.sort((x, y) => x - y);
      return { total, got, reordered, p50: pct(lat, 50), p99: pct(lat, 99) };
    })();
    record({
      suite: "federation",
      case: "1 output @ 200/s, follower restarted",
      database: database.name,
      metric: {
        sent: r.total,
        received: r.got,
        lost: r.total - r.got,
        reordered: r.reordered,
        "p50 ms": r.p50,
        "p99 ms": r.p99,
      },
      goal: "zero loss, no reordering",
      met: r.total === r.got && r.reordered === 0,
    });
  } finally {
    for (const c of lean) c.close();
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})));
    await Promise.all([a.stop(), b.stop()]);
    for (const [name, s] of [
      ["B (home, sending)", b],
      ["A (follower, receiving)", a],
    ] as const) {
      // The first process's profile: A's restart (the last case) leaves a second one.
      const file = s.cpuProfDir ? firstProfile(s.cpuProfDir) : null;
      if (file && oneWindow) printProfile(`${name}, 1 output @ 1000/s`, file, 20, oneWindow);
      if (file && relayWindow)
        printProfile(`${name}, 100-output rate steps`, file, 20, relayWindow);
    }
    await Promise.all([a.close(), b.close()]);
  }
}
