import { createPublicKey } from "node:crypto";
import { signRequest } from "@fedify/fedify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serializeTable } from "../../src/federation/readings.ts";
import type { TestClient } from "../broker/mqtt-helpers.ts";
import { type FakePeer, startFakePeer } from "../helpers/fake-peer.ts";
import {
  device,
  eventually,
  type FedUnit,
  linkRemote,
  remoteEdge,
  type Side,
  startSide,
} from "./fed-world.ts";

// Readings formats between instances: format 2 (one ReadingTable node per batch)
// between instances that both read it, format 1 (a Reading node per reading) with
// an instance that does not announce 2 (PEPEUNIT_FEDERATION_READING_FORMAT=1 makes
// one behave as instances before format 2 did), and a format version nobody
// knows refused with a 422 that says why. Values keep their order per output and
// none is lost in a burst.

type Sent = {
  from: string;
  to: string;
  objectType: unknown;
  keyId: string | undefined;
  /** Readings in a ReadingTable (format 2). */
  readings: number | null;
};

describe("federation readings formats", () => {
  let a: Side; // new
  let b: Side; // new
  let old: Side; // reads and sends format 1 only
  let peer: FakePeer;
  const open: TestClient[] = [];
  const sent: Sent[] = [];
  const realFetch = globalThis.fetch;
  /** While set, readings activities from this host wait here before they are POSTed. */
  let hold: { from: string; until: Promise<void> } | null = null;
  const env = { PEPEUNIT_MQTT_MAX_MSG_PER_S: "100000" };

  beforeAll(async () => {
    [a, b, old, peer] = await Promise.all([
      startSide(env),
      startSide(env),
      startSide({ ...env, PEPEUNIT_FEDERATION_READING_FORMAT: "1" }),
      startFakePeer(),
    ]);
    // The instances run in this process: their outgoing activities pass through here.
    globalThis.fetch = async (input, init) => {
      const req = input instanceof Request ? input : null;
      if (req?.method === "POST" && req.url.endsWith("/inbox")) {
        const json = (await req.clone().json()) as {
          actor?: string;
          object?: { type?: unknown; readingColumns?: unknown };
        };
        if (json.object?.type) {
          const from = new URL(String(json.actor)).host;
          const columns = json.object.readingColumns;
          sent.push({
            from,
            to: new URL(req.url).host,
            objectType: json.object.type,
            keyId: /keyId="([^"]+)"/.exec(req.headers.get("signature") ?? "")?.[1],
            readings:
              typeof columns === "string"
                ? (JSON.parse(columns) as { sequence: unknown[] }).sequence.length
                : null,
          });
          if (hold?.from === from) await hold.until;
        }
      }
      return realFetch(input, init);
    };
  }, 120_000);
  afterAll(async () => {
    globalThis.fetch = realFetch;
    await Promise.all(open.map((c) => c.endAsync(true)));
    await Promise.all([a?.fi.close(), b?.fi.close(), old?.fi.close(), peer?.close()]);
  });

  /** `follower` follows `home`'s output; a device on each side; the home topic. */
  async function follow(follower: Side, home: Side) {
    const sensor: FedUnit = await home.unit();
    const listener: FedUnit = await follower.unit();
    const out = sensor.nodeUuid("Output", "temperature");
    const res = await linkRemote(
      follower,
      `${out}@${home.fi.domain}`,
      listener.nodeUuid("Input", "relay"),
    );
    expect(res.status).toBe(202);
    await eventually(async () => (await remoteEdge(follower, res.body.uuid))?.status === "Active");
    const topic = sensor.homeTopic("Output", "temperature");
    const devIn = await device(follower, listener);
    const devOut = await device(home, sensor);
    open.push(devIn, devOut);
    await devIn.subscribeAsync(topic, { qos: 1 });
    return { topic, devIn, devOut };
  }

  /** Publishes `n` numbered values at once and waits for all of them on the follower. */
  async function burst(link: Awaited<ReturnType<typeof follow>>, n: number, tag: string) {
    for (let i = 0; i < n; i++) link.devOut.publish(link.topic, `${tag}:${i}`, { qos: 0 });
    return eventually(() => {
      const got = link.devIn.received
        .filter((m) => m.topic === link.topic && m.payload.toString().startsWith(`${tag}:`))
        .map((m) => Number(m.payload.toString().slice(tag.length + 1)));
      return got.length >= n && got;
    }, 30_000);
  }

  const sequence = (n: number) => Array.from({ length: n }, (_, i) => i);

  it("between two new instances readings travel as ReadingTables, in order, none lost", async () => {
    const link = await follow(a, b);
    // The first readings may leave in format 1 while B reads A's NodeInfo.
    await burst(link, 1, "warm");
    await eventually(async () => {
      await burst(link, 1, `probe${sent.length}`);
      return sent.some((s) => s.from === b.fi.domain && String(s.objectType).includes("Table"));
    });
    const before = sent.length;
    const queued = () => b.fi.inst.deps.federation?.deliveryStats.delivered ?? -1;
    const queuedBefore = queued();
    expect(await burst(link, 3000, "burst")).toEqual(sequence(3000));
    const batches = sent.slice(before).filter((s) => s.from === b.fi.domain);
    // A reachable peer with nothing queued gets them straight from memory, not via the queue.
    expect(queued()).toBe(queuedBefore);
    expect(batches.length).toBeGreaterThan(0);
    expect(batches.length).toBeLessThan(3000); // batched
    for (const s of batches) expect(s.objectType).toEqual(["Object", "ReadingTable"]);
    // Signed with the instance's readings key (src/federation/keys.ts): RSA of 2 048 bits,
    // one of the keys its actor lists, so any peer verifies it.
    const keyId = `${b.fi.baseUrl}/ap/actors/instance#key-3`;
    for (const s of batches) expect(s.keyId).toBe(keyId);
    const actor = (await (
      await realFetch(`${b.fi.baseUrl}/ap/actors/instance`, {
        headers: { accept: "application/activity+json" },
      })
    ).json()) as { publicKey: Array<{ id: string; publicKeyPem: string }> };
    const listed = actor.publicKey.find((k) => k.id === keyId);
    expect(listed).toBeDefined();
    const details = createPublicKey(listed?.publicKeyPem ?? "").asymmetricKeyDetails;
    expect(details?.modulusLength).toBe(2048);
  });

  it("a batch leaves once its oldest reading has waited PEPEUNIT_FEDERATION_BATCH_MS, however fast the peer answers", async () => {
    const paced = await startSide({ ...env, PEPEUNIT_FEDERATION_BATCH_MS: "100" });
    try {
      const link = await follow(a, paced);
      await burst(link, 1, "warmPaced");
      const before = sent.length;
      // A value every 10 ms for a second: a peer that answers within 10 ms would otherwise
      // get an activity (a signature to make and check) for nearly every value.
      for (let i = 0; i < 100; i++) {
        link.devOut.publish(link.topic, `paced:${i}`, { qos: 0 });
        await new Promise((r) => setTimeout(r, 10));
      }
      const got = await eventually(() => {
        const values = link.devIn.received
          .filter((m) => m.topic === link.topic && m.payload.toString().startsWith("paced:"))
          .map((m) => Number(m.payload.toString().slice("paced:".length)));
        return values.length >= 100 && values;
      }, 30_000);
      expect(got).toEqual(sequence(100));
      const activities = sent.slice(before).filter((s) => s.from === paced.fi.domain).length;
      // About 1 s of values at one activity per 100 ms (and a little slack for a slow machine).
      expect(activities).toBeGreaterThan(0);
      expect(activities).toBeLessThanOrEqual(15);
    } finally {
      await paced.fi.close();
    }
  });

  it("while the peer holds an activity, a backlog is built into the next one meanwhile; none lost, in order", async () => {
    const link = await follow(a, b);
    await burst(link, 1, "warmAhead");
    let release = () => {};
    hold = { from: b.fi.domain, until: new Promise<void>((r) => (release = r)) };
    const before = sent.length;
    try {
      link.devOut.publish(link.topic, "ahead:first", { qos: 0 });
      // The first activity is on its way (held): what follows waits for the window.
      await eventually(() => sent.length > before, 10_000);
      for (let i = 0; i < 1500; i++) link.devOut.publish(link.topic, `ahead:${i}`, { qos: 0 });
      // Everything reached B's relay (a ping round trip after the publishes), well before
      // its 2 s safety net would send a batch whatever the window.
      await link.devOut.publishAsync(link.topic, "ahead:last", { qos: 1 });
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      hold = null;
      release();
    }
    const got = await eventually(() => {
      const values = link.devIn.received
        .map((m) => m.payload.toString())
        .filter((v) => /^ahead:\d+$/.test(v))
        .map((v) => Number(v.slice("ahead:".length)));
      return values.length >= 1500 && values;
    }, 30_000);
    expect(got).toEqual(sequence(1500));
    const batches = sent.slice(before).filter((s) => s.from === b.fi.domain);
    const counts = batches.map((s) => s.readings ?? 0);
    expect(counts.reduce((x, y) => x + y, 0)).toBe(1502);
    // Held: one reading. Built meanwhile: the backlog as it stood once it was worth an
    // activity, not the whole backlog (under one activity's maximum), which followed once
    // the held one was answered.
    expect(counts[0]).toBe(1);
    expect(counts.length).toBeGreaterThanOrEqual(3);
    expect(counts[1]).toBeLessThan(1501);
  });

  it("an instance that does not announce format 2 gets format 1 (ReadingBatch)", async () => {
    const link = await follow(old, b);
    const before = sent.length;
    expect(await burst(link, 500, "toOld")).toEqual(sequence(500));
    const batches = sent.slice(before).filter((s) => s.to === old.fi.domain);
    expect(batches.length).toBeGreaterThan(0);
    for (const s of batches) expect(s.objectType).toEqual(["Object", "ReadingBatch"]);
  });

  it("format 1 from an older instance is still received, in order", async () => {
    const link = await follow(a, old);
    const before = sent.length;
    expect(await burst(link, 500, "fromOld")).toEqual(sequence(500));
    const batches = sent.slice(before).filter((s) => s.from === old.fi.domain);
    expect(batches.length).toBeGreaterThan(0);
    for (const s of batches) expect(s.objectType).toEqual(["Object", "ReadingBatch"]);
  });

  it("a ReadingTable of an unknown format version is refused with a 422 that says why", async () => {
    const object = await serializeTable([
      {
        variable: new URL(`${peer.origin}/variables/1`),
        payload: new TextEncoder().encode("21.5"),
        observedAt: Date.now(),
        sequence: 1,
      },
    ]);
    const post = async (formatVersion: number) => {
      const activity = {
        "@context": "https://www.w3.org/ns/activitystreams",
        id: `${peer.origin}/activities/${formatVersion}-${Math.random()}`,
        type: "Add",
        actor: peer.actor,
        object: { ...object, formatVersion },
      };
      const req = await signRequest(
        new Request(`${a.fi.baseUrl}/ap/inbox`, {
          method: "POST",
          headers: { "content-type": "application/activity+json" },
          body: JSON.stringify(activity),
        }),
        peer.privateKey,
        new URL(`${peer.actor}#main-key`),
      );
      const res = await realFetch(req);
      return { status: res.status, text: await res.text() };
    };
    const refused = await post(3);
    expect(refused.status).toBe(422);
    expect(refused.text).toContain("formatVersion 3 is not supported");
    expect(refused.text).toContain("1, 2");
    // Format 2 itself is accepted (202: readings of a variable nobody follows are ignored).
    expect((await post(2)).status).toBe(202);
  });

  it("NodeInfo announces the formats an instance reads", async () => {
    const info = async (s: Side) => {
      const wk = (await (await realFetch(`${s.fi.baseUrl}/.well-known/nodeinfo`)).json()) as {
        links: Array<{ href: string }>;
      };
      const doc = (await (await realFetch(wk.links[0]?.href ?? "")).json()) as {
        metadata: { readingFormats: number[] };
      };
      return doc.metadata.readingFormats;
    };
    expect(await info(a)).toEqual([1, 2]);
    expect(await info(old)).toEqual([1]);
  });
});
