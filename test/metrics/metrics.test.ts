import { execFileSync, spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repos } from "../../src/db/schema.ts";
import { createHttpApp } from "../../src/http/app.ts";
import {
  connectClient,
  DOMAIN,
  linkNodes,
  makeUnit,
  makeWorld,
  type TestClient,
  type World,
  type WorldUnit,
} from "../broker/mqtt-helpers.ts";
import { startTestInstance, type TestInstance } from "../helpers/instance.ts";

// GET /metrics after a small load: HTTP calls, two units connected (one publishing a
// value, its state and a refused publish; the other receiving through a link), a data
// pipe writing history, an OTA Update sent, and the sync worker fetching a repo. The scrape must pass
// `promtool check metrics` (when installed) and hold every family with sane values,
// and no label value may be a uuid.

const TOKEN = "metrics-test-token-0123456789";
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

/** Grafana's reference to the dashboard's data source variable (not a JS template). */
const GRAFANA_DATASOURCE = ["$", "{datasource}"].join("");
const hasPromtool = spawnSync("sh", ["-c", "command -v promtool"]).status === 0;
const docs = (file: string) => new URL(`../../docs/${file}`, import.meta.url);

type Sample = { name: string; labels: Record<string, string>; value: number };
type Family = { type: string; help: string; samples: Sample[] };

