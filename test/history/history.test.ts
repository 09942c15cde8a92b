import { count, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { historyAggregates, historyRecords, historyWindowValues } from "../../src/db/schema.ts";
import type { HistoryWriter } from "../../src/history/history-writer.ts";
import {
  connectClient,
  DOMAIN,
  makeUnit,
  makeWorld,
  type World,
  type WorldUnit,
} from "../broker/mqtt-helpers.ts";
import { type FedInstance, startFedInstance } from "../helpers/federation.ts";
import { DEFAULT_ENV_EXAMPLE, DEFAULT_SCHEMA_EXAMPLE } from "../helpers/git-fixtures.ts";
import { createUser } from "../helpers/instance.ts";

// Value history through the real server: data pipe configs over HTTP, values seen by
// the broker (set-input, a device, internal publishes) through the pipes into the
// database, queries, CSV, deletion, and a restart in the middle of a window. The
// history writer's clock is moved by the test, so windows close without waiting.

const MINUTE = 60_000;
/** A minute boundary in the past: windows [T0 + k min, T0 + (k+1) min). */
const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const iso = (ms: number) => new Date(ms).toISOString();

const numberPipe = (policy: string, extra = "") => `
active_period: {type: Permanent}
filters: {type_input_value: Number${extra}}
processing_policy: ${policy}
`;

describe("value history", () => {
  let fi: FedInstance;
  let world: World;
  let carol: { uuid: string; token: string };
  let unit: WorldUnit;
  let hidden: WorldUnit;

  const writer = (): HistoryWriter => {
    const w = fi.inst.deps.history;
    if (!w) throw new Error("no history writer");
    return w;
  };
  const at = (ms: number) => writer().setClock(() => ms);

  /** A request with a raw (non-JSON) body. */
  async function send(
    method: string,
    path: string,
    body: BodyInit,
    type: string | null,
    token?: string,
  ) {
    const headers: Record<string, string> = {};
    if (type) headers["content-type"] = type;
    if (token) headers["x-auth-token"] = token;
    const res = await fetch(`${fi.baseUrl}/pepeunit/api/v1${path}`, { method, headers, body });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {}
    // any: API JSON; each test asserts what it reads
    return { status: res.status, body: parsed as any, text };
  }

  /** Replaces a variable's history with a CSV (text, or a multipart form with type null). */
  const importCsv = (nodeUuid: string, body: BodyInit, type: string | null = "text/csv") =>
    send("POST", `/unit_nodes/set_data_pipe_data_csv/${nodeUuid}`, body, type, world.bob.token);

  async function pipe(nodeUuid: string, yaml: string, token = world.bob.token) {
    const set = await send(
      "POST",
      `/unit_nodes/set_data_pipe_config/${nodeUuid}`,
      yaml,
      "application/yaml",
      token,
    );
    expect(set.status, JSON.stringify(set.body)).toBe(204);
    const on = await fi.api.patch(`/unit_nodes/${nodeUuid}`, { is_data_pipe_active: true }, token);
    expect(on.status).toBe(200);
  }

  /** Values as the instance's broker sees them (same path as set-input and relayed values). */
  async function publish(
    u: WorldUnit,
    type: "Input" | "Output",
    name: string,
    values: Array<[string, number]>,
  ) {
    for (const [v, ms] of values) {
      at(ms);
      await fi.inst.broker.publish(u.topic(type, name), v);
    }
    await writer().flush();
  }

  const history = (query: string, token?: string) =>
    fi.api.get(`/unit_nodes/get_data_pipe_data?${query}`, token);
  const states = async (query: string, token?: string) =>
    (await history(query, token)).body.pipe_data.map((r: { state: unknown }) => r.state);

  beforeAll(async () => {
    fi = await startFedInstance({ PEPEUNIT_DOMAIN: DOMAIN, PEPEUNIT_HISTORY_FLUSH_MS: "100" });
    world = await makeWorld(fi);
    carol = await createUser(fi.api, "carol");
    unit = await makeUnit(fi, world.bob.token, world.repoUuid, { visibility: "Public" });
    hidden = await makeUnit(fi, world.bob.token, world.repoUuid, { visibility: "Private" });
  });
  afterAll(async () => {
    await fi?.close();
  });

  it("checks, stores and returns data pipe configs; the flag shows in the variable", async () => {
    const relay = unit.nodeUuid("Input", "relay");
    const valid = numberPipe("{policy_type: NRecords, n_records_count: 3}");
    for (const type of ["application/yaml", "text/yaml", "text/plain"]) {
      const ok = await send("POST", "/unit_nodes/check_data_pipe_config", valid, type);
      expect([ok.status, ok.body]).toEqual([200, []]);
    }
    const form = new FormData();
    form.append("file", new Blob([valid]), "pipe.yaml");
    expect((await send("POST", "/unit_nodes/check_data_pipe_config", form, null)).body).toEqual([]);
    const huge = await send(
      "POST",
      "/unit_nodes/check_data_pipe_config",
      `# ${"x".repeat(300_000)}`,
      "text/yaml",
    );
    expect([huge.status, huge.body.detail]).toEqual([413, "the body is larger than 256 KiB"]);
    const broken = await send("POST", "/unit_nodes/check_data_pipe_config", "a: [1,", "text/yaml");
    expect(broken.status).toBe(200);
    expect(broken.body).toEqual([{ stage: "Yaml", message: expect.any(String) }]);
    const wrong = await send(
      "POST",
      "/unit_nodes/check_data_pipe_config",
      "active_period: {type: Never}\nfilters: {type_input_value: Number}\nprocessing_policy: {policy_type: NRecords}",
      "text/yaml",
    );
    expect(wrong.body.map((e: { stage: string }) => e.stage)).toEqual([
      "ActivePeriod",
      "ProcessingPolicy",
    ]);

    const path = `/unit_nodes/set_data_pipe_config/${relay}`;
    const rejected = await send("POST", path, "filters: {}", "text/yaml", world.bob.token);
    expect(rejected.status).toBe(422);
    expect(rejected.body.detail.map((e: { stage: string }) => e.stage)).toEqual([
      "ActivePeriod",
      "Filters",
      "ProcessingPolicy",
    ]);
    expect((await fi.api.get(`/unit_nodes/get_data_pipe_config/${relay}`)).status).toBe(404);
    expect(
      (await fi.api.patch(`/unit_nodes/${relay}`, { is_data_pipe_active: true }, world.bob.token))
        .status,
    ).toBe(422);
    expect((await send("POST", path, valid, "text/yaml", carol.token)).status).toBe(403);
    expect((await send("POST", path, valid, "text/yaml")).status).toBe(401);
    expect(
      (
        await send(
          "POST",
          `/unit_nodes/set_data_pipe_config/${crypto.randomUUID()}`,
          valid,
          "text/yaml",
          world.bob.token,
        )
      ).status,
    ).toBe(404);
    expect((await send("POST", path, valid, "text/yaml", world.admin.token)).status).toBe(204);
    const stored = await send(
      "GET",
      `/unit_nodes/get_data_pipe_config/${relay}`,
      undefined as never,
      null,
    );
    expect([stored.status, stored.text]).toEqual([200, valid]);
    expect((await fi.api.get(`/unit_nodes/${relay}`)).body.is_data_pipe_active).toBe(false);
    expect(
      (await fi.api.patch(`/unit_nodes/${relay}`, { is_data_pipe_active: true }, carol.token))
        .status,
    ).toBe(403);
    const on = await fi.api.patch(
      `/unit_nodes/${relay}`,
      { is_data_pipe_active: true },
      world.bob.token,
    );
    expect([on.status, on.body.is_data_pipe_active]).toEqual([200, true]);
  });

  it("records what set-input and a device publish, filtered, transformed, the newest n kept", async () => {
    const relay = unit.nodeUuid("Input", "relay");
    await pipe(
      relay,
      `${numberPipe("{policy_type: NRecords, n_records_count: 3}", ", type_value_threshold: Max, threshold_max: 100")}
transformations: {multiplication_ratio: 0.5, round_decimal_point: 1}`,
    );
    at(T0);
    for (const state of ["10", "500", "20", "thirty", "30", "40"]) {
      const res = await fi.api.patch(
        `/unit_nodes/set_state_input/${relay}`,
        { state },
        world.bob.token,
      );
      expect(res.status).toBe(200);
    }
    await writer().flush();
    const page = await history(`uuid=${relay}`);
    expect(page.body).toEqual({
      count: 3,
      pipe_data: ["10.0", "15.0", "20.0"].map((state) => ({
        state,
        state_type: "Number",
        create_datetime: iso(T0),
      })),
    });
    expect(await states(`uuid=${relay}&order_by_create_date=desc&limit=2&offset=1`)).toEqual([
      "15.0",
      "10.0",
    ]);
    // The count is the whole range's, whether a page ends before, at or past its end.
    for (const [limit, offset] of [
      [1, 0],
      [2, 0],
      [3, 0],
      [4, 0],
      [2, 1],
      [2, 2],
      [2, 3],
      [1, 5],
    ]) {
      const counted = await history(`uuid=${relay}&limit=${limit}&offset=${offset}`);
      expect(counted.body.count).toBe(3);
    }

    // A device's own publish over MQTT; LastValue keeps the last accepted one.
    const temperature = unit.nodeUuid("Output", "temperature");
    await pipe(
      temperature,
      "active_period: {type: Permanent}\nfilters: {type_input_value: Text, last_unique_check: true}\nprocessing_policy: {policy_type: LastValue}",
    );
    const device = await connectClient(fi.mqttUrl, unit.token);
    try {
      for (const v of ["warm", "hot", "hot"])
        await device.publishAsync(unit.topic("Output", "temperature"), v, { qos: 1 });
    } finally {
      await device.endAsync();
    }
    await writer().flush();
    expect(await states(`uuid=${temperature}`)).toEqual(["hot"]);
    // NUL bytes are dropped (PostgreSQL text cannot hold them), as for last_value.
    await publish(unit, "Output", "temperature", [["c\u0000ool", T0]]);
    expect(await states(`uuid=${temperature}&type=LastValue`)).toEqual(["cool"]);
    // The page's JSON is built by the database: text that needs escaping comes back as sent.
    const tricky = 'say "hi" \\ back\nslash\ttab \u0001 ünï 🌡 </script> ,{"state":"x"}';
    await pipe(
      temperature,
      "active_period: {type: Permanent}\nfilters: {type_input_value: Text}\nprocessing_policy: {policy_type: NRecords, n_records_count: 5}",
    );
    await publish(unit, "Output", "temperature", [[tricky, T0 + 7]]);
    const escaped = await history(`uuid=${temperature}&order_by_create_date=desc&limit=1`);
    expect(escaped.body.pipe_data).toEqual([
      { state: tricky, state_type: "Text", create_datetime: new Date(T0 + 7).toISOString() },
    ]);

    // Switched off: values are no longer recorded, the history stays.
    await fi.api.patch(`/unit_nodes/${relay}`, { is_data_pipe_active: false }, world.bob.token);
    await fi.api.patch(`/unit_nodes/set_state_input/${relay}`, { state: "60" }, world.bob.token);
    await writer().flush();
    expect(await states(`uuid=${relay}`)).toEqual(["10.0", "15.0", "20.0"]);
  });

  it("lets whoever may read the variable read its history", async () => {
    const node = hidden.nodeUuid("Output", "temperature");
    await pipe(node, numberPipe("{policy_type: NRecords, n_records_count: 10}"));
    await publish(hidden, "Output", "temperature", [["1", T0]]);
    const query = `uuid=${node}`;
    expect((await history(query)).status).toBe(404);
    expect((await history(query, carol.token)).status).toBe(404);
    expect((await history(query, world.bob.token)).body.count).toBe(1);
    expect((await history(query, world.admin.token)).body.count).toBe(1);
    expect((await history(query, hidden.token)).body.count).toBe(1);
    // Another unit of the same creator acts for them; the Public unit's history is open.
    expect((await history(query, unit.token)).body.count).toBe(1);
    expect((await history(`uuid=${unit.nodeUuid("Input", "relay")}`)).body.count).toBe(3);
    expect(
      (await fi.api.get(`/unit_nodes/get_data_pipe_data_csv/${node}`, carol.token)).status,
    ).toBe(404);
    expect((await fi.api.get(`/unit_nodes/get_data_pipe_config/${node}`)).status).toBe(404);
    expect(
      (await fi.api.delete(`/unit_nodes/delete_data_pipe_data/${node}`, hidden.token)).status,
    ).toBe(403);
    expect((await history("uuid=not-a-uuid")).status).toBe(422);
  });

  it("keeps a time window, filters by time and downsamples", async () => {
    const u = await makeUnit(fi, world.bob.token, world.repoUuid);
    const tw = u.nodeUuid("Output", "temperature");
    await pipe(tw, numberPipe("{policy_type: TimeWindow, time_window_size: 60}"));
    await publish(u, "Output", "temperature", [
      ["1", T0],
      ["2", T0 + 30_000],
      ["3", T0 + 70_000],
    ]);
    expect(await states(`uuid=${tw}`)).toEqual(["2", "3"]);
    expect(await states(`uuid=${tw}&relative_time=15s`)).toEqual(["3"]);
    expect(await states(`uuid=${tw}&start_create_datetime=${iso(T0 + 60_000)}`)).toEqual(["3"]);
    expect(await states(`uuid=${tw}&end_create_datetime=${iso(T0 + 60_000)}`)).toEqual(["2"]);
    expect((await history(`uuid=${tw}&relative_time=15x`)).status).toBe(422);
    expect((await history(`uuid=${tw}&limit=10001`)).status).toBe(422);
    expect((await history(`uuid=${tw}&start_create_datetime=0000-01-01T00:00:00Z`)).status).toBe(
      422,
    );
    expect((await history(`uuid=${tw}&relative_time=999999w`)).body.count).toBe(2);
    // The window moves on without new values.
    at(T0 + 200_000);
    expect(await states(`uuid=${tw}`)).toEqual([]);

    const many = u.nodeUuid("Input", "relay");
    await pipe(many, numberPipe("{policy_type: NRecords, n_records_count: 1024}"));
    await publish(
      u,
      "Input",
      "relay",
      Array.from({ length: 100 }, (_, i): [string, number] => [String(i + 1), T0 + i * 1000]),
    );
    expect((await history(`uuid=${many}&limit=10000`)).body.count).toBe(100);
    const points = await history(`uuid=${many}&max_points=10`);
    expect(points.body.count).toBe(10);
    expect(points.body.pipe_data[0]).toEqual({
      state: "5.5",
      state_type: "Number",
      create_datetime: iso(T0 + 9000),
    });
    expect(points.body.pipe_data[9].state).toBe("95.5");
  });

  it("aggregates closed, aligned windows exactly, also across a restart", async () => {
    const fns = ["Avg", "Min", "Max", "Sum", "Median"] as const;
    const units = await Promise.all(fns.map(() => makeUnit(fi, world.bob.token, world.repoUuid)));
    const node = (i: number) => (units[i] as WorldUnit).nodeUuid("Output", "temperature");
    for (const [i, fn] of fns.entries()) {
      await pipe(
        node(i),
        numberPipe(
          `{policy_type: Aggregation, time_window_size: 60, aggregation_functions: ${fn}}`,
        ),
      );
    }
    const feed = async (values: Array<[string, number]>) => {
      for (const u of units) await publish(u, "Output", "temperature", values);
    };
    // Window 1: six values (even count); window 2: three; window 3: none; window 4: one, left open.
    await feed(
      [3, 1, 4, 1, 5, 9].map((v, i): [string, number] => [String(v), T0 + 5_000 + i * 1000]),
    );
    expect((await history(`uuid=${node(0)}`)).body.count).toBe(0); // still open
    await feed([2, 7, 1].map((v, i): [string, number] => [String(v), T0 + MINUTE + i * 20_000]));
    await feed([["8", T0 + 3 * MINUTE + 59_999]]);
    at(T0 + 3 * MINUTE + 59_999);
    await writer().flush();
    const closed = await history(`uuid=${node(3)}`);
    expect(closed.body.pipe_data.map((r: { state: number }) => r.state)).toEqual([23, 10]);
    expect(closed.body.pipe_data[1]).toEqual({
      state: 10,
      aggregation_type: "Sum",
      time_window_size: 60,
      create_datetime: iso(T0 + 2 * MINUTE),
      start_window_datetime: iso(T0 + MINUTE),
      end_window_datetime: iso(T0 + 2 * MINUTE),
    });

    // A clean stop in the middle of window 4; the restarted writer closes it (its clock is real time).
    await fi.restart();
    const expected = [
      [23 / 6, 10 / 3, 8],
      [1, 1, 8],
      [9, 7, 8],
      [23, 10, 8],
      [3.5, 2, 8],
    ];
    for (const [i, want] of expected.entries()) {
      await expect.poll(async () => (await states(`uuid=${node(i)}`)).length).toBe(3);
      const got = await states(
        `uuid=${node(i)}&type=Aggregation&aggregation_type=${fns[i]}&time_window_size=60`,
      );
      expect(got.map((v: number) => Math.round(v * 1e9) / 1e9)).toEqual(
        want.map((v) => Math.round(v * 1e9) / 1e9),
      );
    }
    const starts = (await history(`uuid=${node(4)}`)).body.pipe_data.map(
      (r: { start_window_datetime: string }) => r.start_window_datetime,
    );
    expect(starts).toEqual([iso(T0), iso(T0 + MINUTE), iso(T0 + 3 * MINUTE)]);
    const db = fi.inst.deps.database.db;
    const [open] = await db.select({ n: count() }).from(historyWindowValues);
    expect(open?.n).toBe(0);
    expect((await history(`uuid=${node(4)}&aggregation_type=Avg`)).body.count).toBe(0);
    expect(
      (await history(`uuid=${node(4)}&max_points=2`)).body.pipe_data.map(
        (r: { state: number }) => r.state,
      ),
    ).toEqual([2.75, 8]);
  });

  it("keeps the newest n over flushes that fill, reach and pass n, after a delete and an import", async () => {
    const u = await makeUnit(fi, world.bob.token, world.repoUuid);
    const rec = u.nodeUuid("Output", "temperature");
    await pipe(rec, numberPipe("{policy_type: NRecords, n_records_count: 3}"));
    const newest = async () => (await states(`uuid=${rec}`)).join(" ");
    await publish(u, "Output", "temperature", [
      ["1", T0],
      ["2", T0 + 1000],
    ]);
    await publish(u, "Output", "temperature", [["3", T0 + 2000]]);
    expect(await newest()).toBe("1 2 3");
    await publish(u, "Output", "temperature", [["4", T0 + 3000]]);
    expect(await newest()).toBe("2 3 4");
    await publish(u, "Output", "temperature", [
      ["5", T0 + 4000],
      ["6", T0 + 5000],
    ]);
    expect(await newest()).toBe("4 5 6");
    const path = `/unit_nodes/delete_data_pipe_data/${rec}`;
    expect((await fi.api.delete(path, world.bob.token)).status).toBe(204);
    await publish(u, "Output", "temperature", [["7", T0 + 6000]]);
    expect(await newest()).toBe("7");
    const csv = `state,state_type,create_datetime\n8,Number,${iso(T0 + 3000)}\n9,Number,${iso(T0 + 4000)}\n10,Number,${iso(T0 + 5000)}\n`;
    const importPath = `/unit_nodes/set_data_pipe_data_csv/${rec}`;
    const imported = await send("POST", importPath, csv, "text/csv", world.bob.token);
    expect(imported.status).toBe(200);
    await publish(u, "Output", "temperature", [["11", T0 + 10000]]);
    expect(await newest()).toBe("9 10 11");
  });

  it("exports CSV and imports it back; a bad row imports nothing", async () => {
    const u = await makeUnit(fi, world.bob.token, world.repoUuid);
    const rec = u.nodeUuid("Output", "temperature");
    await pipe(rec, numberPipe("{policy_type: NRecords, n_records_count: 5}"));
    await publish(u, "Output", "temperature", [
      ["1.5", T0],
      ["2", T0 + 1000],
      ["-3", T0 + 2000],
    ]);
    const before = (await history(`uuid=${rec}`)).body;
    const csv = await send(
      "GET",
      `/unit_nodes/get_data_pipe_data_csv/${rec}`,
      undefined as never,
      null,
    );
    expect(csv.status).toBe(200);
    expect(csv.text).toBe(
      `state,state_type,create_datetime\n1.5,Number,${iso(T0)}\n2,Number,${iso(T0 + 1000)}\n-3,Number,${iso(T0 + 2000)}\n`,
    );
    const importPath = `/unit_nodes/set_data_pipe_data_csv/${rec}`;
    expect(
      (await fi.api.delete(`/unit_nodes/delete_data_pipe_data/${rec}`, world.bob.token)).status,
    ).toBe(204);
    expect((await history(`uuid=${rec}`)).body.count).toBe(0);
    const imported = await send("POST", importPath, csv.text, "text/csv", world.bob.token);
    expect([imported.status, imported.body]).toEqual([200, { count: 3 }]);
    expect((await history(`uuid=${rec}`)).body).toEqual(before);

    const bad = async (text: string, line: number, pattern: RegExp) => {
      const res = await send("POST", importPath, text, "text/csv", world.bob.token);
      expect(res.status, JSON.stringify(res.body)).toBe(422);
      expect(res.body.detail).toMatch(new RegExp(`^line ${line}: `));
      expect(res.body.detail).toMatch(pattern);
    };
    await bad(`state,create_datetime\n4,${iso(T0)}\nfour,${iso(T0 + 1)}\n`, 3, /not a number/);
    await bad(`state,create_datetime\n4,yesterday\n`, 2, /ISO 8601/);
    await bad(`state,create_datetime\n4,${iso(T0 + 5)}\n5,${iso(T0)}\n`, 3, /back in time/);
    await bad(`state\n4\n`, 1, /create_datetime/);
    await bad(`state,create_datetime\n4\u0000,${iso(T0)}\n`, 2, /NUL/);
    await bad(`state,create_datetime\n"4,${iso(T0)}\n`, 2, /quote/i);
    await bad(
      `state,create_datetime\n${Array.from({ length: 6 }, (_, i) => `${i},${iso(T0 + i)}`).join("\n")}\n`,
      7,
      /more rows than the policy keeps/,
    );
    expect((await history(`uuid=${rec}`)).body).toEqual(before);
    expect((await send("POST", importPath, csv.text, "text/csv", carol.token)).status).toBe(403);

    // Aggregation: closed windows round-trip, as a multipart upload.
    at(Date.now());
    const agg = u.nodeUuid("Input", "relay");
    await pipe(
      agg,
      numberPipe("{policy_type: Aggregation, time_window_size: 300, aggregation_functions: Max}"),
    );
    const rows = `state,aggregation_type,time_window_size,create_datetime,start_window_datetime,end_window_datetime
7.25,Max,300,${iso(T0 + 300_000)},${iso(T0)},${iso(T0 + 300_000)}
-1,Max,300,${iso(T0 + 900_000)},${iso(T0 + 600_000)},${iso(T0 + 900_000)}
`;
    const form = new FormData();
    form.append("file", new Blob([rows]), "history.csv");
    const up = await importCsv(agg, form, null);
    expect([up.status, up.body]).toEqual([200, { count: 2 }]);
    const back = await send(
      "GET",
      `/unit_nodes/get_data_pipe_data_csv/${agg}`,
      undefined as never,
      null,
    );
    expect(back.text).toBe(rows);
    const misaligned = rows.replace(
      `${iso(T0)},${iso(T0 + 300_000)}`,
      `${iso(T0 + 60_000)},${iso(T0 + 360_000)}`,
    );
    const res = await importCsv(agg, misaligned);
    expect([res.status, res.body.detail]).toEqual([
      422,
      "line 2: the window must be an aligned 300 s window",
    ]);
  });

  it("answers pages of thousands of records exactly, in pieces joined right", async () => {
    const u = await makeUnit(fi, world.bob.token, world.repoUuid);
    const rec = u.nodeUuid("Output", "temperature");
    await pipe(rec, numberPipe("{policy_type: TimeWindow, time_window_size: 86400}"));
    const N = 2500;
    const now = Date.now();
    at(now);
    // Records 999–1001 share a time: a piece (1000 records) ends inside the tie.
    const rows = Array.from({ length: N }, (_, i) => ({
      state: `${i}.5`,
      state_type: "Number",
      create_datetime: iso(now - (N - (i >= 999 && i <= 1001 ? 999 : i)) * 1000),
    }));
    const csv = `state,create_datetime\n${rows.map((r) => `${r.state},${r.create_datetime}`).join("\n")}\n`;
    const imported = await importCsv(rec, csv);
    expect([imported.status, imported.body]).toEqual([200, { count: N }]);
    const newest = [...rows].reverse();
    const cases: [string, typeof rows][] = [
      ["limit=1000", rows.slice(0, 1000)],
      ["limit=999", rows.slice(0, 999)],
      ["limit=1001&offset=999", rows.slice(999, 2000)],
      ["limit=2500", rows],
      ["limit=10000&offset=1", rows.slice(1)],
      ["limit=2000&order_by_create_date=desc", newest.slice(0, 2000)],
      ["limit=1500&offset=1000&order_by_create_date=desc", newest.slice(1000, 2500)],
      ["limit=5&offset=2500", []],
    ];
    for (const [query, expected] of cases) {
      const page = await history(`uuid=${rec}&${query}`);
      expect(page.status, query).toBe(200);
      expect(page.body.count, query).toBe(N);
      expect(page.body.pipe_data, query).toEqual(expected);
    }
  });

  it("deletes the history with its variable, its unit or a version without it", async () => {
    const u = await makeUnit(fi, world.bob.token, world.repoUuid);
    const rec = u.nodeUuid("Output", "temperature");
    const win = u.nodeUuid("Input", "relay");
    await pipe(rec, numberPipe("{policy_type: NRecords, n_records_count: 5}"));
    await pipe(
      win,
      numberPipe("{policy_type: Aggregation, time_window_size: 86400, aggregation_functions: Avg}"),
    );
    await publish(u, "Output", "temperature", [["1", Date.now()]]);
    await publish(u, "Input", "relay", [["1", Date.now()]]);
    const db = fi.inst.deps.database.db;
    const rows = async () => [
      (
        await db.select({ n: count() }).from(historyRecords).where(eq(historyRecords.nodeUuid, rec))
      )[0]?.n,
      (
        await db
          .select({ n: count() })
          .from(historyWindowValues)
          .where(eq(historyWindowValues.nodeUuid, win))
      )[0]?.n,
      (
        await db
          .select({ n: count() })
          .from(historyAggregates)
          .where(eq(historyAggregates.nodeUuid, win))
      )[0]?.n,
    ];
    expect(await rows()).toEqual([1, 1, 0]);
    expect(
      (await fi.api.delete(`/unit_nodes/delete_data_pipe_data/${win}`, world.bob.token)).status,
    ).toBe(204);
    expect(await rows()).toEqual([1, 0, 0]);
    expect((await fi.api.delete(`/units/${u.uuid}`, world.bob.token)).status).toBe(204);
    expect(await rows()).toEqual([0, 0, 0]);

    // A new version without the variable: its history goes with it (the fixture's last use).
    const pinned = await makeUnit(fi, world.bob.token, world.repoUuid, {
      follow_repo: false,
      branch: "main",
      commit: world.fixture.head(),
    });
    const gone = pinned.nodeUuid("Output", "temperature");
    await pipe(gone, numberPipe("{policy_type: NRecords, n_records_count: 5}"));
    await publish(pinned, "Output", "temperature", [["1", Date.now()]]);
    const left = async () =>
      (
        await db
          .select({ n: count() })
          .from(historyRecords)
          .where(eq(historyRecords.nodeUuid, gone))
      )[0]?.n;
    expect(await left()).toBe(1);
    const v2 = world.fixture.commit("v2: humidity instead of temperature", {
      "env_example.json": JSON.stringify(DEFAULT_ENV_EXAMPLE),
      "schema_example.json": JSON.stringify({
        ...DEFAULT_SCHEMA_EXAMPLE,
        output_topic: ["output/pepeunit", "humidity"],
      }),
    });
    expect((await fi.api.post(`/repos/${world.repoUuid}/sync`, {}, world.bob.token)).status).toBe(
      200,
    );
    expect(
      (await fi.api.patch(`/units/${pinned.uuid}`, { commit: v2 }, world.bob.token)).status,
    ).toBe(200);
    expect(await left()).toBe(0);
  });
});
