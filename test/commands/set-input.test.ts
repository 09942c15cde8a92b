import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  connectClient,
  makeUnit,
  makeWorld,
  type TestClient,
  type World,
  type WorldUnit,
} from "../broker/mqtt-helpers.ts";
import { createUser, startTestInstance, type TestInstance } from "../helpers/instance.ts";

// PATCH /unit_nodes/set_state_input/{uuid}: a value written from the API reaches the
// device subscribed to the input, and is kept as the variable's last value.

describe("set input", () => {
  let inst: TestInstance;
  let world: World;
  let carol: { uuid: string; token: string };
  let unit: WorldUnit;
  let dev: TestClient;

  const setInput = (nodeUuid: string, state: unknown, token?: string) =>
    inst.api.patch(`/unit_nodes/set_state_input/${nodeUuid}`, { state }, token);

  beforeAll(async () => {
    inst = await startTestInstance();
    world = await makeWorld(inst);
    carol = await createUser(inst.api, "carol");
    unit = await makeUnit(inst, world.bob.token, world.repoUuid);
    dev = await connectClient(inst.mqttUrl, unit.token, { clientId: unit.uuid });
    await dev.subscribeAsync(unit.topic("Input", "relay"), { qos: 1 });
    await dev.subscribeAsync(unit.topic("Input", "input/pepeunit"), { qos: 1 });
  });
  afterAll(async () => {
    await dev?.endAsync(true);
    await inst?.close();
  });

  it("publishes the value unchanged on the input's topic and records it", async () => {
    const relay = unit.nodeUuid("Input", "relay");
    const res = await setInput(relay, "on", world.bob.token);
    expect(res.status).toBe(200);
    expect(res.body.uuid).toBe(relay);
    expect(res.body.last_value).toBe("on");
    const m = await dev.waitFor((x) => x.topic === unit.topic("Input", "relay"));
    expect(m.payload.toString()).toBe("on");

    // Suffixed names publish on D/N/pepeunit; JSON text goes through as is.
    const payload = '{"mode":"auto","level":3}';
    const other = unit.nodeUuid("Input", "input/pepeunit");
    expect((await setInput(other, payload, world.bob.token)).status).toBe(200);
    const m2 = await dev.waitFor((x) => x.topic === `localhost:8080/${other}/pepeunit`);
    expect(m2.payload.toString()).toBe(payload);
    const node = await inst.api.get(`/unit_nodes/${other}`, world.bob.token);
    expect(node.body.last_value).toBe(payload);
    expect(node.body.last_value_datetime).not.toBeNull();
  });

  it("lets others set a visible input only when it is rewritable", async () => {
    const relay = unit.nodeUuid("Input", "relay");
    const refused = await setInput(relay, "off", carol.token);
    expect(refused.status).toBe(403);
    const flag = await inst.api.patch(
      `/unit_nodes/${relay}`,
      { is_rewritable_input: true },
      world.bob.token,
    );
    expect(flag.status).toBe(200);
    dev.received.length = 0;
    expect((await setInput(relay, "off", carol.token)).status).toBe(200);
    const m = await dev.waitFor((x) => x.topic === unit.topic("Input", "relay"));
    expect(m.payload.toString()).toBe("off");
  });

  it("refuses outputs, hidden inputs, units and anonymous callers, and bad bodies", async () => {
    const output = unit.nodeUuid("Output", "temperature");
    const out = await setInput(output, "1", world.bob.token);
    expect(out.status).toBe(422);

    const hidden = unit.nodeUuid("Input", "input/pepeunit");
    expect(
      (await inst.api.patch(`/unit_nodes/${hidden}`, { visibility: "Private" }, world.bob.token))
        .status,
    ).toBe(200);
    expect((await setInput(hidden, "x", carol.token)).status).toBe(404);
    expect((await setInput(hidden, "x")).status).toBe(401);
    expect((await setInput(hidden, "x", unit.token)).status).toBe(403);
    expect((await setInput(hidden, 42, world.bob.token)).status).toBe(422);
    // The admin may write anything.
    expect((await setInput(hidden, "x", world.admin.token)).status).toBe(200);
  });
});
