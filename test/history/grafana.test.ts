import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import type { HistoryWriter } from "../../src/history/history-writer.ts";
import { makeUnit, makeWorld, type World } from "../broker/mqtt-helpers.ts";
import { startTestInstance, type TestInstance } from "../helpers/instance.ts";

// docs/grafana/ as Grafana's Infinity data source would use it: each panel's query of
// the example dashboard (url, params, headers) is sent with the provisioned data source's
// header and a read token, against a running instance holding known values, and the
// answer must have every field the panel's columns name, with its type.

const MINUTE = 60_000;
const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const iso = (ms: number) => new Date(ms).toISOString();

type Column = { selector: string; text: string; type: "string" | "number" | "timestamp" };
type InfinityQuery = {
  type: string;
  source: string;
  format: string;
  url: string;
  url_options: {
    method: string;
    params: Array<{ key: string; value: string }>;
    headers: Array<{ key: string; value: string }>;
  };
  root_selector: string;
  columns: Column[];
};
type Panel = { type: string; title: string; targets: InfinityQuery[] };
type Dashboard = { panels: Panel[]; templating: { list: Array<{ name: string }> } };
type Datasource = {
  type: string;
  uid: string;
  url: string;
  jsonData: Record<string, unknown> & { allowedHosts: string[] };
  secureJsonData: Record<string, string>;
};

const docs = new URL("../../docs/grafana/", import.meta.url);

