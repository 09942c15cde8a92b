import { randomUUID } from "node:crypto";
import type { Context } from "@fedify/fedify";
import {
  Accept,
  Add,
  Application,
  Follow,
  lookupObject,
  OrderedCollection,
  OrderedCollectionPage,
  Service,
  traverseCollection,
} from "@fedify/vocab";
import { getDocumentLoader } from "@fedify/vocab-runtime";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Database } from "../../src/db/database.ts";
import { createOutbox, OUTBOX_KEEP } from "../../src/federation/outbox.ts";
import { createTestDatabase } from "../helpers/database.ts";
import {
  device,
  eventually,
  type FedUnit,
  linkRemote,
  remoteEdge,
  type Side,
  startPair,
} from "./fed-world.ts";

// The actors' collections (outbox, followers, following) as a generic ActivityPub
// client reads them: Fedify's lookup and traversal tooling against two real instances
// on loopback (private addresses allowed here only).

const loader = getDocumentLoader({ allowPrivateAddress: true });
const opts = { documentLoader: loader, contextLoader: loader, allowPrivateAddress: true };
const AP = { accept: "application/activity+json" };

async function collection(url: URL | string | null | undefined): Promise<OrderedCollection> {
  const c = await lookupObject(String(url), opts);
  expect(c).toBeInstanceOf(OrderedCollection);
  return c as OrderedCollection;
}

async function all(url: URL | string | null | undefined) {
  const items = [];
  for await (const item of traverseCollection(await collection(url), opts)) items.push(item);
  return items;
}

