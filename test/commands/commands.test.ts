import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
import { createFixtureRepo, DEFAULT_SCHEMA_EXAMPLE } from "../helpers/git-fixtures.ts";
import { createUser, startTestInstance, type TestInstance } from "../helpers/instance.ts";
import { createRepo } from "../helpers/repos.ts";

// Device commands over a real broker: what the command endpoint publishes, and the
// SchemaUpdate / EnvUpdate the instance sends on its own when edges or env change.

const BASE_NAMES = DEFAULT_SCHEMA_EXAMPLE.input_base_topic;

/** A device: the unit's own token, subscribed to all four command topics. */
async function device(inst: TestInstance, unit: WorldUnit): Promise<TestClient> {
  const client = await connectClient(inst.mqttUrl, unit.token, { clientId: unit.uuid });
  for (const name of BASE_NAMES) {
    await client.subscribeAsync(unit.base("input_base_topic", name), { qos: 1 });
  }
  return client;
}

const on = (topic: string) => (m: { topic: string }) => m.topic === topic;

describe("device commands", () => {
  let inst: TestInstance;
  let world: World;
  let carol: { uuid: string; token: string };
  let a: WorldUnit;
  let b: WorldUnit;
  let devA: TestClient;
  let devB: TestClient;

  beforeAll(async () => {
    inst = await startTestInstance();
    world = await makeWorld(inst);
    carol = await createUser(inst.api, "carol");
    a = await makeUnit(inst, world.bob.token, world.repoUuid);
    b = await makeUnit(inst, world.bob.token, world.repoUuid);
    devA = await device(inst, a);
    devB = await device(inst, b);
  });
  afterAll(async () => {
    await devA?.endAsync(true);
    await devB?.endAsync(true);
    await inst?.close();
  });

  it("publishes the exact JSON of each command on the unit's exact input base topic", async () => {
    const cases: Array<[string, string, string]> = [
      ["EnvUpdate", "env_update/pepeunit", '{"COMMAND":"EnvUpdate"}'],
      ["SchemaUpdate", "schema_update/pepeunit", '{"COMMAND":"SchemaUpdate"}'],
      ["LogSync", "log_sync/pepeunit", '{"COMMAND":"LogSync"}'],
    ];
    for (const [command, name, payload] of cases) {
      devA.received.length = 0;
      // The unit itself asks, with its own token (as the device clients do).
      const res = await inst.api.post(
        `/units/send_command_to_input_base_topic/${a.uuid}?command=${command}`,
        undefined,
        a.token,
      );
      expect(res.status).toBe(204);
      const topic = `${DOMAIN}/input_base_topic/${a.uuid}/${name}`;
      const m = await devA.waitFor(on(topic));
      expect(m.payload.toString()).toBe(payload);
    }
    // Nothing leaked to the other unit.
    expect(devB.received.filter((m) => m.topic.includes(a.uuid))).toEqual([]);
  });

  it("sends Update with the unit's target sha and marks it RequestSent", async () => {
    const res = await inst.api.post(
      `/units/send_command_to_input_base_topic/${a.uuid}?command=Update`,
      undefined,
      world.bob.token,
    );
    expect(res.status).toBe(204);
    const m = await devA.waitFor(on(a.base("input_base_topic", "update/pepeunit")));
    expect(m.payload.toString()).toBe(
      `{"COMMAND":"Update","PU_COMMIT_VERSION":"${world.fixture.head()}"}`,
    );
    const unit = await inst.api.get(`/units/${a.uuid}`, world.bob.token);
    expect(unit.body.update_status).toBe("RequestSent");
    expect(unit.body.update_error).toBeNull();
  });

  it("answers 404 to strangers and other units, 422 to an unknown command", async () => {
    const path = `/units/send_command_to_input_base_topic/${a.uuid}?command=LogSync`;
    expect((await inst.api.post(path, undefined, carol.token)).status).toBe(404);
    expect((await inst.api.post(path, undefined, b.token)).status).toBe(404);
    expect((await inst.api.post(path)).status).toBe(404);
    const bad = await inst.api.post(
      `/units/send_command_to_input_base_topic/${a.uuid}?command=Reboot`,
      undefined,
      world.bob.token,
    );
    expect(bad.status).toBe(422);
  });

  it("refuses a command the unit's template does not list, and sends nothing", async () => {
    const fixture = createFixtureRepo({
      "env_example.json": "{}",
      "schema_example.json": JSON.stringify({
        ...DEFAULT_SCHEMA_EXAMPLE,
        input_base_topic: ["update/pepeunit", "schema_update/pepeunit"],
      }),
    });
    const repo = await createRepo(inst.api, world.bob.token, fixture);
    const c = await makeUnit(inst, world.bob.token, repo.uuid);
    const devC = await connectClient(inst.mqttUrl, c.token, { clientId: c.uuid });
    await devC.subscribeAsync(c.base("input_base_topic", "update/pepeunit"), { qos: 1 });
    for (const command of ["LogSync", "EnvUpdate"]) {
      const res = await inst.api.post(
        `/units/send_command_to_input_base_topic/${c.uuid}?command=${command}`,
        undefined,
        world.bob.token,
      );
      expect(res.status).toBe(422);
      expect(res.body.detail).toMatch(/does not list/);
    }
    const listed = await inst.api.post(
      `/units/send_command_to_input_base_topic/${c.uuid}?command=Update`,
      undefined,
      c.token,
    );
    expect(listed.status).toBe(204);
    await devC.waitFor(on(c.base("input_base_topic", "update/pepeunit")));
    await devC.endAsync(true);
  });

  it("sends SchemaUpdate to the input's unit when an edge is created, and the schema has it", async () => {
    devA.received.length = 0;
    devB.received.length = 0;
    const output = a.nodeUuid("Output", "temperature");
    const input = b.nodeUuid("Input", "relay");
    const edge = await linkNodes(inst, world.bob.token, output, input);
    const m = await devB.waitFor(on(b.base("input_base_topic", "schema_update/pepeunit")));
    expect(m.payload.toString()).toBe('{"COMMAND":"SchemaUpdate"}');
    // What the device downloads next lists the linked output after the input's own topic.
    const schema = await inst.api.get(`/units/get_current_schema/${b.uuid}`, b.token);
    expect(schema.body.input_topic.relay).toEqual([
      b.topic("Input", "relay"),
      a.topic("Output", "temperature"),
    ]);
    // The device may subscribe to it now (a refused SUBACK would drop a MicroPython client).
    const granted = await devB.subscribeAsync(a.topic("Output", "temperature"), { qos: 0 });
    expect(granted[0]?.qos).toBe(0);
    // The output's unit has nothing new to download.
    expect(devA.received.filter((x) => x.topic.endsWith("schema_update/pepeunit"))).toEqual([]);

    devB.received.length = 0;
    const removed = await inst.api.delete(`/unit_node_edges/${edge}`, world.bob.token);
    expect(removed.status).toBe(204);
    await devB.waitFor(on(b.base("input_base_topic", "schema_update/pepeunit")));
    const after = await inst.api.get(`/units/get_current_schema/${b.uuid}`, b.token);
    expect(after.body.input_topic.relay).toEqual([b.topic("Input", "relay")]);
  });

  it("sends one SchemaUpdate for a change that removes several edges into a unit", async () => {
    const c = await makeUnit(inst, world.bob.token, world.repoUuid);
    await linkNodes(
      inst,
      world.bob.token,
      c.nodeUuid("Output", "temperature"),
      b.nodeUuid("Input", "relay"),
    );
    await linkNodes(
      inst,
      world.bob.token,
      c.nodeUuid("Output", "output/pepeunit"),
      b.nodeUuid("Input", "input/pepeunit"),
    );
    await devB.waitFor(on(b.base("input_base_topic", "schema_update/pepeunit")));
    // Let the coalescing window of the two creations pass before counting.
    await new Promise((r) => setTimeout(r, 300));
    devB.received.length = 0;
    expect((await inst.api.delete(`/units/${c.uuid}`, world.bob.token)).status).toBe(204);
    await devB.waitFor(on(b.base("input_base_topic", "schema_update/pepeunit")));
    await new Promise((r) => setTimeout(r, 300));
    expect(devB.received.filter((m) => m.topic.endsWith("schema_update/pepeunit"))).toHaveLength(1);
    const schema = await inst.api.get(`/units/get_current_schema/${b.uuid}`, b.token);
    expect(schema.body.input_topic.relay).toEqual([b.topic("Input", "relay")]);
  });

  it("sends EnvUpdate after the env is edited, and the env then has the edit", async () => {
    devA.received.length = 0;
    const res = await inst.api.patch(
      `/units/env/${a.uuid}`,
      { PUC_WIFI_SSID: "greenhouse" },
      world.bob.token,
    );
    expect(res.status).toBe(200);
    const m = await devA.waitFor(on(a.base("input_base_topic", "env_update/pepeunit")));
    expect(m.payload.toString()).toBe('{"COMMAND":"EnvUpdate"}');
    const env = await inst.api.get(`/units/env/${a.uuid}`, a.token);
    expect(env.body.PUC_WIFI_SSID).toBe("greenhouse");
  });
});
