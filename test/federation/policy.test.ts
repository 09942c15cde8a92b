import { generateCryptoKeyPair, signRequest } from "@fedify/fedify";
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

// Who may follow what: visibility, grants, block-list, allow-list; and inbound
// activities that are not signed by their actor. Three instances: B has the
// outputs, A and C follow them.

describe("federation policy", () => {
  let a: Side;
  let b: Side;
  let c: Side;
  let sensor: FedUnit; // B, Public
  const open: TestClient[] = [];
  const followersOf = async (domain: string) =>
    (await b.fi.api.get("/admin/federation/peers", b.world.admin.token)).body.peers.find(
      (p: { domain: string }) => p.domain === domain,
    )?.followers ?? 0;

  beforeAll(async () => {
    [a, b, c] = await Promise.all([startSide(), startSide(), startSide()]);
    sensor = await b.unit();
  });
  afterAll(async () => {
    await Promise.all(open.map((x) => x.endAsync(true)));
    await Promise.all([a?.fi.close(), b?.fi.close(), c?.fi.close()]);
  });

  it("an Internal output is rejected, with the reason kept on the pending edge", async () => {
    const internal = await b.unit({ visibility: "Internal" });
    const relay = await a.unit();
    const res = await linkRemote(
      a,
      `${internal.nodeUuid("Output", "temperature")}@${b.fi.domain}`,
      relay.nodeUuid("Input", "relay"),
    );
    expect(res.status).toBe(202);
    const e = await eventually(async () => {
      const x = await remoteEdge(a, res.body.uuid);
      return x?.status === "Rejected" && x;
    });
    expect(e.reason).toMatch(/Internal/);
    expect(await schemaInputs(a, relay, "relay")).toEqual([relay.topic("Input", "relay")]);
  });

  it("a Private output is rejected without a grant and accepted with one (domain or unit)", async () => {
    const secret = await b.unit({ visibility: "Private" });
    const out = secret.nodeUuid("Output", "temperature");
    const relay = await a.unit();
    const first = await linkRemote(a, `${out}@${b.fi.domain}`, relay.nodeUuid("Input", "relay"));
    const rejected = await eventually(async () => {
      const x = await remoteEdge(a, first.body.uuid);
      return x?.status === "Rejected" && x;
    });
    expect(rejected.reason).toMatch(/Private/);
    await a.fi.api.delete(`/unit_node_edges/${first.body.uuid}`, a.world.bob.token);

    // A grant to another unit of A does not open it to this one…
    const other = await a.unit();
    const g1 = await b.fi.api.post(
      "/federation/grants",
      { node_uuid: out, grantee: `${other.uuid}@${a.fi.domain}` },
      b.world.bob.token,
    );
    expect(g1.status).toBe(201);
    const second = await linkRemote(a, `${out}@${b.fi.domain}`, relay.nodeUuid("Input", "relay"));
    await eventually(async () => (await remoteEdge(a, second.body.uuid))?.status === "Rejected");
    // …a grant to the unit itself does.
    const g2 = await b.fi.api.post(
      "/federation/grants",
      { node_uuid: out, grantee: `${relay.uuid}@${a.fi.domain}` },
      b.world.bob.token,
    );
    expect(g2.status).toBe(201);
    await a.fi.api.delete(`/unit_node_edges/${second.body.uuid}`, a.world.bob.token);
    const third = await linkRemote(a, `${out}@${b.fi.domain}`, relay.nodeUuid("Input", "relay"));
    await eventually(async () => (await remoteEdge(a, third.body.uuid))?.status === "Active");
    // Only the output's owner sees or changes its grants.
    const list = await b.fi.api.get(`/federation/grants?node_uuid=${out}`, b.world.bob.token);
    expect(list.body.grants).toHaveLength(2);
    expect(
      (await b.fi.api.get(`/federation/grants?node_uuid=${out}`, b.world.admin.token)).status,
    ).toBe(200);

    // Revoking the grant rejects the follower: A removes the edge.
    const del = await b.fi.api.delete(`/federation/grants/${g2.body.uuid}`, b.world.bob.token);
    expect(del.status).toBe(204);
    await eventually(async () => (await remoteEdge(a, third.body.uuid)) === undefined);
  });

  it("blocking an instance drops its follows and stops deliveries both ways; others go on", async () => {
    const home = sensor.homeTopic("Output", "temperature");
    const out = `${sensor.nodeUuid("Output", "temperature")}@${b.fi.domain}`;
    const ra = await a.unit();
    const rc = await c.unit();
    const la = await linkRemote(a, out, ra.nodeUuid("Input", "relay"));
    const lc = await linkRemote(c, out, rc.nodeUuid("Input", "relay"));
    await eventually(async () => (await remoteEdge(a, la.body.uuid))?.status === "Active");
    await eventually(async () => (await remoteEdge(c, lc.body.uuid))?.status === "Active");
    const devA = await device(a, ra);
    const devC = await device(c, rc);
    const devB = await device(b, sensor);
    open.push(devA, devC, devB);
    await devA.subscribeAsync(home, { qos: 1 });
    await devC.subscribeAsync(home, { qos: 1 });
    await devB.publishAsync(home, "before", { qos: 1 });
    await devA.waitFor((m) => m.payload.toString() === "before", 10_000);
    await devC.waitFor((m) => m.payload.toString() === "before", 10_000);
    const cFollowsBefore = await followersOf(c.fi.domain);
    expect(cFollowsBefore).toBeGreaterThanOrEqual(1);

    const blocked = await b.fi.api.request("PUT", `/admin/federation/peers/${c.fi.domain}`, {
      token: b.world.admin.token,
      body: { blocked: true },
    });
    expect(blocked.status).toBe(200);
    expect(blocked.body.blocked).toBe(true);
    expect(blocked.body.followers).toBe(0);

    await devB.publishAsync(home, "after", { qos: 1 });
    await devA.waitFor((m) => m.payload.toString() === "after", 10_000);
    // A follow from C now is refused (the pending edge says why), and B's inbox refuses C.
    const rc2 = await c.unit();
    const again = await linkRemote(c, out, rc2.nodeUuid("Input", "relay"));
    const refused = await eventually(async () => {
      const x = await remoteEdge(c, again.body.uuid);
      return x?.status === "Rejected" && x;
    });
    expect(refused.reason).toMatch(/blocked/);
    expect(devC.received.map((m) => m.payload.toString())).not.toContain("after");
    expect(await followersOf(c.fi.domain)).toBe(0);
  });

  it("allow-list mode: only listed instances may follow", async () => {
    const mode = await b.fi.api.patch(
      "/admin/federation",
      { mode: "AllowList" },
      b.world.admin.token,
    );
    expect(mode.body).toEqual({ enabled: true, mode: "AllowList" });
    const out = `${sensor.nodeUuid("Output", "output/pepeunit")}@${b.fi.domain}`;
    const r1 = await a.unit();
    const refused = await linkRemote(a, out, r1.nodeUuid("Input", "input/pepeunit"));
    const e = await eventually(async () => {
      const x = await remoteEdge(a, refused.body.uuid);
      return x?.status === "Rejected" && x;
    });
    expect(e.reason).toMatch(/allow-list/);
    await b.fi.api.request("PUT", `/admin/federation/peers/${a.fi.domain}`, {
      token: b.world.admin.token,
      body: { allowed: true },
    });
    const r2 = await a.unit();
    const ok = await linkRemote(a, out, r2.nodeUuid("Input", "input/pepeunit"));
    await eventually(async () => (await remoteEdge(a, ok.body.uuid))?.status === "Active");
    await b.fi.api.patch("/admin/federation", { mode: "Open" }, b.world.admin.token);
  });

  it("admin endpoints are for admins only", async () => {
    expect((await b.fi.api.get("/admin/federation", b.world.bob.token)).status).toBe(403);
    expect((await b.fi.api.get("/admin/federation/peers")).status).toBe(401);
  });

  it("unsigned and forged activities are refused; unknown or oversized ones never cause a 500", async () => {
    const before = await followersOf(a.fi.domain);
    const follow = {
      "@context": "https://www.w3.org/ns/activitystreams",
      id: `${a.fi.baseUrl}/ap/follows/forged-${Date.now()}`,
      type: "Follow",
      actor: `${a.fi.baseUrl}/ap/actors/instance`,
      object: `${b.fi.baseUrl}/ap/actors/${sensor.nodeUuid("Output", "temperature")}`,
    };
    const post = (body: unknown, headers: Record<string, string> = {}) =>
      new Request(`${b.fi.baseUrl}/ap/inbox`, {
        method: "POST",
        headers: { "content-type": "application/activity+json", ...headers },
        body: JSON.stringify(body),
      });
    // Unsigned.
    const unsigned = await fetch(post(follow));
    expect(unsigned.status).toBe(401);
    // Signed with a key that is not A's, under A's key id.
    const { privateKey } = await generateCryptoKeyPair("RSASSA-PKCS1-v1_5");
    const forged = await signRequest(
      post(follow),
      privateKey,
      new URL(`${a.fi.baseUrl}/ap/actors/instance#main-key`),
    );
    expect((await fetch(forged)).status).toBe(401);
    // Readings (their own fast path) unsigned, and forged.
    const readings = {
      "@context": "https://www.w3.org/ns/activitystreams",
      id: `${a.fi.baseUrl}/ap/activities/forged-${Date.now()}`,
      type: "Add",
      actor: `${a.fi.baseUrl}/ap/actors/instance`,
      object: { type: ["Object", "ReadingBatch"], readings: [] },
    };
    expect((await fetch(post(readings))).status).toBe(401);
    const forgedReadings = await signRequest(
      post(readings),
      privateKey,
      new URL(`${a.fi.baseUrl}/ap/actors/instance#main-key`),
    );
    expect((await fetch(forgedReadings)).status).toBe(401);
    // An unknown type, and a body over the limit.
    const unknown = await fetch(post({ ...follow, type: "Frobnicate" }));
    expect(unknown.status).toBeGreaterThanOrEqual(400);
    expect(unknown.status).toBeLessThan(500);
    const huge = await fetch(post({ ...follow, content: "x".repeat(2 * 1024 * 1024) }));
    expect(huge.status).toBe(413);
    expect(await followersOf(a.fi.domain)).toBe(before);
  });
});
