import { connect, type IConnackPacket } from "mqtt";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startTestInstance, type TestInstance } from "../helpers/instance.ts";
import {
  connectClient,
  connectPacket,
  eventually,
  linkNodes,
  makeUnit,
  makeWorld,
  rawConnection,
  subscribeCode,
  type TestClient,
  type World,
  type WorldUnit,
} from "./mqtt-helpers.ts";

// Device protocol §3: "MQTT 3.1.1 (accept 5.0 too)". Aedes speaks 3.1.1; an MQTT 5
// connection is translated at the transport, with the same authorization.
describe("MQTT 5 clients", () => {
  let inst: TestInstance;
  let world: World;
  let a: WorldUnit;
  let b: WorldUnit;
  const open: TestClient[] = [];
  const v5 = async (token: string, clientId?: string) => {
    const cl = await connectClient(inst.mqttUrl, token, {
      protocolVersion: 5,
      ...(clientId ? { clientId } : {}),
    });
    open.push(cl);
    return cl;
  };

  beforeAll(async () => {
    inst = await startTestInstance();
    world = await makeWorld(inst);
    a = await makeUnit(inst, world.bob.token, world.repoUuid);
    b = await makeUnit(inst, world.bob.token, world.repoUuid);
    await linkNodes(
      inst,
      world.bob.token,
      a.nodeUuid("Output", "temperature"),
      b.nodeUuid("Input", "relay"),
    );
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((cl) => cl.endAsync(true)));
  });
  afterAll(async () => {
    await inst?.close();
  });

  it("accepts a unit token at protocol level 5 and says topic aliases are unavailable", async () => {
    const client = connect(inst.mqttUrl, {
      username: a.token,
      password: "",
      clientId: a.uuid,
      protocolVersion: 5,
      reconnectPeriod: 0,
    });
    const connack = await new Promise<IConnackPacket>((resolve, reject) => {
      client.once("connect", resolve);
      client.once("error", reject);
    });
    expect(connack.reasonCode).toBe(0);
    expect(connack.properties?.topicAliasMaximum).toBe(0);
    expect(connack.properties?.maximumPacketSize).toBeGreaterThan(256 * 1024);
    await eventually(async () => inst.broker.isOnline(a.uuid));
    await client.endAsync();
    await eventually(async () => !inst.broker.isOnline(a.uuid));
  });

  it("refuses a forged token with reason code 0x86 (bad user name or password)", async () => {
    const forged = `${a.token.slice(0, -4)}AAAA`;
    const client = connect(inst.mqttUrl, {
      username: forged,
      password: "",
      protocolVersion: 5,
      reconnectPeriod: 0,
    });
    const err = await new Promise<Error & { code?: number }>((resolve) =>
      client.once("error", resolve),
    );
    expect(err.code).toBe(0x86);
    client.end(true);
  });

  it("grants linked topics, refuses others with 0x87 and routes between 5 and 3.1.1 both ways", async () => {
    const receiver = await v5(b.token, b.uuid);
    const temperature = a.topic("Output", "temperature");
    const relay = b.topic("Input", "relay");
    expect(await subscribeCode(receiver, temperature)).toBe(1);
    expect(await subscribeCode(receiver, "#")).toBe(0x87);
    expect(await subscribeCode(receiver, a.base("input_base_topic", "update/pepeunit"))).toBe(0x87);
    expect(receiver.connected).toBe(true);

    // A 3.1.1 sender reaches the MQTT 5 receiver (QoS 1 acknowledged end to end).
    const oldSender = await connectClient(inst.mqttUrl, a.token, { clientId: a.uuid });
    open.push(oldSender);
    await oldSender.publishAsync(temperature, Buffer.from([0, 0xff, 1]), { qos: 1 });
    const got = await receiver.waitFor((m) => m.topic === temperature);
    expect([...got.payload]).toEqual([0, 0xff, 1]);
    await oldSender.endAsync();

    // An MQTT 5 sender reaches a 3.1.1 watcher (a user subscribed to the input it writes).
    const watcher = await connectClient(inst.mqttUrl, world.bob.token);
    open.push(watcher);
    expect(await subscribeCode(watcher, relay)).toBe(1);
    const sender = await v5(world.bob.token);
    await sender.publishAsync(relay, "1", { qos: 1 });
    expect((await watcher.waitFor((m) => m.topic === relay)).payload.toString()).toBe("1");

    // UNSUBSCRIBE answers with one reason code per filter, and the flow stops.
    await receiver.unsubscribeAsync([temperature, relay]);
    const again = await v5(a.token, a.uuid);
    await again.publishAsync(temperature, "after", { qos: 1 });
    await again.publishAsync(temperature, "marker", { qos: 1 });
    await new Promise((r) => setTimeout(r, 200));
    expect(receiver.received.map((m) => m.payload.toString())).not.toContain("after");
  });

  it("publishes the will when a unit disconnects with reason 0x04, and not on a normal DISCONNECT", async () => {
    const temperature = a.topic("Output", "temperature");
    const receiver = await v5(b.token, b.uuid);
    expect(await subscribeCode(receiver, temperature)).toBe(1);
    const will = {
      topic: temperature,
      payload: Buffer.from("gone"),
      qos: 1 as const,
      retain: false,
    };
    const quiet = await v5(a.token, a.uuid);
    quiet.options.will = will;
    await quiet.endAsync(false, { reasonCode: 0 });
    const leaving = connect(inst.mqttUrl, {
      username: a.token,
      password: "",
      clientId: a.uuid,
      protocolVersion: 5,
      reconnectPeriod: 0,
      will,
    });
    await new Promise((resolve) => leaving.once("connect", resolve));
    await leaving.endAsync(false, { reasonCode: 0x04 });
    const got = await receiver.waitFor((m) => m.topic === temperature);
    expect(got.payload.toString()).toBe("gone");
    expect(receiver.received).toHaveLength(1);
  });

  it("speaks MQTT 5 over WebSocket too", async () => {
    const wsUrl = `${inst.httpUrl.replace("http://", "ws://")}/mqtt`;
    const temperature = a.topic("Output", "temperature");
    const receiver = await connectClient(wsUrl, b.token, { protocolVersion: 5, clientId: b.uuid });
    open.push(receiver);
    expect(await subscribeCode(receiver, temperature)).toBe(1);
    expect(await subscribeCode(receiver, "#")).toBe(0x87);
    const sender = await v5(a.token, a.uuid);
    await sender.publishAsync(temperature, "over ws", { qos: 1 });
    expect((await receiver.waitFor((m) => m.topic === temperature)).payload.toString()).toBe(
      "over ws",
    );
  });

  it("ingests the state an MQTT 5 unit publishes", async () => {
    const unit = await v5(a.token, a.uuid);
    await unit.publishAsync(
      a.base("output_base_topic", "state/pepeunit"),
      JSON.stringify({ millis: 4242 }),
      { qos: 1 },
    );
    await eventually(async () => {
      const res = await inst.api.get(`/units/${a.uuid}`, world.bob.token);
      return res.body.last_state?.millis === 4242;
    });
  });

  it("keeps answering 3.1.1 clients with exactly the 3.1.1 bytes", async () => {
    const raw = await rawConnection(inst.broker.tcpPort);
    raw.send(connectPacket({ clientId: a.uuid, username: a.token, password: "", clean: true }));
    expect([...(await raw.read(4))]).toEqual([0x20, 0x02, 0x00, 0x00]);
    raw.end();
    await raw.closed;
  });
});
