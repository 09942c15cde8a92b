import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { subscribeCode, type TestClient } from "../broker/mqtt-helpers.ts";
import {
  device,
  eventually,
  type FedUnit,
  linkRemote,
  remoteEdge,
  type Side,
  schemaInputs,
  startSide,
} from "./fed-world.ts";

// Federation off and on again; a follower instance restarted mid-stream.

describe("federation lifecycle", () => {
  let a: Side;
  let b: Side;
  let sensor: FedUnit;
  let relay: FedUnit;
  let home: string;
  let devB: TestClient;
  const open: TestClient[] = [];

  beforeAll(async () => {
    [a, b] = await Promise.all([startSide(), startSide()]);
    sensor = await b.unit();
    relay = await a.unit();
    home = sensor.homeTopic("Output", "temperature");
    const res = await linkRemote(
      a,
      `${sensor.nodeUuid("Output", "temperature")}@${b.fi.domain}`,
      relay.nodeUuid("Input", "relay"),
    );
    await eventually(async () => (await remoteEdge(a, res.body.uuid))?.status === "Active");
    devB = await device(b, sensor);
    open.push(devB);
  });
  afterAll(async () => {
    await Promise.all(open.map((x) => x.endAsync(true).catch(() => {})));
    await Promise.all([a?.fi.close(), b?.fi.close()]);
  });

  it("off: no ActivityPub endpoints, remote edges suspended (SchemaUpdate); on: all restored", async () => {
    const devA = await device(a, relay);
    open.push(devA);
    await devA.subscribeAsync(
      `${a.fi.domain}/input_base_topic/${relay.uuid}/schema_update/pepeunit`,
    );
    await devA.subscribeAsync(home, { qos: 1 });
    const actor = () =>
      fetch(`${a.fi.baseUrl}/ap/actors/instance`, {
        headers: { accept: "application/activity+json" },
      });
    expect((await actor()).status).toBe(200);

    const off = await a.fi.api.patch("/admin/federation", { enabled: false }, a.world.admin.token);
    expect(off.body.enabled).toBe(false);
    expect((await actor()).status).toBe(404);
    expect(await schemaInputs(a, relay, "relay")).toEqual([relay.topic("Input", "relay")]);
    await devA.waitFor((m) => m.payload.toString().includes("SchemaUpdate"));
    // The broker dropped the unit's subscription to the suspended remote topic.
    await devB.publishAsync(home, "while-off", { qos: 1 });
    await new Promise((r) => setTimeout(r, 500));
    expect(devA.received.map((m) => m.payload.toString())).not.toContain("while-off");

    devA.received.length = 0;
    const on = await a.fi.api.patch("/admin/federation", { enabled: true }, a.world.admin.token);
    expect(on.body.enabled).toBe(true);
    expect((await actor()).status).toBe(200);
    expect(await schemaInputs(a, relay, "relay")).toEqual([relay.topic("Input", "relay"), home]);
    await devA.waitFor((m) => m.payload.toString().includes("SchemaUpdate"));
    expect((await devA.subscribeAsync(home, { qos: 1 }))[0]?.qos).toBe(1);
    await devB.publishAsync(home, "back-on", { qos: 1 });
    await devA.waitFor((m) => m.payload.toString() === "back-on", 10_000);
    await devA.endAsync(true);
  });

  it("a follower restarted mid-stream loses nothing and sees no reordering", async () => {
    const devA = await device(a, relay);
    await devA.subscribeAsync(home, { qos: 1 });
    const got = () =>
      devA.received.filter((m) => m.topic === home).map((m) => Number(m.payload.toString()));
    for (let i = 1; i <= 10; i++) await devB.publishAsync(home, String(i), { qos: 1 });
    await eventually(() => got().includes(10));
    await devA.endAsync(true);

    // A goes down; B keeps publishing: deliveries fail and are retried with back-off.
    await a.fi.stop();
    for (let i = 11; i <= 30; i++) await devB.publishAsync(home, String(i), { qos: 1 });
    await eventually(async () => {
      const peers = await b.fi.api.get("/admin/federation/peers", b.world.admin.token);
      return (
        peers.body.peers.find((p: { domain: string }) => p.domain === a.fi.domain)
          ?.delivery_errors > 0
      );
    });
    // B holds its queue while A's device reconnects (B publishes nothing meanwhile),
    // so the backlog is delivered when somebody is there to see it.
    await b.fi.api.patch("/admin/federation", { enabled: false }, b.world.admin.token);
    await a.fi.start();
    const devA2 = await device(a, relay);
    open.push(devA2);
    await devA2.subscribeAsync(home, { qos: 1 });
    await b.fi.api.patch("/admin/federation", { enabled: true }, b.world.admin.token);
    for (let i = 31; i <= 40; i++) await devB.publishAsync(home, String(i), { qos: 1 });
    const later = () =>
      devA2.received.filter((m) => m.topic === home).map((m) => Number(m.payload.toString()));
    await eventually(() => later().includes(40), 20_000);
    expect(later()).toEqual(Array.from({ length: 30 }, (_, i) => i + 11));
    expect(got()).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
  });

  it("a device back the moment the restarted instance listens keeps its remote subscription", async () => {
    await a.fi.stop();
    const starting = a.fi.start();
    // Like a device's reconnect loop: try until the broker accepts the connection.
    let dev: TestClient | null = null;
    while (!dev) {
      dev = await device(a, relay).catch(async () => {
        await new Promise((r) => setTimeout(r, 5));
        return null;
      });
    }
    open.push(dev);
    const code = await subscribeCode(dev, home);
    await starting;
    expect(code).toBe(1);
    await devB.publishAsync(home, "after-restart", { qos: 1 });
    await dev.waitFor((m) => m.payload.toString() === "after-restart", 10_000);
  });

  it("a reading A could not publish is not counted as delivered: B sends it again", async () => {
    const errorsOnB = async () => {
      const peers = await b.fi.api.get("/admin/federation/peers", b.world.admin.token);
      return peers.body.peers.find((p: { domain: string }) => p.domain === a.fi.domain)
        ?.delivery_errors as number;
    };
    const before = await errorsOnB();
    // A's broker goes away while its inbox still answers (as during a shutdown).
    await a.fi.inst.broker.close();
    await devB.publishAsync(home, "while-closed", { qos: 1 });
    await eventually(async () => (await errorsOnB()) > before, 20_000);
    await b.fi.api.patch("/admin/federation", { enabled: false }, b.world.admin.token);
    await a.fi.restart();
    const dev = await device(a, relay);
    open.push(dev);
    await dev.subscribeAsync(home, { qos: 1 });
    await b.fi.api.patch("/admin/federation", { enabled: true }, b.world.admin.token);
    await dev.waitFor((m) => m.payload.toString() === "while-closed", 20_000);
  });
});
