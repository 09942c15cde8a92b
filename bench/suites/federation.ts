import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { connectAsync, type MqttClient } from "mqtt";
import { createFixtureRepo } from "../../test/helpers/git-fixtures.ts";
import { freePort } from "../../test/helpers/ports.ts";
import { processStats } from "../lib/process-stats.ts";
import { record } from "../lib/report.ts";

// Instance ↔ instance relay: a unit on B publishes, a unit on A receives the value
// through B → (signed Add, delivery queue) → A → A's broker. Two real server
// processes (B pinned to core 0, A to core 1; this load generator floats).
//
// Cases: one output at 1 000 values/s; 100 outputs at 10 000 values/s in total
// (batched); one output while A is restarted mid-stream (loss/reordering).
// Goals (issue): p99 < 100 ms at 1 000 values/s; ≥ 10 000 values/s aggregated;
// zero loss across a follower restart.

const root = fileURLToPath(new URL("../..", import.meta.url));
type Json = Record<string, unknown>;

type Server = {
  url: string;
  domain: string;
  mqttUrl: string;
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
  const start = async () => {
    const c = spawn(
      "taskset",
      ["-c", String(core), process.execPath, path.join(root, "src/main.ts")],
      {
        env,
        stdio: ["ignore", "inherit", "inherit"],
      },
    );
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

type Flow = { topic: string; publisher: MqttClient };

/**
 * Publishes `rate` values/s spread over the flows for `seconds`; payload = "<flow>:<seq>:<t>".
 * Receivers on A record latency (same clock), loss and order per flow.
 */
async function drive(
  flows: Flow[],
  receivers: MqttClient[],
  rate: number,
  seconds: number,
  during?: () => Promise<void>,
) {
  const lat: number[] = [];
  const lastSeq = new Map<number, number>();
  let received = 0;
  let reordered = 0;
  let lastArrival = 0;
  for (const r of receivers) {
    r.on("message", (_t, payload) => {
      const [f, s, t] = payload.toString().split(":").map(Number);
      if (f === undefined || s === undefined || t === undefined) return;
      received++;
      lastArrival = performance.now();
      lat.push(lastArrival - t);
      if (s <= (lastSeq.get(f) ?? -1)) reordered++;
      lastSeq.set(f, s);
    });
  }
  const total = Math.round(rate * seconds);
  const started = performance.now();
  const extra = during?.();
  let sent = 0;
  // Paced in 5 ms ticks: each tick sends what is due.
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate));
    for (; sent < due; sent++) {
      const f = sent % flows.length;
      const flow = flows[f] as Flow;
      flow.publisher.publish(
        flow.topic,
        `${f}:${Math.floor(sent / flows.length)}:${performance.now()}`,
        { qos: 0 },
      );
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  const sendSeconds = (performance.now() - started) / 1000;
  await extra;
  // Drain: until everything arrived, or nothing new for 8 s (max 120 s).
  let last = -1;
  const drainDeadline = Date.now() + 120_000;
  while (received < total && received !== last && Date.now() < drainDeadline) {
    last = received;
    await new Promise((r) => setTimeout(r, 8000));
  }
  // Sustained rate: what arrived, over the time from the first send to the last arrival.
  const elapsed = Math.max(sendSeconds, (lastArrival - started) / 1000);
  lat.sort((x, y) => x - y);
  return {
    sent: total,
    received,
    lost: total - received,
    reordered,
    sendRate: Math.round(total / sendSeconds),
    deliveredRate: Math.round(received / elapsed),
    p50: pct(lat, 50),
    p99: pct(lat, 99),
  };
}

async function freshDatabases(
  url: string | undefined,
): Promise<[string | undefined, string | undefined]> {
  if (!url) return [undefined, undefined];
  const { default: postgres } = await import("postgres");
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  const names = ["pepeunit_bench_fed_a", "pepeunit_bench_fed_b"];
  for (const n of names) {
    await sql.unsafe(`drop database if exists ${n} with (force)`);
    await sql.unsafe(`create database ${n}`);
  }
  await sql.end();
  return names.map((n) => {
    const u = new URL(url);
    u.pathname = `/${n}`;
    return u.toString();
  }) as [string, string];
}

export async function federationSuite(
  database: { name: string; url?: string },
  seconds: number,
  /** Run only the cases whose name contains this (debugging). */
  only?: string,
): Promise<void> {
  console.log(`\n# federation (instance ↔ instance relay) on ${database.name}`);
  const [urlA, urlB] = await freshDatabases(database.url);
  const b = await startServer(0, urlB);
  const a = await startServer(1, urlA).catch(async (err: unknown) => {
    await b.close();
    throw err;
  });
  const clients: MqttClient[] = [];
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

    const pubs = new Map<string, MqttClient>();
    const subs = new Map<string, MqttClient>();
    for (const p of pairs) {
      if (!pubs.has(p.bUnit.uuid)) pubs.set(p.bUnit.uuid, await mqtt(b.mqttUrl, p.bUnit.token));
      if (!subs.has(p.aUnit.uuid)) subs.set(p.aUnit.uuid, await mqtt(a.mqttUrl, p.aUnit.token));
    }
    clients.push(...pubs.values(), ...subs.values());
    const flowsOf = (ps: typeof pairs) =>
      ps.map((p) => ({ topic: p.topic, publisher: pubs.get(p.bUnit.uuid) as MqttClient }));
    const subscribe = async (ps: typeof pairs) => {
      for (const p of ps)
        await (subs.get(p.aUnit.uuid) as MqttClient).subscribeAsync(p.topic, { qos: 0 });
      return [...new Set(ps.map((p) => subs.get(p.aUnit.uuid) as MqttClient))];
    };
    const unsubscribeAll = async () => {
      for (const p of pairs) await (subs.get(p.aUnit.uuid) as MqttClient).unsubscribeAsync(p.topic);
      for (const c of subs.values()) c.removeAllListeners("message");
    };

    const measure = async (
      name: string,
      ps: typeof pairs,
      rate: number,
      goal: string,
      met: (r: Awaited<ReturnType<typeof drive>>) => boolean,
    ) => {
      if (only && !name.includes(only)) return;
      const receivers = await subscribe(ps);
      const beforeA = processStats(a.pid());
      const beforeB = processStats(b.pid());
      const r = await drive(flowsOf(ps), receivers, rate, seconds);
      const afterA = processStats(a.pid());
      const afterB = processStats(b.pid());
      await unsubscribeAll();
      const peer = await peerOf(b, sb.token, a.domain);
      record({
        suite: "federation",
        case: name,
        database: database.name,
        metric: {
          "sent/s": r.sendRate,
          "delivered/s": r.deliveredRate,
          "p50 ms": r.p50,
          "p99 ms": r.p99,
          lost: r.lost,
          reordered: r.reordered,
          "B cpu s": Math.round((afterB.cpuSeconds - beforeB.cpuSeconds) * 10) / 10,
          "A cpu s": Math.round((afterA.cpuSeconds - beforeA.cpuSeconds) * 10) / 10,
          "B rss MB": Math.round(afterB.rssBytes / 2 ** 20),
          "A rss MB": Math.round(afterA.rssBytes / 2 ** 20),
          "B→A delivery errors": peer?.delivery_errors ?? null,
          "last error": peer?.last_error ?? null,
        },
        goal,
        met: met(r),
      });
    };

    await measure(
      "1 output @ 1000 values/s",
      pairs.slice(0, 1),
      1000,
      "p99 < 100 ms, no loss",
      (r) => r.p99 !== null && r.p99 < 100 && r.lost === 0,
    );
    await measure(
      "100 outputs @ 10000 values/s",
      pairs,
      10_000,
      ">= 10000 values/s delivered, no loss",
      (r) => r.deliveredRate >= 10_000 && r.lost === 0,
    );

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
        const [, s, t] = payload.toString().split(":").map(Number);
        got++;
        lat.push(performance.now() - (t ?? 0));
        if ((s ?? 0) <= last) reordered++;
        last = s ?? 0;
      });
      const rate = 200;
      const total = rate * Math.max(6, seconds);
      const pub = pubs.get(one[0]?.bUnit.uuid ?? "") as MqttClient;
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
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})));
    await Promise.all([a.close(), b.close()]);
  }
}
