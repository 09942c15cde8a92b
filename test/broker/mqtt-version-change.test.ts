import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_ENV_EXAMPLE, DEFAULT_SCHEMA_EXAMPLE } from "../helpers/git-fixtures.ts";
import { startTestInstance, type TestInstance } from "../helpers/instance.ts";
import { nodeOf } from "../helpers/units.ts";
import {
  connectClient,
  linkNodes,
  makeUnit,
  makeWorld,
  subscribeCode,
  type World,
  type WorldUnit,
} from "./mqtt-helpers.ts";

// A unit moved to a version whose template differs: the broker follows at once.
describe("MQTT access after a unit's version change", () => {
  let inst: TestInstance;
  let world: World;
  let v1: string;
  let v2: string;
  let a: WorldUnit;
  let b: WorldUnit;

  beforeAll(async () => {
    inst = await startTestInstance();
    world = await makeWorld(inst);
    v1 = world.fixture.head();
    v2 = world.fixture.commit("v2: humidity instead of temperature, a custom command", {
      "env_example.json": JSON.stringify(DEFAULT_ENV_EXAMPLE),
      "schema_example.json": JSON.stringify({
        ...DEFAULT_SCHEMA_EXAMPLE,
        input_base_topic: ["update/pepeunit", "custom_cmd"],
        output_topic: ["output/pepeunit", "humidity"],
      }),
    });
    const synced = await inst.api.post(`/repos/${world.repoUuid}/sync`, {}, world.bob.token);
    expect(synced.status).toBe(200);
    a = await makeUnit(inst, world.bob.token, world.repoUuid, {
      follow_repo: false,
      branch: "main",
      commit: v1,
    });
    b = await makeUnit(inst, world.bob.token, world.repoUuid);
    await linkNodes(
      inst,
      world.bob.token,
      a.nodeUuid("Output", "temperature"),
      b.nodeUuid("Input", "relay"),
    );
  });
  afterAll(async () => {
    await inst?.close();
  });

  it("drops the removed variable's flow and allows the new topics right after the PATCH", async () => {
    const device = await connectClient(inst.mqttUrl, a.token, { clientId: a.uuid });
    const receiver = await connectClient(inst.mqttUrl, b.token, { clientId: b.uuid });
    const owner = await connectClient(inst.mqttUrl, world.bob.token);
    const temperature = a.topic("Output", "temperature");
    expect(await subscribeCode(receiver, temperature)).toBe(1);
    expect(await subscribeCode(device, a.base("input_base_topic", "log_sync/pepeunit"))).toBe(1);
    expect(await subscribeCode(device, a.base("input_base_topic", "custom_cmd"))).toBe(0x80);
    await device.publishAsync(temperature, "v1-value", { qos: 1 });
    await receiver.waitFor((m) => m.payload.toString() === "v1-value");

    const patched = await inst.api.patch(`/units/${a.uuid}`, { commit: v2 }, world.bob.token);
    expect(patched.status).toBe(200);
    expect(patched.body.commit).toBe(v2);
    const humidity = nodeOf(patched.body, "Output", "humidity").topic;

    expect(await subscribeCode(owner, humidity)).toBe(1);
    await device.publishAsync(temperature, "stale-variable", { qos: 1 });
    await device.publishAsync(humidity, "new-variable", { qos: 1 });
    await owner.waitFor((m) => m.payload.toString() === "new-variable");
    expect(receiver.received.map((m) => m.payload.toString())).not.toContain("stale-variable");
    expect(await subscribeCode(receiver, temperature)).toBe(0x80);

    // Base topics follow the new template too.
    expect(await subscribeCode(device, a.base("input_base_topic", "custom_cmd"))).toBe(1);
    expect(await subscribeCode(device, a.base("input_base_topic", "log_sync/pepeunit"))).toBe(0x80);
    await Promise.all([device, receiver, owner].map((c) => c.endAsync()));
  });
});
