import { connect, type IConnackPacket } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestInstance, type TestInstance } from "../helpers/instance.ts";
import {
  connectClient,
  connectPacket,
  eventually,
  makeUnit,
  makeWorld,
  rawConnection,
  refusedCode,
  subscribePacket,
  type World,
  type WorldUnit,
} from "./mqtt-helpers.ts";

const CONNACK_ACCEPTED = [0x20, 0x02, 0x00, 0x00];

describe("MQTT login", () => {
  let inst: TestInstance;
  let world: World;
  let unit: WorldUnit;

  beforeAll(async () => {
    inst = await startTestInstance();
    world = await makeWorld(inst);
    unit = await makeUnit(inst, world.bob.token, world.repoUuid);
  });
  afterAll(async () => {
    await inst?.close();
  });

  it("serves the port env.json names", async () => {
    const env = await inst.api.get(`/units/env/${unit.uuid}`, world.bob.token);
    expect(env.body.PU_MQTT_PORT).toBe(inst.broker.tcpPort);
    expect(inst.mqttUrl).toBe(`mqtt://127.0.0.1:${env.body.PU_MQTT_PORT}`);
  });

  it("accepts a unit's token as username with an empty password; session present 0", async () => {
    const client = connect(inst.mqttUrl, {
      username: unit.token,
      password: "",
      clientId: unit.uuid,
      clean: false,
      protocolVersion: 4,
      reconnectPeriod: 0,
    });
    const connack = await new Promise<IConnackPacket>((resolve, reject) => {
      client.once("connect", resolve);
      client.once("error", reject);
    });
    expect(connack.returnCode).toBe(0);
    expect(connack.sessionPresent).toBe(false);
    await eventually(async () => inst.broker.isOnline(unit.uuid));
    await client.endAsync();
    await eventually(async () => !inst.broker.isOnline(unit.uuid));
  });

  it("answers a hand-built MQTT 3.1.1 CONNECT with exactly 20 02 00 00, even for a persistent session asked twice", async () => {
    for (let round = 0; round < 2; round++) {
      const raw = await rawConnection(inst.broker.tcpPort);
      raw.send(
        connectPacket({ clientId: unit.uuid, username: unit.token, password: "", clean: false }),
      );
      expect([...(await raw.read(4))]).toEqual(CONNACK_ACCEPTED);
      // A subscription that a persisted session would remember (and then report present).
      raw.send(subscribePacket(1, unit.base("input_base_topic", "update/pepeunit"), 1));
      expect([...(await raw.read(5))]).toEqual([0x90, 0x03, 0x00, 0x01, 0x01]);
      raw.end();
      await raw.closed;
      await eventually(async () => !inst.broker.isOnline(unit.uuid));
    }
  });

  it("refuses a wrong token with CONNACK 'bad user name or password' and closes", async () => {
    const raw = await rawConnection(inst.broker.tcpPort);
    const forged = `${unit.token.slice(0, -4)}AAAA`;
    raw.send(connectPacket({ clientId: unit.uuid, username: forged, password: "", clean: true }));
    expect([...(await raw.read(4))]).toEqual([0x20, 0x02, 0x00, 0x04]);
    await raw.closed;

    expect(await refusedCode(inst.mqttUrl, "not-a-jwt")).toBe(4);
    expect(await refusedCode(inst.mqttUrl, "")).toBe(4);
    // The token in the password field is not how devices log in.
    expect(await refusedCode(inst.mqttUrl, "", { password: unit.token })).toBe(4);
  });

  it("accepts a user's token; the internal client needs the instance's secret", async () => {
    const user = await connectClient(inst.mqttUrl, world.bob.token);
    expect(user.connected).toBe(true);
    await user.endAsync();

    const { username, password } = inst.broker.internalCredentials;
    expect(await refusedCode(inst.mqttUrl, username, { password: "guess" })).toBe(4);
    expect(await refusedCode(inst.mqttUrl, username)).toBe(4);
    const internal = await connectClient(inst.mqttUrl, username, { password });
    expect(internal.connected).toBe(true);
    await internal.endAsync();
  });

  it("does not let another principal take over a device's client id", async () => {
    const device = await connectClient(inst.mqttUrl, unit.token, { clientId: unit.uuid });
    expect(await refusedCode(inst.mqttUrl, world.bob.token, { clientId: unit.uuid })).toBe(2);
    expect(device.connected).toBe(true);
    // The same unit reconnecting (a device after a network drop) does take over.
    const again = await connectClient(inst.mqttUrl, unit.token, { clientId: unit.uuid });
    await device.closed;
    expect(again.connected).toBe(true);
    await again.endAsync();
  });

  it("closes the live connection of a rotated token and refuses the old token after", async () => {
    const other = await makeUnit(inst, world.bob.token, world.repoUuid);
    const client = await connectClient(inst.mqttUrl, other.token, { clientId: other.uuid });
    const rotated = await inst.api.post(`/units/${other.uuid}/rotate_token`, {}, world.bob.token);
    expect(rotated.status).toBe(200);
    await client.closed;
    expect(await refusedCode(inst.mqttUrl, other.token)).toBe(4);
    const renewed = await connectClient(inst.mqttUrl, rotated.body.token, { clientId: other.uuid });
    expect(renewed.connected).toBe(true);
    await renewed.endAsync();
  });

  it("closes a deleted unit's connection and refuses its token after", async () => {
    const doomed = await makeUnit(inst, world.bob.token, world.repoUuid);
    const client = await connectClient(inst.mqttUrl, doomed.token, { clientId: doomed.uuid });
    expect((await inst.api.delete(`/units/${doomed.uuid}`, world.bob.token)).status).toBe(204);
    await client.closed;
    await eventually(async () => !inst.broker.isOnline(doomed.uuid));
    expect(await refusedCode(inst.mqttUrl, doomed.token)).toBe(4);
  });

  it("logs in a unit created a moment ago and lets it subscribe at once", async () => {
    const fresh = await makeUnit(inst, world.bob.token, world.repoUuid);
    const raw = await rawConnection(inst.broker.tcpPort);
    raw.send(
      connectPacket({ clientId: fresh.uuid, username: fresh.token, password: "", clean: true }),
    );
    expect([...(await raw.read(4))]).toEqual(CONNACK_ACCEPTED);
    raw.send(subscribePacket(7, fresh.topic("Input", "relay"), 0));
    expect([...(await raw.read(5))]).toEqual([0x90, 0x03, 0x00, 0x07, 0x00]);
    raw.end();
  });
});
