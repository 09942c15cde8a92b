import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  connectClient,
  linkNodes,
  makeUnit,
  makeWorld,
  refusedCode,
  subscribeCode,
  type World,
  type WorldUnit,
} from "../broker/mqtt-helpers.ts";
import { createUser, startTestInstance, type TestInstance } from "../helpers/instance.ts";
import { createRepo } from "../helpers/repos.ts";

// Issue 9 #5: while a user is blocked their units' tokens are refused on REST and
// MQTT (live sessions closed) and work again, unchanged, once the user is unblocked.

describe("units of a blocked user", () => {
  let inst: TestInstance;
  let world: World;
  /** Bob's private unit, its relay input fed by alice's sensor. */
  let bobs: WorldUnit;
  let alices: WorldUnit;

  beforeAll(async () => {
    inst = await startTestInstance();
    world = await makeWorld(inst);
    const alice = await createUser(inst.api, "alice");
    const aliceRepo = await createRepo(inst.api, alice.token, world.fixture);
    alices = await makeUnit(inst, alice.token, aliceRepo.uuid);
    bobs = await makeUnit(inst, world.bob.token, world.repoUuid, { visibility: "Private" });
    await linkNodes(
      inst,
      world.bob.token,
      alices.nodeUuid("Output", "temperature"),
      bobs.nodeUuid("Input", "relay"),
    );
  });
  afterAll(async () => {
    await inst?.close();
  });

  /** Bob's unit online, subscribed to the linked output; resolves once a value got through. */
  async function bobsDeviceReceives(sensor: Awaited<ReturnType<typeof connectClient>>) {
    const device = await connectClient(inst.mqttUrl, bobs.token, { clientId: bobs.uuid });
    const topic = alices.topic("Output", "temperature");
    expect(await subscribeCode(device, topic)).toBe(1);
    const value = `${Math.random()}`;
    await sensor.publishAsync(topic, value, { qos: 1 });
    await device.waitFor((m) => m.topic === topic && m.payload.toString() === value);
    return device;
  }

  const rest = (path: string) => inst.api.get(path, bobs.token);

  it("refuses them on REST and MQTT while blocked, and takes them back after", async () => {
    const sensor = await connectClient(inst.mqttUrl, alices.token, { clientId: alices.uuid });
    const device = await bobsDeviceReceives(sensor);
    expect((await rest(`/units/env/${bobs.uuid}`)).status).toBe(200);
    const listed = await rest("/units?limit=500");
    expect(listed.status).toBe(200);
    expect(JSON.stringify(listed.body)).toContain(bobs.uuid);

    const block = await inst.api.post(`/users/${world.bob.uuid}/block`, {}, world.admin.token);
    expect(block.status).toBe(200);
    await device.closed;
    expect(await refusedCode(inst.mqttUrl, bobs.token, { clientId: bobs.uuid })).toBe(4);
    expect((await rest(`/units/env/${bobs.uuid}`)).status).toBe(401);
    expect((await rest("/units?limit=500")).status).toBe(401);
    expect((await rest(`/units/get_current_schema/${bobs.uuid}`)).status).toBe(401);
    // Alice's unit is not touched.
    expect(sensor.connected).toBe(true);

    const unblock = await inst.api.post(`/users/${world.bob.uuid}/unblock`, {}, world.admin.token);
    expect(unblock.status).toBe(200);
    // The very same token, no re-flashing.
    expect((await rest(`/units/env/${bobs.uuid}`)).status).toBe(200);
    const back = await bobsDeviceReceives(sensor);
    await back.endAsync();
    await sensor.endAsync();
  });
});