describe("Grafana (Infinity) dashboard example", () => {
  let inst: TestInstance;
  let world: World;
  let dashboard: Dashboard;
  let datasource: Datasource;
  const uuids: Record<string, string> = {};
  let readToken: string;

  const writer = (): HistoryWriter => {
    const w = inst.deps.history;
    if (!w) throw new Error("no history writer");
    return w;
  };

  async function pipe(nodeUuid: string, yaml: string) {
    const res = await fetch(
      `${inst.httpUrl}/pepeunit/api/v1/unit_nodes/set_data_pipe_config/${nodeUuid}`,
      {
        method: "POST",
        headers: { "content-type": "application/yaml", "x-auth-token": world.bob.token },
        body: yaml,
      },
    );
    expect(res.status, await res.text()).toBe(204);
    const on = await inst.api.patch(
      `/unit_nodes/${nodeUuid}`,
      { is_data_pipe_active: true },
      world.bob.token,
    );
    expect(on.status).toBe(200);
  }

  async function publish(topic: string, values: Array<[string, number]>) {
    for (const [v, ms] of values) {
      writer().setClock(() => ms);
      await inst.broker.publish(topic, v);
    }
    await writer().flush();
  }

  beforeAll(async () => {
    dashboard = JSON.parse(await readFile(new URL("dashboard.json", docs), "utf8"));
    const provisioning = parseYaml(await readFile(new URL("datasource.yaml", docs), "utf8"));
    datasource = provisioning.datasources[0];

    inst = await startTestInstance({ PEPEUNIT_HISTORY_FLUSH_MS: "100" });
    world = await makeWorld(inst);
    const a = await makeUnit(inst, world.bob.token, world.repoUuid);
    const b = await makeUnit(inst, world.bob.token, world.repoUuid);
    uuids.aggregation_uuid = a.nodeUuid("Output", "temperature");
    uuids.text_uuid = b.nodeUuid("Output", "temperature");
    await pipe(
      uuids.aggregation_uuid,
      "active_period: {type: Permanent}\nfilters: {type_input_value: Number}\nprocessing_policy: {policy_type: Aggregation, time_window_size: 60, aggregation_functions: Avg}",
    );
    await pipe(
      uuids.text_uuid,
      "active_period: {type: Permanent}\nfilters: {type_input_value: Text}\nprocessing_policy: {policy_type: NRecords, n_records_count: 10}",
    );
    // Two closed windows (averages 2 and 10.5), the third closed by the clock moving on.
    await publish(a.topic("Output", "temperature"), [
      ["1", T0 + 1000],
      ["3", T0 + 2000],
      ["10", T0 + MINUTE + 1000],
      ["11", T0 + MINUTE + 2000],
    ]);
    writer().setClock(() => T0 + 3 * MINUTE);
    await writer().flush();
    await publish(b.topic("Output", "temperature"), [
      ["open", T0 + 5000],
      ["closed", T0 + 6000],
    ]);

    const created = await inst.api.post(
      "/users/me/tokens",
      { name: "grafana", scope: "read" },
      world.bob.token,
    );
    expect(created.status).toBe(201);
    readToken = created.body.token;
  });
  afterAll(async () => {
    await inst?.close();
  });

  /** Grafana's interpolation: the dashboard's variables and the time range macros. */
  const macros: Record<string, string> = {
    "__from:date:iso": iso(T0 - 3600_000),
    "__to:date:iso": iso(T0 + 3600_000),
  };
  const interpolate = (s: string) =>
    s.replace(/\$\{([\w:]+)\}/g, (whole, name: string) => macros[name] ?? uuids[name] ?? whole);

  /** The request Infinity makes for a query: data source URL + query URL, params, headers. */
  async function run(q: InfinityQuery) {
    expect(q).toMatchObject({ type: "json", source: "url" });
    const url = new URL(interpolate(q.url), inst.httpUrl);
    for (const p of q.url_options.params) url.searchParams.append(p.key, interpolate(p.value));
    expect(url.toString()).not.toContain("${");
    const headers: Record<string, string> = {};
    for (let i = 1; datasource.jsonData[`httpHeaderName${i}`]; i++) {
      const value = datasource.secureJsonData[`httpHeaderValue${i}`] ?? "";
      // Grafana expands $VAR from its environment in provisioning files.
      headers[String(datasource.jsonData[`httpHeaderName${i}`])] = value.replace(
        "$PEPEUNIT_READ_TOKEN",
        readToken,
      );
    }
    for (const h of q.url_options.headers) headers[h.key] = interpolate(h.value);
    const res = await fetch(url, { method: q.url_options.method, headers });
    expect(res.status, await res.clone().text()).toBe(200);
    const body = await res.json();
    const rows = body[q.root_selector];
    expect(Array.isArray(rows)).toBe(true);
    return rows as Array<Record<string, unknown>>;
  }

  /** Each column's values as Infinity would parse them; throws on a missing or bad one. */
  function columnsOf(rows: Array<Record<string, unknown>>, columns: Column[]) {
    return rows.map((row) =>
      columns.map((c) => {
        const raw = row[c.selector];
        expect([c.selector, raw]).not.toEqual([c.selector, undefined]);
        if (c.type === "number") {
          const n = Number(raw);
          expect([c.selector, Number.isFinite(n)]).toEqual([c.selector, true]);
          return n;
        }
        if (c.type === "timestamp") {
          expect(typeof raw).toBe("string");
          const t = Date.parse(raw as string);
          expect([c.selector, Number.isFinite(t)]).toEqual([c.selector, true]);
          return t;
        }
        expect(typeof raw).toBe("string");
        return raw;
      }),
    );
  }

  it("the data source points at a base URL, allows only it, and sends the token as a secure header", () => {
    expect(datasource.type).toBe("yesoreyeram-infinity-datasource");
    expect(datasource.jsonData.allowedHosts).toEqual([datasource.url]);
    expect(datasource.jsonData.httpHeaderName1).toBe("x-auth-token");
    expect(datasource.secureJsonData.httpHeaderValue1).toMatch(/^\$/); // from the environment
    const variables = dashboard.templating.list.map((v) => v.name).sort();
    expect(variables).toEqual(["aggregation_uuid", "text_uuid"]);
    for (const panel of dashboard.panels)
      for (const q of panel.targets) expect(q.url.startsWith("/pepeunit/api/v1/")).toBe(true);
  });

  it("the time series panel gets the aggregated windows, times and numbers parsing", async () => {
    const panel = dashboard.panels.find((p) => p.type === "timeseries");
    const q = panel?.targets[0];
    if (!q) throw new Error("no time series panel");
    const values = columnsOf(await run(q), q.columns);
    const time = q.columns.findIndex((c) => c.type === "timestamp");
    const value = q.columns.findIndex((c) => c.type === "number");
    expect(values.map((r) => [r[time], r[value]])).toEqual([
      [T0 + MINUTE, 2],
      [T0 + 2 * MINUTE, 10.5],
    ]);
  });

  it("the table panel gets the text records, newest first", async () => {
    const panel = dashboard.panels.find((p) => p.type === "table");
    const q = panel?.targets[0];
    if (!q) throw new Error("no table panel");
    const values = columnsOf(await run(q), q.columns);
    const value = q.columns.findIndex((c) => c.selector === "state");
    expect(values.map((r) => r[value])).toEqual(["closed", "open"]);
  });

  it("a deleted token stops the panels' queries at once", async () => {
    const q = dashboard.panels[0]?.targets[0];
    if (!q) throw new Error("no panel");
    await run(q); // resolved (and cached) before the deletion
    const list = await inst.api.get("/users/me/tokens", world.bob.token);
    const grafana = list.body.tokens.find((t: { name: string }) => t.name === "grafana");
    const del = await inst.api.delete(`/users/me/tokens/${grafana.uuid}`, world.bob.token);
    expect(del.status).toBe(204);
    const url = new URL(interpolate(q.url), inst.httpUrl);
    for (const p of q.url_options.params) url.searchParams.append(p.key, interpolate(p.value));
    expect((await fetch(url, { headers: { "x-auth-token": readToken } })).status).toBe(401);
  });
});
