import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeUnit, makeWorld, type World, type WorldUnit } from "../broker/mqtt-helpers.ts";
import { createUser, startTestInstance, type TestInstance } from "../helpers/instance.ts";

// Boards over REST: each user's own, items only of variables the user sees, values only
// on inputs; an item that becomes hidden reads unavailable without its value.

describe("boards", () => {
  let inst: TestInstance;
  let world: World;
  let carol: { uuid: string; token: string };
  let unit: WorldUnit;
  let privateUnit: WorldUnit;

  beforeAll(async () => {
    inst = await startTestInstance();
    world = await makeWorld(inst);
    carol = await createUser(inst.api, "carol");
    unit = await makeUnit(inst, world.bob.token, world.repoUuid);
    privateUnit = await makeUnit(inst, world.bob.token, world.repoUuid, { visibility: "Private" });
  });
  afterAll(async () => {
    await inst?.close();
  });

  it("creates, lists, reads, edits and deletes the caller's boards", async () => {
    const temperature = unit.nodeUuid("Output", "temperature");
    const relay = unit.nodeUuid("Input", "relay");
    const res = await inst.api.post(
      "/boards",
      {
        name: "Kitchen",
        items: [
          { unit_node_uuid: temperature },
          { unit_node_uuid: relay, label: "Light", values: ["on", "off"] },
        ],
      },
      carol.token,
    );
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      name: "Kitchen",
      items: [
        { unit_node_uuid: temperature, label: null, values: [], available: true, type: "Output" },
        { unit_node_uuid: relay, label: "Light", values: ["on", "off"], type: "Input" },
      ],
    });
    const uuid = res.body.uuid;
    const second = await inst.api.post("/boards", { name: "Empty" }, carol.token);
    expect(second.status).toBe(201);

    const list = await inst.api.get("/boards?limit=1", carol.token);
    expect(list.status).toBe(200);
    expect(list.body.count).toBe(2);
    expect(list.body.boards.map((b: { name: string }) => b.name)).toEqual(["Empty"]);
    expect((await inst.api.get("/boards?offset=1", carol.token)).body.boards[0].uuid).toBe(uuid);

    const renamed = await inst.api.patch(
      `/boards/${uuid}`,
      { name: "Kitchen 2", items: [{ unit_node_uuid: relay, values: ["1"] }] },
      carol.token,
    );
    expect(renamed.status).toBe(200);
    expect(renamed.body.name).toBe("Kitchen 2");
    expect(renamed.body.items).toHaveLength(1);
    expect((await inst.api.get(`/boards/${uuid}`, carol.token)).body.name).toBe("Kitchen 2");

    // Another user's board does not exist for bob, nor for anonymous callers.
    expect((await inst.api.get(`/boards/${uuid}`, world.bob.token)).status).toBe(404);
    expect((await inst.api.patch(`/boards/${uuid}`, { name: "x" }, world.bob.token)).status).toBe(
      404,
    );
    expect((await inst.api.delete(`/boards/${uuid}`, world.bob.token)).status).toBe(404);
    expect((await inst.api.get("/boards", world.bob.token)).body.count).toBe(0);
    expect((await inst.api.get("/boards")).status).toBe(401);

    // A read token reads boards (metadata and last values) and changes none.
    const read = await inst.api.post("/users/me/tokens", { name: "r", scope: "read" }, carol.token);
    expect((await inst.api.get(`/boards/${uuid}`, read.body.token)).status).toBe(200);
    expect((await inst.api.delete(`/boards/${uuid}`, read.body.token)).status).toBe(403);

    expect((await inst.api.delete(`/boards/${uuid}`, carol.token)).status).toBe(204);
    expect((await inst.api.get(`/boards/${uuid}`, carol.token)).status).toBe(404);
  });

  it("refuses bad items with 422 and never names a hidden variable", async () => {
    const post = (body: unknown) => inst.api.post("/boards", body, carol.token);
    const hidden = privateUnit.nodeUuid("Output", "temperature");
    const missing = await post({ name: "b", items: [{ unit_node_uuid: hidden }] });
    expect(missing.status).toBe(422);
    expect(missing.body.detail).toBe("items.0: unit node not found");
    const unknown = await post({
      name: "b",
      items: [{ unit_node_uuid: "00000000-0000-4000-8000-000000000000" }],
    });
    expect(unknown.body.detail).toBe(missing.body.detail);
    const onOutput = await post({
      name: "b",
      items: [{ unit_node_uuid: unit.nodeUuid("Output", "temperature"), values: ["on"] }],
    });
    expect(onOutput.status).toBe(422);
    expect(onOutput.body.detail).toMatch(/Output/);
    expect((await post({ name: "", items: [] })).status).toBe(422);
    expect((await post({ name: "b", items: [{ unit_node_uuid: "nope" }] })).status).toBe(422);
    expect((await post({ items: [] })).status).toBe(422);
    // The owner of the unit may use its private variables.
    const own = await inst.api.post(
      "/boards",
      { name: "mine", items: [{ unit_node_uuid: hidden }] },
      world.bob.token,
    );
    expect(own.status).toBe(201);
  });

  it("shows an item that became hidden as unavailable, without its value", async () => {
    const temperature = unit.nodeUuid("Output", "temperature");
    const res = await inst.api.post(
      "/boards",
      { name: "watch", items: [{ unit_node_uuid: temperature, label: "T" }] },
      carol.token,
    );
    expect(res.body.items[0].available).toBe(true);
    const closed = await inst.api.patch(
      `/unit_nodes/${temperature}`,
      { visibility: "Private" },
      world.bob.token,
    );
    expect(closed.status).toBe(200);
    const after = await inst.api.get(`/boards/${res.body.uuid}`, carol.token);
    expect(after.body.items[0]).toEqual({
      unit_node_uuid: temperature,
      label: "T",
      values: [],
      available: false,
      type: null,
      unit_name: null,
      topic_name: null,
      last_value: null,
      last_value_datetime: null,
    });
  });
});
