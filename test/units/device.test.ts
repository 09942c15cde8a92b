import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { units } from "../../src/db/schema.ts";
import { createFixtureRepo } from "../helpers/git-fixtures.ts";
import { createUser, startTestInstance, type TestInstance } from "../helpers/instance.ts";
import { createRepo } from "../helpers/repos.ts";
import { createUnit, nodeOf, unitToken } from "../helpers/units.ts";

const D = "localhost:8080";

describe("device endpoints", () => {
  let inst: TestInstance;
  let bob: { uuid: string; token: string };
  let carol: { uuid: string; token: string };
  let a: any;
  let b: any;
  let tokenA: string;
  let tokenB: string;

  beforeAll(async () => {
    inst = await startTestInstance();
    await createUser(inst.api, "admin");
    bob = await createUser(inst.api, "bob");
    carol = await createUser(inst.api, "carol");
    const repo = await createRepo(inst.api, bob.token, createFixtureRepo());
    a = await createUnit(inst.api, bob.token, repo.uuid, { name: "unit-a" });
    b = await createUnit(inst.api, bob.token, repo.uuid, { name: "unit-b" });
    tokenA = await unitToken(inst.api, bob.token, a.uuid);
    tokenB = await unitToken(inst.api, bob.token, b.uuid);
  });
  afterAll(async () => {
    await inst?.close();
  });

  it("serves schema.json in template order, with linked outputs after the input's own topic", async () => {
    const bIn = nodeOf(b, "Input", "input/pepeunit");
    const aOut = nodeOf(a, "Output", "output/pepeunit");
    const aTemp = nodeOf(a, "Output", "temperature");
    const bOut = nodeOf(b, "Output", "output/pepeunit");
    for (const output of [aTemp, aOut, bOut]) {
      const e = await inst.api.post(
        "/unit_node_edges",
        { output_uuid: output.uuid, input_uuid: bIn.uuid },
        bob.token,
      );
      expect(e.status).toBe(201);
    }
    const res = await inst.api.get(`/units/get_current_schema/${b.uuid}`, tokenB);
    expect(res.status).toBe(200);
    const s = res.body;
    expect(Object.keys(s)).toEqual([
      "input_base_topic",
      "output_base_topic",
      "input_topic",
      "output_topic",
    ]);
    expect(s.input_base_topic).toEqual({
      "update/pepeunit": [`${D}/input_base_topic/${b.uuid}/update/pepeunit`],
      "env_update/pepeunit": [`${D}/input_base_topic/${b.uuid}/env_update/pepeunit`],
      "schema_update/pepeunit": [`${D}/input_base_topic/${b.uuid}/schema_update/pepeunit`],
      "log_sync/pepeunit": [`${D}/input_base_topic/${b.uuid}/log_sync/pepeunit`],
    });
    expect(Object.keys(s.input_base_topic)).toEqual([
      "update/pepeunit",
      "env_update/pepeunit",
      "schema_update/pepeunit",
      "log_sync/pepeunit",
    ]);
    expect(s.output_base_topic).toEqual({
      "state/pepeunit": [`${D}/output_base_topic/${b.uuid}/state/pepeunit`],
      "log/pepeunit": [`${D}/output_base_topic/${b.uuid}/log/pepeunit`],
    });
    expect(s.input_topic).toEqual({
      "input/pepeunit": [
        `${D}/${bIn.uuid}/pepeunit`,
        `${D}/${aTemp.uuid}`,
        `${D}/${aOut.uuid}/pepeunit`,
        `${D}/${bOut.uuid}/pepeunit`,
      ],
      relay: [`${D}/${nodeOf(b, "Input", "relay").uuid}`],
    });
    expect(s.output_topic).toEqual({
      "output/pepeunit": [`${D}/${bOut.uuid}/pepeunit`],
      temperature: [`${D}/${nodeOf(b, "Output", "temperature").uuid}`],
    });
    // The creator reads the same document.
    expect((await inst.api.get(`/units/get_current_schema/${b.uuid}`, bob.token)).body).toEqual(s);
  });

  it("lets a unit address only its own uuid", async () => {
    for (const path of ["env", "get_current_schema", "get_target_version", "get_state_storage"]) {
      expect((await inst.api.get(`/units/${path}/${a.uuid}`, tokenA)).status, path).toBe(200);
      expect((await inst.api.get(`/units/${path}/${b.uuid}`, tokenA)).status, path).toBe(404);
      expect((await inst.api.get(`/units/${path}/${b.uuid}`, carol.token)).status, path).toBe(404);
      expect((await inst.api.get(`/units/${path}/${b.uuid}`)).status, path).toBe(404);
    }
    const foreign = await inst.api.post(
      `/units/set_state_storage/${b.uuid}`,
      { state: "x" },
      tokenA,
    );
    expect(foreign.status).toBe(404);
    const target = await inst.api.get(`/units/get_target_version/${a.uuid}`, tokenA);
    expect(target.body).toEqual({ commit: a.commit, tag: null });
  });

  it("round-trips the state storage, encrypted at rest", async () => {
    const empty = await inst.api.get(`/units/get_state_storage/${a.uuid}`, tokenA);
    expect(empty.status).toBe(200);
    expect(empty.body).toBe("");
    const state = JSON.stringify({ counter: 42, note: "plain-state-marker" });
    const set = await inst.api.post(`/units/set_state_storage/${a.uuid}`, { state }, tokenA);
    expect(set.status).toBe(204);
    const got = await inst.api.get(`/units/get_state_storage/${a.uuid}`, tokenA);
    expect(got.status).toBe(200);
    expect(got.body).toBe(state);
    expect(got.headers.get("content-length")).toBe(
      String(Buffer.byteLength(JSON.stringify(state))),
    );
    const [row] = await inst.deps.database.db
      .select({ enc: units.stateStorageEnc })
      .from(units)
      .where(eq(units.uuid, a.uuid));
    expect(row?.enc).toBeTruthy();
    expect(row?.enc).not.toContain("plain-state-marker");

    const tooLong = await inst.api.post(
      `/units/set_state_storage/${a.uuid}`,
      { state: "x".repeat(64_001) },
      tokenA,
    );
    expect(tooLong.status).toBe(422);
    const notString = await inst.api.post(
      `/units/set_state_storage/${a.uuid}`,
      { state: 5 },
      tokenA,
    );
    expect(notString.status).toBe(422);
    expect((await inst.api.get(`/units/get_state_storage/${a.uuid}`, tokenA)).body).toBe(state);
  });

  it("answers the device query GET /units?unit_node_uuids=…", async () => {
    const aOut = nodeOf(a, "Output", "output/pepeunit");
    const bRelay = nodeOf(b, "Input", "relay");
    const res = await inst.api.get(
      `/units?is_include_output_unit_nodes=true&unit_node_uuids=${aOut.uuid}&unit_node_uuids=${bRelay.uuid}&order_by_unit_name=asc&order_by_create_date=desc&order_by_last_update=desc&limit=10&offset=0`,
      tokenA,
    );
    expect(res.status).toBe(200);
    expect(res.body.count).toBe(2);
    expect(res.body.units.map((u: { name: string }) => u.name)).toEqual(["unit-a", "unit-b"]);
    for (const u of res.body.units) {
      expect(u.unit_nodes.map((n: { type: string }) => n.type)).toEqual(["Output", "Output"]);
    }
    const one = await inst.api.get(`/units?unit_node_uuids=${aOut.uuid}`, tokenB);
    expect(one.body.count).toBe(1);
    expect(one.body.units[0].uuid).toBe(a.uuid);
    expect(one.body.units[0].unit_nodes).toHaveLength(4);
  });

  it("answers the device query GET /unit_nodes?output_uuid=…", async () => {
    const aOut = nodeOf(a, "Output", "output/pepeunit");
    const aRelay = nodeOf(a, "Input", "relay");
    const link = await inst.api.post(
      "/unit_node_edges",
      { output_uuid: aOut.uuid, input_uuid: aRelay.uuid },
      bob.token,
    );
    expect(link.status).toBe(201);
    const res = await inst.api.get(
      `/unit_nodes?order_by_create_date=desc&output_uuid=${aOut.uuid}&limit=10&offset=0`,
      tokenA,
    );
    expect(res.status).toBe(200);
    expect(res.body.count).toBe(2);
    const uuids = res.body.unit_nodes.map((n: { uuid: string }) => n.uuid).sort();
    expect(uuids).toEqual([nodeOf(b, "Input", "input/pepeunit").uuid, aRelay.uuid].sort());
    expect(res.body.unit_nodes.every((n: { type: string }) => n.type === "Input")).toBe(true);
    const none = await inst.api.get(
      `/unit_nodes?output_uuid=${nodeOf(b, "Output", "temperature").uuid}`,
      tokenA,
    );
    expect(none.body).toEqual({ count: 0, unit_nodes: [] });
  });
});