describe("federation: actors' outbox, followers and following", () => {
  let pair: Awaited<ReturnType<typeof startPair>>;
  let a: Side;
  let b: Side;
  let sensor: FedUnit; // on B
  let relay: FedUnit; // on A
  let out: string;

  beforeAll(async () => {
    pair = await startPair();
    ({ a, b, sensor, relay } = pair);
    out = sensor.nodeUuid("Output", "temperature");
  });
  afterAll(async () => {
    await pair?.close();
  });

  it("the instance, a unit and an output carry inbox, outbox, followers and following", async () => {
    const base = `${b.fi.baseUrl}/ap/actors`;
    for (const [id, cls] of [
      ["instance", Application],
      [sensor.uuid, Service],
      [out, Service],
    ] as const) {
      const actor = (await lookupObject(`${base}/${id}`, opts)) as Application | Service;
      expect(actor).toBeInstanceOf(cls);
      expect(actor.inboxId?.href).toBe(`${base}/${id}/inbox`);
      expect(actor.outboxId?.href).toBe(`${base}/${id}/outbox`);
      expect(actor.followersId?.href).toBe(`${base}/${id}/followers`);
      expect(actor.followingId?.href).toBe(`${base}/${id}/following`);
      // Each dereferences to an OrderedCollection with a size and a first page.
      for (const url of [actor.outboxId, actor.followersId, actor.followingId]) {
        const res = await fetch(String(url), { headers: AP });
        expect(res.status).toBe(200);
        expect(res.headers.get("content-type")).toMatch(/activity\+json|ld\+json/);
        const json = (await res.json()) as { type: string; totalItems: number; first: string };
        expect(json.type).toBe("OrderedCollection");
        expect(typeof json.totalItems).toBe("number");
        const first = await fetch(json.first, { headers: AP });
        expect(((await first.json()) as { type: string }).type).toBe("OrderedCollectionPage");
      }
    }
  });

  it("after a follow and values: the output's outbox holds Add then Accept, followers only a count", async () => {
    const res = await linkRemote(a, `${out}@${b.fi.domain}`, relay.nodeUuid("Input", "relay"));
    expect(res.status).toBe(202);
    await eventually(async () => (await remoteEdge(a, res.body.uuid))?.status === "Active");
    const home = sensor.homeTopic("Output", "temperature");
    const devA = await device(a, relay);
    pair.open.push(devA);
    await devA.subscribeAsync(home, { qos: 1 });
    const devB = await device(b, sensor);
    pair.open.push(devB);
    for (const v of ["1", "2", "3"]) await devB.publishAsync(home, v, { qos: 1 });
    await devA.waitFor((m) => m.topic === home && m.payload.toString() === "3", 10_000);
    await b.fi.inst.deps.federation?.flush();

    const outActor = (await lookupObject(`${b.fi.baseUrl}/ap/actors/${out}`, opts)) as Service;
    // Newest first: the reading batches (one summary per output and write, so one or
    // more), then the Accept of the Follow.
    const items = await all(outActor.outboxId);
    const accept = items.pop() as Accept;
    expect(accept).toBeInstanceOf(Accept);
    // The Follow is embedded (from A's origin: a client trusts it or fetches it from A).
    const follow = await accept.getObject({ ...opts, crossOrigin: "trust" });
    expect(follow).toBeInstanceOf(Follow);
    expect((follow as Follow).objectId?.href).toBe(outActor.id?.href);
    expect(items.length).toBeGreaterThanOrEqual(1);
    let readings = 0;
    for (const add of items as Add[]) {
      expect(add).toBeInstanceOf(Add);
      expect(add.actorId?.href).toBe(`${b.fi.baseUrl}/ap/actors/instance`);
      expect(add.toIds.map((u) => u.href)).toEqual([`${a.fi.baseUrl}/ap/actors/instance`]);
      readings += Number(/^(\d+) readings/.exec(add.summary?.toString() ?? "")?.[1]);
    }
    expect(readings).toBe(3);
    expect((await collection(outActor.outboxId)).totalItems).toBe(items.length + 1);
    // The instance sent them (it signs everything): its outbox holds them too.
    const fromInstance = await all(`${b.fi.baseUrl}/ap/actors/instance/outbox`);
    expect(fromInstance.map((i) => i.id?.href)).toEqual([...items, accept].map((i) => i.id?.href));

    // Followers: how many, never who.
    const followers = await collection(outActor.followersId);
    expect(followers.totalItems).toBe(1);
    const page = await followers.getFirst(opts);
    expect(page).toBeInstanceOf(OrderedCollectionPage);
    expect(page?.itemIds).toEqual([]);
    expect(await all(outActor.followersId)).toEqual([]);
    const fromB = await collection(`${b.fi.baseUrl}/ap/actors/${sensor.uuid}/followers`);
    expect(fromB.totalItems).toBe(1);

    // Following on A: its unit's (and its instance's) remote output; the unit's Follow.
    for (const id of [relay.uuid, "instance"]) {
      const following = await collection(`${a.fi.baseUrl}/ap/actors/${id}/following`);
      expect(following.totalItems).toBe(1);
      expect((await following.getFirst(opts))?.itemIds.map((u) => u.href)).toEqual([
        outActor.id?.href,
      ]);
    }
    await a.fi.inst.deps.federation?.flush();
    const unitOutbox = await all(`${a.fi.baseUrl}/ap/actors/${relay.uuid}/outbox`);
    expect(unitOutbox.map((i) => i.constructor)).toEqual([Follow]);
    // An output follows nothing.
    expect((await collection(`${b.fi.baseUrl}/ap/actors/${out}/following`)).totalItems).toBe(0);
  });

  it("an outbox is paged, newest first", async () => {
    // Two pages' worth of Follows (of outputs that do not exist: B rejects them).
    const input = relay.nodeUuid("Input", "input/pepeunit");
    const uuids = Array.from({ length: 21 }, () => randomUUID());
    for (const u of uuids) {
      expect((await linkRemote(a, `${u}@${b.fi.domain}`, input)).status).toBe(202);
    }
    await a.fi.inst.deps.federation?.flush();
    const url = `${a.fi.baseUrl}/ap/actors/${relay.uuid}/outbox`;
    const outbox = await collection(url);
    expect(outbox.totalItems).toBe(22);
    const first = await outbox.getFirst(opts);
    expect(first?.itemIds.length).toBe(20);
    expect(first?.nextId).not.toBeNull();
    const follows = (await all(url)) as Follow[];
    expect(follows.length).toBe(22);
    const targets = follows.map((f) => f.objectId?.href.split("/").pop());
    expect(targets).toEqual([...[...uuids].reverse(), out]);
  });

  it("collections of undisclosed actors are not found; a refused peer's signed fetch is refused", async () => {
    const priv = await b.unit({ visibility: "Private" });
    for (const id of [priv.uuid, priv.nodeUuid("Output", "temperature"), randomUUID(), "nobody"]) {
      for (const c of ["outbox", "followers", "following"]) {
        const res = await fetch(`${b.fi.baseUrl}/ap/actors/${id}/${c}`, { headers: AP });
        expect(res.status).toBe(404);
      }
    }
    const blocked = await b.fi.api.request("PUT", `/admin/federation/peers/${a.fi.domain}`, {
      token: b.world.admin.token,
      body: { blocked: true },
    });
    expect(blocked.status).toBe(200);
    const signed = {
      ...AP,
      signature: `keyId="${a.fi.baseUrl}/ap/actors/instance#main-key",algorithm="rsa-sha256",headers="(request-target) host date",signature="AAAA"`,
    };
    for (const path of [out, `${out}/outbox`, `${out}/followers`, `${sensor.uuid}/following`]) {
      const url = `${b.fi.baseUrl}/ap/actors/${path}`;
      expect((await fetch(url, { headers: signed })).status).toBe(403);
      expect((await fetch(url, { headers: AP })).status).toBe(200);
    }
  });
});

