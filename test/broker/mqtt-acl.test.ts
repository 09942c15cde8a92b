import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createUser, startTestInstance, type TestInstance } from "../helpers/instance.ts";
import { createRepo } from "../helpers/repos.ts";
import {
  clientPool,
  DOMAIN,
  linkNodes,
  makeUnit,
  makeWorld,
  subscribeCode,
  type World,
  type WorldUnit,
} from "./mqtt-helpers.ts";

const REFUSED = 0x80;

// Unit A's outputs feed unit B's inputs: output/pepeunit → input/pepeunit, temperature → relay.
// Unit C belongs to alice and is linked to nothing.
describe("MQTT authorization (device-protocol §4)", () => {
  let inst: TestInstance;
  let world: World;
  let alice: { uuid: string; token: string };
  let a: WorldUnit;
  let b: WorldUnit;
  let c: WorldUnit;
  let mainEdge: string;
  const pool = clientPool(() => inst.mqttUrl);
  const client = pool.client;

  beforeAll(async () => {
    inst = await startTestInstance();
    world = await makeWorld(inst);
    alice = await createUser(inst.api, "alice");
    a = await makeUnit(inst, world.bob.token, world.repoUuid);
    b = await makeUnit(inst, world.bob.token, world.repoUuid);
    const aliceRepo = await createRepo(inst.api, alice.token, world.fixture);
    c = await makeUnit(inst, alice.token, aliceRepo.uuid);
    mainEdge = await linkNodes(
      inst,
      world.bob.token,
      a.nodeUuid("Output", "output/pepeunit"),
      b.nodeUuid("Input", "input/pepeunit"),
    );
    await linkNodes(
      inst,
      world.bob.token,
      a.nodeUuid("Output", "temperature"),
      b.nodeUuid("Input", "relay"),
    );
  });
  afterEach(async () => {
    await pool.closeAll();
  });
  afterAll(async () => {
    await inst?.close();
  });

  it("lets a unit subscribe to every topic of input_base_topic and input_topic in its schema.json", async () => {
    const schema = await inst.api.get(`/units/get_current_schema/${b.uuid}`, b.token);
    expect(schema.status).toBe(200);
    const topics = [
      ...Object.values<string[]>(schema.body.input_base_topic).flat(),
      ...Object.values<string[]>(schema.body.input_topic).flat(),
    ];
    // Its own inputs, the two linked outputs of A and the four command topics.
    expect(topics).toHaveLength(8);
    expect(topics).toContain(a.topic("Output", "output/pepeunit"));
    expect(topics).toContain(a.topic("Output", "temperature"));
    const unit = await client(b.token, b.uuid);
    // One topic per SUBSCRIBE, like the MicroPython client.
    for (const topic of topics) expect(await subscribeCode(unit, topic), topic).toBe(1);
  });

  it("refuses everything else with SUBACK 0x80 and keeps the connection", async () => {
    const unit = await client(b.token, b.uuid);
    const refused = [
      "#",
      `${DOMAIN}/#`,
      `${DOMAIN}/+/pepeunit`,
      "$SYS/#",
      a.base("input_base_topic", "update/pepeunit"),
      b.base("output_base_topic", "state/pepeunit"),
      b.base("input_base_topic", "not_in_template"),
      a.topic("Input", "relay"),
      c.topic("Output", "temperature"),
      b.topic("Output", "output/pepeunit"),
      // A variable topic with the wrong suffix form is not that variable's topic.
      `${DOMAIN}/${a.nodeUuid("Output", "output/pepeunit")}`,
      `${DOMAIN}/${a.nodeUuid("Output", "temperature")}/pepeunit`,
      `other.example/${a.nodeUuid("Output", "temperature")}`,
    ];
    for (const topic of refused) expect(await subscribeCode(unit, topic), topic).toBe(REFUSED);
    expect(unit.connected).toBe(true);
    expect(await subscribeCode(unit, b.topic("Input", "relay"))).toBe(1);
  });

  it("delivers a unit's output to the linked unit unchanged, and drops a publish to a foreign topic", async () => {
    const receiver = await client(b.token, b.uuid);
    const sender = await client(a.token, a.uuid);
    const watcher = await client(world.bob.token);
    const temperature = a.topic("Output", "temperature");
    expect(await subscribeCode(receiver, temperature)).toBe(1);
    expect(await subscribeCode(receiver, b.topic("Input", "relay"))).toBe(1);
    expect(await subscribeCode(watcher, b.topic("Input", "input/pepeunit"))).toBe(1);

    // Opaque bytes (e.g. AES-GCM ciphertext) arrive byte for byte.
    const bytes = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80, 0x7f]);
    await sender.publishAsync(temperature, bytes, { qos: 1 });
    const got = await receiver.waitFor((m) => m.topic === temperature);
    expect(got.payload.equals(bytes)).toBe(true);

    // A publishes into B's inputs and B's base topic: not its own, so nobody gets them.
    await sender.publishAsync(b.topic("Input", "relay"), "forged", { qos: 1 });
    await sender.publishAsync(b.topic("Input", "input/pepeunit"), "forged", { qos: 0 });
    await sender.publishAsync(b.base("input_base_topic", "update/pepeunit"), "{}", { qos: 1 });
    // Messages from one publisher arrive in order: the marker proves the others were not delivered.
    await sender.publishAsync(temperature, "marker", { qos: 1 });
    await receiver.waitFor((m) => m.payload.toString() === "marker");
    expect(receiver.received.map((m) => m.payload.toString())).not.toContain("forged");
    expect(watcher.received).toEqual([]);
    expect(sender.connected).toBe(true);
  });

  it("cuts the flow at once when an edge is removed, and the unit must subscribe again after a new link", async () => {
    const receiver = await client(b.token, b.uuid);
    const sender = await client(a.token, a.uuid);
    const output = a.topic("Output", "output/pepeunit");
    const temperature = a.topic("Output", "temperature");
    expect(await subscribeCode(receiver, output)).toBe(1);
    expect(await subscribeCode(receiver, temperature)).toBe(1);
    await sender.publishAsync(output, "before", { qos: 1 });
    await receiver.waitFor((m) => m.payload.toString() === "before");

    expect((await inst.api.delete(`/unit_node_edges/${mainEdge}`, world.bob.token)).status).toBe(
      204,
    );
    await sender.publishAsync(output, "after-delete", { qos: 1 });
    await sender.publishAsync(temperature, "marker-1", { qos: 1 });
    await receiver.waitFor((m) => m.payload.toString() === "marker-1");
    expect(receiver.received.map((m) => m.payload.toString())).not.toContain("after-delete");
    expect(await subscribeCode(receiver, output)).toBe(REFUSED);

    // Linking again allows the topic, but the old subscription was dropped, not kept dormant.
    mainEdge = await linkNodes(
      inst,
      world.bob.token,
      a.nodeUuid("Output", "output/pepeunit"),
      b.nodeUuid("Input", "input/pepeunit"),
    );
    await sender.publishAsync(output, "relinked-unsubscribed", { qos: 1 });
    await sender.publishAsync(temperature, "marker-2", { qos: 1 });
    await receiver.waitFor((m) => m.payload.toString() === "marker-2");
    expect(receiver.received.map((m) => m.payload.toString())).not.toContain(
      "relinked-unsubscribed",
    );
    expect(await subscribeCode(receiver, output)).toBe(1);
    await sender.publishAsync(output, "relinked", { qos: 1 });
    await receiver.waitFor((m) => m.payload.toString() === "relinked");
  });

  it("makes a new edge effective at once, also from another owner's unit", async () => {
    const receiver = await client(b.token, b.uuid);
    const sender = await client(c.token, c.uuid);
    const cOut = c.topic("Output", "temperature");
    expect(await subscribeCode(receiver, cOut)).toBe(REFUSED);
    await linkNodes(
      inst,
      world.bob.token,
      c.nodeUuid("Output", "temperature"),
      b.nodeUuid("Input", "relay"),
    );
    expect(await subscribeCode(receiver, cOut)).toBe(1);
    await sender.publishAsync(cOut, "from-c", { qos: 1 });
    await receiver.waitFor((m) => m.topic === cOut && m.payload.toString() === "from-c");
  });

  it("lets users read variables they can see and write only inputs they may write", async () => {
    const aliceClient = await client(alice.token);
    const bobClient = await client(world.bob.token);
    const receiver = await client(b.token, b.uuid);
    const relay = b.topic("Input", "relay");
    expect(await subscribeCode(receiver, relay)).toBe(1);
    // Public variables of someone else: readable. Base topics: not for users.
    expect(await subscribeCode(aliceClient, a.topic("Output", "temperature"))).toBe(1);
    expect(await subscribeCode(aliceClient, b.base("output_base_topic", "state/pepeunit"))).toBe(
      REFUSED,
    );
    // Alice may not write bob's non-rewritable input; bob (its creator) may.
    await aliceClient.publishAsync(relay, "from-alice", { qos: 1 });
    await bobClient.publishAsync(relay, "from-bob", { qos: 1 });
    await receiver.waitFor((m) => m.payload.toString() === "from-bob");
    expect(receiver.received.map((m) => m.payload.toString())).not.toContain("from-alice");
    // Outputs are written by their unit only, even by its creator.
    expect(await subscribeCode(receiver, a.topic("Output", "temperature"))).toBe(1);
    await bobClient.publishAsync(a.topic("Output", "temperature"), "fake", { qos: 1 });
    await bobClient.publishAsync(relay, "marker", { qos: 1 });
    await receiver.waitFor((m) => m.payload.toString() === "marker");
    expect(receiver.received.map((m) => m.payload.toString())).not.toContain("fake");
  });

  it("drops a user's subscription when the unit becomes private to them", async () => {
    const priv = await makeUnit(inst, world.bob.token, world.repoUuid);
    const aliceClient = await client(alice.token);
    const bobClient = await client(world.bob.token);
    const sender = await client(priv.token, priv.uuid);
    const topic = priv.topic("Output", "temperature");
    expect(await subscribeCode(aliceClient, topic)).toBe(1);
    expect(await subscribeCode(bobClient, topic)).toBe(1);
    await sender.publishAsync(topic, "public", { qos: 1 });
    await aliceClient.waitFor((m) => m.payload.toString() === "public");

    const patched = await inst.api.patch(
      `/units/${priv.uuid}`,
      { visibility: "Private" },
      world.bob.token,
    );
    expect(patched.status).toBe(200);
    await sender.publishAsync(topic, "private", { qos: 1 });
    // Bob, the owner, still receives; by then alice would have too.
    await bobClient.waitFor((m) => m.payload.toString() === "private");
    expect(aliceClient.received.map((m) => m.payload.toString())).not.toContain("private");
    expect(await subscribeCode(aliceClient, topic)).toBe(REFUSED);
  });
});
