import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startTestInstance, type TestInstance } from "../helpers/instance.ts";
import {
  connectClient,
  connectPacket,
  linkNodes,
  makeUnit,
  makeWorld,
  rawConnection,
  subscribeCode,
  type TestClient,
  type World,
  type WorldUnit,
} from "./mqtt-helpers.ts";

// Small limits so each can be crossed cheaply: 2 KB payloads, 20 messages a second, 8 levels.
describe("MQTT limits: offenders are disconnected, everyone else keeps being served", () => {
  let inst: TestInstance;
  let world: World;
  let a: WorldUnit;
  let b: WorldUnit;
  let receiver: TestClient;
  const open: TestClient[] = [];

  const sender = async () => {
    const cl = await connectClient(inst.mqttUrl, a.token, { clientId: a.uuid });
    open.push(cl);
    return cl;
  };

  /** The bystander still gets a fresh message from a fresh connection of A. */
  const brokerStillServes = async (marker: string) => {
    const fresh = await sender();
    await fresh.publishAsync(a.topic("Output", "temperature"), marker, { qos: 1 });
    await receiver.waitFor((m) => m.payload.toString() === marker);
    expect(receiver.connected).toBe(true);
  };

  beforeAll(async () => {
    inst = await startTestInstance({
      PEPEUNIT_MQTT_MAX_PAYLOAD: "2048",
      PEPEUNIT_MQTT_MAX_MSG_PER_S: "20",
      PEPEUNIT_MQTT_MAX_TOPIC_LEVELS: "8",
    });
    world = await makeWorld(inst);
    a = await makeUnit(inst, world.bob.token, world.repoUuid);
    b = await makeUnit(inst, world.bob.token, world.repoUuid);
    await linkNodes(
      inst,
      world.bob.token,
      a.nodeUuid("Output", "temperature"),
      b.nodeUuid("Input", "relay"),
    );
    receiver = await connectClient(inst.mqttUrl, b.token, { clientId: b.uuid });
    expect(await subscribeCode(receiver, a.topic("Output", "temperature"))).toBe(1);
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((cl) => cl.endAsync(true)));
  });
  afterAll(async () => {
    await receiver?.endAsync(true);
    await inst?.close();
  });

  it("accepts a payload at the limit and disconnects on one byte more", async () => {
    const cl = await sender();
    const topic = a.topic("Output", "temperature");
    await cl.publishAsync(topic, Buffer.alloc(2048, 0x61), { qos: 1 });
    const got = await receiver.waitFor((m) => m.payload.length === 2048);
    expect(got.payload.equals(Buffer.alloc(2048, 0x61))).toBe(true);
    cl.publish(topic, Buffer.alloc(2049, 0x62), { qos: 0 });
    await cl.closed;
    expect(receiver.received.some((m) => m.payload.length === 2049)).toBe(false);
    await brokerStillServes("after-payload");
  });

  it("cuts a huge packet off before buffering it", async () => {
    const cl = await sender();
    cl.publish(a.topic("Output", "temperature"), Buffer.alloc(4 * 1024 * 1024), { qos: 0 });
    await cl.closed;
    await brokerStillServes("after-huge");
  });

  it("disconnects a client over the message rate", async () => {
    const cl = await sender();
    const topic = a.topic("Output", "temperature");
    for (let i = 0; i < 200 && cl.connected; i++) cl.publish(topic, `burst-${i}`, { qos: 0 });
    await cl.closed;
    // At most the one-second burst (plus refill) got through.
    const delivered = receiver.received.filter((m) => m.payload.toString().startsWith("burst-"));
    expect(delivered.length).toBeLessThan(60);
    await brokerStillServes("after-burst");
  });

  it("disconnects on a topic with too many levels, published or subscribed", async () => {
    const pub = await sender();
    pub.publish("localhost:8080/a/b/c/d/e/f/g/h", "deep", { qos: 0 });
    await pub.closed;
    const sub = await sender();
    sub.subscribe("localhost:8080/a/b/c/d/e/f/g/h", { qos: 0 });
    await sub.closed;
    await brokerStillServes("after-levels");
  });

  it("survives garbage and malformed packets", async () => {
    const garbage = await rawConnection(inst.broker.tcpPort);
    garbage.send(Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    await garbage.closed;

    const badLength = await rawConnection(inst.broker.tcpPort);
    badLength.send(Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x01]));
    await badLength.closed;

    // A well-formed login followed by a PUBLISH whose topic length overruns the packet.
    const truncated = await rawConnection(inst.broker.tcpPort);
    truncated.send(
      connectPacket({ clientId: a.uuid, username: a.token, password: "", clean: true }),
    );
    expect([...(await truncated.read(4))]).toEqual([0x20, 0x02, 0x00, 0x00]);
    truncated.send(Buffer.from([0x30, 0x03, 0x00, 0x7f, 0x61]));
    await truncated.closed;

    await brokerStillServes("after-garbage");
  });
});
