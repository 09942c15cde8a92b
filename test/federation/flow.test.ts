import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestClient } from "../broker/mqtt-helpers.ts";
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

// Two real instances on loopback, A following an output of B by uuid.

describe("federation: link, values, unlink, remote deletion", () => {
  let a: Side;
  let b: Side;
  let sensor: FedUnit; // on B
  let relay: FedUnit; // on A
  const open: TestClient[] = [];

  beforeAll(async () => {
    [a, b] = await Promise.all([startSide(), startSide()]);
    sensor = await b.unit();
    relay = await a.unit();
  });
  afterAll(async () => {
    await Promise.all(open.map((c) => c.endAsync(true)));
    await Promise.all([a?.fi.close(), b?.fi.close()]);
  });

  it("links by uuid: Accept activates the edge, values flow unit(B) → B → A → unit(A)", async () => {
    const out = sensor.nodeUuid("Output", "temperature");
    const res = await linkRemote(a, `${out}@${b.fi.domain}`, relay.nodeUuid("Input", "relay"));
    expect(res.status).toBe(202);
    expect(res.body.status).toBe("Pending");
    expect(res.body.output).toBe(`${b.fi.baseUrl}/ap/actors/${out}`);
    const home = sensor.homeTopic("Output", "temperature");
    const edge = await eventually(async () => {
      const e = await remoteEdge(a, res.body.uuid);
      return e?.status === "Active" && e;
    });
    expect(edge.remote_topic).toBe(home);
    // The unit's schema gains the remote topic (after its own), and it got SchemaUpdate.
    expect(await schemaInputs(a, relay, "relay")).toEqual([relay.topic("Input", "relay"), home]);

    const devA = await device(a, relay);
    open.push(devA);
    expect((await devA.subscribeAsync(home, { qos: 1 }))[0]?.qos).toBe(1);
    const devB = await device(b, sensor);
    open.push(devB);
    for (const v of ["21.5", "22.0", "22.5"]) await devB.publishAsync(home, v, { qos: 1 });
    const got = await eventually(() => {
      const vals = devA.received.filter((m) => m.topic === home).map((m) => m.payload.toString());
      return vals.length >= 3 && vals;
    });
    expect(got).toEqual(["21.5", "22.0", "22.5"]);
    // Payloads are opaque: bytes that are not UTF-8 arrive unchanged.
    const bin = Buffer.from([0, 255, 1, 254, 128]);
    await devB.publishAsync(home, bin, { qos: 1 });
    const m = await devA.waitFor((x) => x.topic === home && x.payload.length === 5, 10_000);
    expect(m.payload.equals(bin)).toBe(true);

    // B counts A as a follower; A knows B as a peer.
    const peersB = await b.fi.api.get("/admin/federation/peers", b.world.admin.token);
    expect(
      peersB.body.peers.find((p: { domain: string }) => p.domain === a.fi.domain)?.followers,
    ).toBe(1);
  });

  it("a unit may not subscribe to a remote topic it has no active edge for", async () => {
    const other = await a.unit();
    const dev = await device(a, other);
    open.push(dev);
    const home = sensor.homeTopic("Output", "temperature");
    const granted = await dev
      .subscribeAsync(home, { qos: 0 })
      .catch((err: { packet?: { granted?: number[] } }) => err.packet?.granted ?? []);
    expect(granted[0]).toBe(0x80);
  });

  it("unlink sends Undo: B drops the follower, A the edge and the schema topic", async () => {
    const out = sensor.nodeUuid("Output", "output/pepeunit");
    const input = relay.nodeUuid("Input", "input/pepeunit");
    const res = await linkRemote(a, `${b.fi.baseUrl}/ap/actors/${out}`, input);
    expect(res.status).toBe(202);
    await eventually(async () => (await remoteEdge(a, res.body.uuid))?.status === "Active");
    const home = sensor.homeTopic("Output", "output/pepeunit");
    expect(await schemaInputs(a, relay, "input/pepeunit")).toContain(home);
    const followers = async () =>
      (await b.fi.api.get("/admin/federation/peers", b.world.admin.token)).body.peers.find(
        (p: { domain: string }) => p.domain === a.fi.domain,
      )?.followers;
    expect(await followers()).toBe(2);

    const del = await a.fi.api.delete(`/unit_node_edges/${res.body.uuid}`, a.world.bob.token);
    expect(del.status).toBe(204);
    expect(await remoteEdge(a, res.body.uuid)).toBeUndefined();
    expect(await schemaInputs(a, relay, "input/pepeunit")).not.toContain(home);
    await eventually(async () => (await followers()) === 1);
  });

  it("deleting the unit on B reaches A: the edge goes, the schema loses the topic", async () => {
    const doomed = await b.unit();
    const out = doomed.nodeUuid("Output", "temperature");
    const res = await linkRemote(a, `${out}@${b.fi.domain}`, relay.nodeUuid("Input", "relay"));
    await eventually(async () => (await remoteEdge(a, res.body.uuid))?.status === "Active");
    const home = doomed.homeTopic("Output", "temperature");
    expect(await schemaInputs(a, relay, "relay")).toContain(home);
    const gone = await b.fi.api.delete(`/units/${doomed.uuid}`, b.world.bob.token);
    expect(gone.status).toBe(204);
    await eventually(async () => (await remoteEdge(a, res.body.uuid)) === undefined);
    expect(await schemaInputs(a, relay, "relay")).not.toContain(home);
  });
});