/** The Prometheus text format (0.0.4), as far as this endpoint writes it. */
function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const family = (name: string) => {
    let f = families.get(name);
    if (!f) {
      f = { type: "untyped", help: "", samples: [] };
      families.set(name, f);
    }
    return f;
  };
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta) {
      const f = family(meta[2] as string);
      if (meta[1] === "TYPE") f.type = meta[3] as string;
      else f.help = meta[3] as string;
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable line: ${line}`);
    const name = m[1] as string;
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[k as string] = (v as string).replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    }
    const value = Number(m[3] === "+Inf" ? Infinity : m[3]);
    // Histogram and summary series belong to their family's name.
    const base = families.has(name) ? name : name.replace(/_(bucket|sum|count)$/, "");
    family(base).samples.push({ name, labels, value });
  }
  return families;
}

describe("metrics", () => {
  let inst: TestInstance;
  let world: World;
  let sender: WorldUnit;
  let receiver: WorldUnit;
  const clients: TestClient[] = [];
  /** The scrape after the load (the dashboard's queries are checked against it). */
  let scraped: Map<string, Family> | undefined;

  const scrape = (auth?: string) =>
    fetch(`${inst.httpUrl}/metrics`, { headers: auth ? { authorization: auth } : {} });
  const families = async () => {
    const res = await scrape(`Bearer ${TOKEN}`);
    expect(res.status).toBe(200);
    const text = await res.text();
    return { text, families: parseExposition(text) };
  };
  const value = (f: Map<string, Family>, name: string, labels: Record<string, string> = {}) =>
    (f.get(name) ?? f.get(name.replace(/_(bucket|sum|count)$/, "")))?.samples
      .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
      .reduce((sum, s) => sum + s.value, 0) ?? Number.NaN;

  beforeAll(async () => {
    inst = await startTestInstance({
      PEPEUNIT_DOMAIN: DOMAIN,
      PEPEUNIT_METRICS_TOKEN: TOKEN,
      PEPEUNIT_SYNC_TICK_S: "0.2",
      PEPEUNIT_HISTORY_FLUSH_MS: "100",
    });
    world = await makeWorld(inst);
    sender = await makeUnit(inst, world.bob.token, world.repoUuid);
    receiver = await makeUnit(inst, world.bob.token, world.repoUuid);
  });
  afterAll(async () => {
    for (const c of clients) await c.endAsync().catch(() => {});
    await inst?.close();
  });

  it("is off (404) without a token, and refuses a missing or wrong bearer token", async () => {
    // The same app without the token: /metrics is absent, not the SPA's page.
    const off = createHttpApp({
      ...inst.deps,
      metrics: undefined,
      config: { ...inst.deps.config, metricsToken: undefined },
    });
    const res = await off.request("/metrics", { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ detail: "not found" });

    for (const auth of [
      undefined,
      "Bearer wrong",
      `Basic ${TOKEN}`,
      `Bearer ${TOKEN}x`,
      "Bearer ",
    ]) {
      const refused = await scrape(auth);
      expect(refused.status, String(auth)).toBe(401);
      expect(refused.headers.get("www-authenticate")).toMatch(/^Bearer/);
      expect((await refused.json()).detail).toEqual(expect.any(String));
    }
    const ok = await scrape(`Bearer ${TOKEN}`);
    expect(ok.status).toBe(200);
    expect(ok.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  });

  it("has every family with sane values after a small load", async () => {
    // HTTP: a route with a uuid in it, and a 404.
    expect((await inst.api.get(`/units/${sender.uuid}`, world.bob.token)).status).toBe(200);
    expect((await inst.api.get(`/units/${crypto.randomUUID()}`, world.bob.token)).status).toBe(404);

    // History: the sender's temperature keeps its last 10 values.
    const temperature = sender.nodeUuid("Output", "temperature");
    const set = await fetch(
      `${inst.httpUrl}/pepeunit/api/v1/unit_nodes/set_data_pipe_config/${temperature}`,
      {
        method: "POST",
        headers: { "content-type": "application/yaml", "x-auth-token": world.bob.token },
        body: "active_period: {type: Permanent}\nfilters: {type_input_value: Number}\nprocessing_policy: {policy_type: NRecords, n_records_count: 10}\n",
      },
    );
    expect(set.status).toBe(204);
    const on = await inst.api.patch(
      `/unit_nodes/${temperature}`,
      { is_data_pipe_active: true },
      world.bob.token,
    );
    expect(on.status).toBe(200);

    // MQTT: sender → link → receiver; a state; a publish the ACL refuses.
    await linkNodes(inst, world.bob.token, temperature, receiver.nodeUuid("Input", "relay"));
    const rx = await connectClient(inst.mqttUrl, receiver.token);
    clients.push(rx);
    // A linked input listens on the output's own topic (device-protocol §4).
    await rx.subscribeAsync(sender.topic("Output", "temperature"));
    const tx = await connectClient(inst.mqttUrl, sender.token);
    clients.push(tx);
    await tx.publishAsync(sender.topic("Output", "temperature"), "21.5", { qos: 1 });
    await rx.waitFor((m) => m.payload.toString() === "21.5");
    await tx.publishAsync(sender.base("output_base_topic", "state/pepeunit"), '{"millis": 1}', {
      qos: 1,
    });
    await tx.publishAsync(receiver.topic("Output", "temperature"), "1", { qos: 1 });
    await inst.broker.flush();
    await inst.deps.history?.flush();

    // OTA: an Update to the connected receiver.
    const update = await inst.api.request("POST", `/units/${receiver.uuid}/update`, {
      token: world.bob.token,
    });
    expect(update.status).toBe(202);

    // Federation: readings waiting for 22 peers (due in an hour: never claimed here),
    // the oldest for peer22.example; only the 20 most behind get a series of their own.
    await inst.deps.database.db.execute(sql`
      insert into federation_queue (message, ordering_key, run_at, created_at)
      select 'not claimed', 'peer' || chr(10) || 'https://peer' || g || '.example',
        now() + interval '1 hour', now() - make_interval(secs => 30 + g)
      from generate_series(1, 22) g`);

    // The sync worker: the world's repo is due now.
    await inst.deps.database.db
      .update(repos)
      .set({ nextSyncAt: sql`now() - interval '1 second'` })
      .where(eq(repos.uuid, world.repoUuid));
    await expect
      .poll(async () =>
        value((await families()).families, "pepeunit_repo_syncs_total", { result: "synced" }),
      )
      .toBeGreaterThanOrEqual(1);

    const { text, families: f } = await families();
    scraped = f;

    // promtool's own parser and linter, when installed (CI installs Debian's prometheus).
    if (hasPromtool) {
      execFileSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
    }

    // No uuid in any label value (units, variables, users, repos).
    for (const [name, fam] of f) {
      for (const s of fam.samples) {
        for (const v of Object.values(s.labels)) expect(v, `${name} ${v}`).not.toMatch(UUID);
      }
    }

    // Process.
    expect(value(f, "process_cpu_seconds_total")).toBeGreaterThan(0);
    expect(value(f, "process_resident_memory_bytes")).toBeGreaterThan(0);
    expect(f.get("nodejs_eventloop_lag_seconds")?.type).toBe("gauge");
    expect(f.get("nodejs_gc_duration_seconds")?.type).toBe("histogram");

    // HTTP: by route template and status.
    const unitRoute = { route: "/pepeunit/api/v1/units/:uuid", method: "GET" };
    expect(value(f, "pepeunit_http_requests_total", { ...unitRoute, status: "200" })).toBe(1);
    expect(value(f, "pepeunit_http_requests_total", { ...unitRoute, status: "404" })).toBe(1);
    expect(
      value(f, "pepeunit_http_request_duration_seconds_count", { ...unitRoute, status: "200" }),
    ).toBe(1);
    expect(
      value(f, "pepeunit_http_request_duration_seconds_sum", { ...unitRoute, status: "200" }),
    ).toBeGreaterThan(0);

    // MQTT.
    expect(value(f, "pepeunit_mqtt_clients", { kind: "unit" })).toBe(2);
    expect(value(f, "pepeunit_mqtt_messages_total", { direction: "in" })).toBeGreaterThanOrEqual(3);
    expect(value(f, "pepeunit_mqtt_messages_total", { direction: "out" })).toBeGreaterThanOrEqual(
      1,
    );
    expect(
      value(f, "pepeunit_mqtt_messages_dropped_total", { reason: "not_allowed" }),
    ).toBeGreaterThanOrEqual(1);
    expect(value(f, "pepeunit_mqtt_messages_dropped_total", { reason: "rate_limited" })).toBe(0);
    expect(value(f, "pepeunit_mqtt_bytes_total", { direction: "in" })).toBeGreaterThan(100);
    expect(value(f, "pepeunit_mqtt_bytes_total", { direction: "out" })).toBeGreaterThan(10);

    // Ingest.
    expect(value(f, "pepeunit_ingest_items_total", { kind: "value" })).toBeGreaterThanOrEqual(1);
    expect(value(f, "pepeunit_ingest_items_total", { kind: "state" })).toBeGreaterThanOrEqual(1);
    expect(value(f, "pepeunit_ingest_queue_depth")).toBeGreaterThanOrEqual(0);
    expect(value(f, "pepeunit_ingest_flushes_total")).toBeGreaterThanOrEqual(1);
    expect(value(f, "pepeunit_ingest_flush_seconds_total")).toBeGreaterThan(0);
    expect(value(f, "pepeunit_ingest_flush_errors_total")).toBe(0);

    // History.
    expect(value(f, "pepeunit_history_records_written_total", { kind: "record" })).toBe(1);
    expect(value(f, "pepeunit_history_pipes_active")).toBe(1);
    expect(value(f, "pepeunit_history_windows_open")).toBe(0);
    expect(value(f, "pepeunit_history_queue_depth")).toBe(0);
    expect(value(f, "pepeunit_history_flushes_total")).toBeGreaterThanOrEqual(1);

    // Federation: nothing delivered, every result present at zero; the queue as inserted.
    for (const result of ["delivered", "failed", "dropped", "given_up"]) {
      expect(value(f, "pepeunit_federation_deliveries_total", { result })).toBe(0);
    }
    expect(value(f, "pepeunit_federation_queue_depth", { state: "delayed" })).toBe(22);
    expect(value(f, "pepeunit_federation_queue_depth", { state: "ready" })).toBe(0);
    const lags = f.get("pepeunit_federation_peer_lag_seconds")?.samples ?? [];
    expect(lags).toHaveLength(21);
    expect(
      value(f, "pepeunit_federation_peer_lag_seconds", { peer: "peer22.example" }),
    ).toBeGreaterThanOrEqual(52);
    expect(
      value(f, "pepeunit_federation_peer_lag_seconds", { peer: "peer3.example" }),
    ).toBeGreaterThanOrEqual(33);
    // peer2 and peer1 folded into "other", at the larger lag of the two.
    expect(lags.some((s) => /^peer[12]\.example$/.test(s.labels.peer ?? ""))).toBe(false);
    const other = value(f, "pepeunit_federation_peer_lag_seconds", { peer: "other" });
    expect(other).toBeGreaterThanOrEqual(32);
    expect(other).toBeLessThan(
      value(f, "pepeunit_federation_peer_lag_seconds", { peer: "peer3.example" }),
    );

    // OTA: the Update was sent; no outcome yet.
    expect(value(f, "pepeunit_ota_updates_total", { status: "request_sent" })).toBe(1);
    expect(value(f, "pepeunit_ota_updates_total", { status: "success" })).toBe(0);
    expect(value(f, "pepeunit_ota_updates_total", { status: "error" })).toBe(0);

    // Sync worker.
    expect(value(f, "pepeunit_repo_syncs_total", { result: "synced" })).toBeGreaterThanOrEqual(1);
    expect(value(f, "pepeunit_repo_sync_last_duration_seconds")).toBeGreaterThan(0);
    expect(value(f, "pepeunit_repo_sync_last_timestamp_seconds") * 1000).toBeLessThanOrEqual(
      Date.now(),
    );
    expect(value(f, "pepeunit_info", { database: inst.deps.database.kind })).toBe(1);
  });

  it("ships a dashboard whose queries name scraped families, and a valid scrape example", async () => {
    expect(scraped).toBeDefined();
    const dashboard = JSON.parse(await readFile(docs("grafana/instance-dashboard.json"), "utf8"));
    const datasource = dashboard.templating.list.find(
      (v: { type: string }) => v.type === "datasource",
    );
    expect(datasource).toMatchObject({ name: "datasource", query: "prometheus" });
    const exprs: string[] = [];
    for (const panel of dashboard.panels) {
      for (const t of panel.targets ?? []) {
        expect(t.datasource.uid).toBe(GRAFANA_DATASOURCE);
        exprs.push(t.expr);
      }
    }
    expect(exprs.length).toBeGreaterThan(20);
    // Every metric a query names exists in the scrape (a renamed family fails here).
    for (const expr of exprs) {
      for (const [name] of expr.matchAll(/\b(?:pepeunit|process|nodejs)_[a-z0-9_]+/g)) {
        const base = name.replace(/_(bucket|sum|count)$/, "");
        expect(scraped?.has(name) || scraped?.has(base), `${name} in ${expr}`).toBe(true);
      }
    }
    if (!hasPromtool) return;
    const dir = await mkdtemp(path.join(tmpdir(), "pepeunit-promtool-"));
    try {
      // The queries parse as PromQL: promtool checks them as recording rules.
      const rules = exprs.map((expr, i) => {
        const q = expr
          .replaceAll("$__rate_interval", "5m")
          .replaceAll("$__range", "1h")
          .replaceAll("$instance", ".*");
        return `      - record: dashboard:query_${i}\n        expr: ${JSON.stringify(q)}`;
      });
      await writeFile(
        path.join(dir, "rules.yml"),
        `groups:\n  - name: dashboard\n    rules:\n${rules.join("\n")}\n`,
      );
      execFileSync("promtool", ["check", "rules", path.join(dir, "rules.yml")], {
        encoding: "utf8",
      });
      // The scrape example, with its token file where promtool can find it.
      const tokenFile = path.join(dir, "pepeunit.token");
      await writeFile(tokenFile, TOKEN, { mode: 0o600 });
      const config = (await readFile(docs("prometheus.yml"), "utf8")).replace(
        "credentials_file: /etc/prometheus/pepeunit.token",
        `credentials_file: ${tokenFile}`,
      );
      expect(config).toContain(tokenFile);
      await writeFile(path.join(dir, "prometheus.yml"), config);
      execFileSync("promtool", ["check", "config", path.join(dir, "prometheus.yml")], {
        encoding: "utf8",
        stdio: "pipe",
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