describe("federation: outbox storage", () => {
  let database: Database;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database?.close();
  });
  const base = "http://pepeunit.test";
  const ctx = { documentLoader: loader, contextLoader: loader } as unknown as Context<void>;

  it("keeps the newest OUTBOX_KEEP activities per actor, newest first", async () => {
    const outbox = createOutbox(database.db, pino({ level: "silent" }), () => new URL(base));
    const n = OUTBOX_KEEP + 30;
    for (let i = 0; i < n; i++) {
      const follow = new Follow({
        id: new URL(`${base}/ap/follows/${i}`),
        actor: new URL(`${base}/ap/actors/instance`),
        object: new URL(`http://elsewhere.test/ap/actors/${i}`),
      });
      outbox.record(follow, "unit-1");
    }
    outbox.record(
      new Follow({ id: new URL(`${base}/ap/follows/other`), actor: new URL(base) }),
      "unit-2",
    );
    await outbox.flush();
    expect(await outbox.count("unit-1")).toBe(OUTBOX_KEEP);
    expect(await outbox.count("instance")).toBe(OUTBOX_KEEP);
    expect(await outbox.count("unit-2")).toBe(1);
    const ids: string[] = [];
    let before: number | null = null;
    do {
      const page: Awaited<ReturnType<typeof outbox.page>> = await outbox.page(
        ctx,
        "unit-1",
        before,
        50,
      );
      ids.push(...page.items.map((a) => a.id?.href.split("/").pop() ?? ""));
      before = page.next;
    } while (before !== null);
    expect(ids).toEqual(Array.from({ length: OUTBOX_KEEP }, (_, i) => String(n - 1 - i)));
    await outbox.stop();
  });

  it("reading batches become one Add per actor and write", async () => {
    const outbox = createOutbox(database.db, pino({ level: "silent" }), () => new URL(base));
    const v1 = new URL(`${base}/ap/actors/${randomUUID()}`);
    const v2 = new URL(`${base}/ap/actors/${randomUUID()}`);
    for (let i = 0; i < 50; i++) {
      outbox.readingsSent(new URL(`${base}/ap/activities/${i}`), "http://peer.test/ap/actors/i", [
        { variable: v1 },
        { variable: v1 },
        { variable: v2 },
      ]);
    }
    await outbox.flush();
    const id1 = v1.pathname.split("/").pop() ?? "";
    const [add] = (await outbox.page(ctx, id1, null, 10)).items as Add[];
    expect((await outbox.page(ctx, id1, null, 10)).items.length).toBe(1);
    expect(add?.id?.href).toBe(`${base}/ap/activities/49`);
    expect(add?.summary?.toString()).toBe("100 readings of this output in 50 batches");
    expect(add?.toIds.map((u) => u.href)).toEqual(["http://peer.test/ap/actors/i"]);
    await outbox.stop();
  });
});
