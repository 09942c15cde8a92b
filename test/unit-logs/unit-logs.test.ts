import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  connectClient,
  eventually,
  makeUnit,
  makeWorld,
  type World,
  type WorldUnit,
} from "../broker/mqtt-helpers.ts";
import { createUser, startTestInstance, type TestInstance } from "../helpers/instance.ts";

// What a unit reports, read back: its logs (GET /units/{uuid}/logs) and whether it is
// connected right now (is_online in the unit JSON).

describe("unit logs and online state", () => {
  let inst: TestInstance;
  let world: World;
  let carol: { uuid: string; token: string };
  let unit: WorldUnit;

  beforeAll(async () => {
    inst = await startTestInstance();
    world = await makeWorld(inst);
    carol = await createUser(inst.api, "carol");
    unit = await makeUnit(inst, world.bob.token, world.repoUuid);
  });
  afterAll(async () => {
    await inst?.close();
  });

  it("lists the logs a unit published, newest first, paginated", async () => {
    const dev = await connectClient(inst.mqttUrl, unit.token, { clientId: unit.uuid });
    const topic = unit.base("output_base_topic", "log/pepeunit");
    const t0 = Date.now() - 60_000;
    await dev.publishAsync(
      topic,
      JSON.stringify([
        { level: "Info", text: "booted", create_datetime: new Date(t0).toISOString() },
        { level: "warning", text: "low memory", create_datetime: t0 + 1000 },
        { level: "Error", text: "sensor lost", create_datetime: t0 + 2000 },
      ]),
      { qos: 1 },
    );
    await dev.publishAsync(topic, JSON.stringify({ level: "Debug", text: "tick" }), { qos: 1 });
    await dev.endAsync(true);

    // The logs read what the broker received, also entries still batched in memory.
    const all = await inst.api.get(`/units/${unit.uuid}/logs`, world.bob.token);
    expect(all.status).toBe(200);
    expect(all.body.count).toBe(4);
    expect(all.body.unit_logs.map((l: { text: string }) => l.text)).toEqual([
      "tick",
      "sensor lost",
      "low memory",
      "booted",
    ]);
    expect(all.body.unit_logs[1]).toMatchObject({
      unit_uuid: unit.uuid,
      level: "Error",
      text: "sensor lost",
      create_datetime: new Date(t0 + 2000).toISOString(),
    });

    const page = await inst.api.get(`/units/${unit.uuid}/logs?limit=2&offset=1`, world.bob.token);
    expect(page.body.count).toBe(4);
    expect(page.body.unit_logs.map((l: { text: string }) => l.text)).toEqual([
      "sensor lost",
      "low memory",
    ]);
    const errors = await inst.api.get(
      `/units/${unit.uuid}/logs?level=Error&level=Warning`,
      world.admin.token,
    );
    expect(errors.body.unit_logs.map((l: { level: string }) => l.level)).toEqual([
      "Error",
      "Warning",
    ]);
  });

  it("shows logs to the unit's creator and admins only", async () => {
    expect((await inst.api.get(`/units/${unit.uuid}/logs`, carol.token)).status).toBe(403);
    expect((await inst.api.get(`/units/${unit.uuid}/logs`, unit.token)).status).toBe(403);
    expect((await inst.api.get(`/units/${unit.uuid}/logs`)).status).toBe(401);
    const hidden = await makeUnit(inst, world.bob.token, world.repoUuid, {
      visibility: "Private",
    });
    expect((await inst.api.get(`/units/${hidden.uuid}/logs`, carol.token)).status).toBe(404);
    expect((await inst.api.get(`/units/${hidden.uuid}/logs?limit=0`, world.bob.token)).status).toBe(
      422,
    );
  });

  it("reports is_online while the unit holds an MQTT connection", async () => {
    const online = async (want: boolean) =>
      eventually(async () => {
        const one = await inst.api.get(`/units/${unit.uuid}`, carol.token);
        const list = await inst.api.get(`/units?search=${unit.json.name}`, carol.token);
        const listed = list.body.units.find((u: { uuid: string }) => u.uuid === unit.uuid);
        return one.body.is_online === want && listed?.is_online === want;
      });
    await online(false);
    const dev = await connectClient(inst.mqttUrl, unit.token, { clientId: unit.uuid });
    await online(true);
    const other = await makeUnit(inst, world.bob.token, world.repoUuid);
    expect((await inst.api.get(`/units/${other.uuid}`, carol.token)).body.is_online).toBe(false);
    await dev.endAsync();
    await online(false);
  });
});
