import { signRequest } from "@fedify/fedify";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serializeBatch } from "../../src/federation/readings.ts";
import { type Side, startSide } from "../federation/fed-world.ts";
import { type FakePeer, startFakePeer } from "../helpers/fake-peer.ts";
import { freePort } from "../helpers/ports.ts";
import { hostileBodyText, hostileString, hostileValue } from "./hostile.ts";

// The federation inboxes under signed and unsigned junk: a fake peer (an actor
// document with our own key, served from loopback) signs mutated activities, so
// the signature is valid over a broken body; other requests carry broken
// signatures and headers. Asserted: no 5xx, and the instance still federates.

const SEED = 20261130;
const BODY_MUTATIONS = 160;
const HEADER_MUTATIONS = 80;

type Json = Record<string, unknown>;

/** Sets (or deletes, for undefined) the value at a path of keys in a deep copy. */
function setAt(doc: Json, path: string[], value: unknown): Json {
  const copy = structuredClone(doc);
  let node: Json = copy;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (!next || typeof next !== "object") return copy;
    node = next as Json;
  }
  const last = path[path.length - 1] as string;
  if (value === undefined) delete node[last];
  else node[last] = value;
  return copy;
}

/** Every key path of a JSON document (objects and arrays), for mutation targets. */
function pathsOf(doc: unknown, prefix: string[] = []): string[][] {
  if (!doc || typeof doc !== "object") return [];
  return Object.entries(doc).flatMap(([k, v]) => [[...prefix, k], ...pathsOf(v, [...prefix, k])]);
}

describe("federation inbox fuzzing", () => {
  let b: Side;
  let peer: FakePeer;
  let outputActor: string;
  beforeAll(async () => {
    [b, peer] = await Promise.all([startSide(), startFakePeer()]);
    const unit = await b.unit();
    outputActor = `${b.fi.baseUrl}/ap/actors/${unit.nodeUuid("Output", "temperature")}`;
  }, 120_000);
  afterAll(async () => {
    await peer?.close();
    await b?.fi.close();
  });

  function post(path: string, body: string, headers: Record<string, string> = {}): Request {
    return new Request(`${b.fi.baseUrl}${path}`, {
      method: "POST",
      headers: { "content-type": "application/activity+json", ...headers },
      body,
    });
  }
  const sign = (req: Request, keyId = `${peer.actor}#main-key`) =>
    signRequest(req, peer.privateKey, new URL(keyId));

  async function activities(): Promise<Json[]> {
    const id = (what: string) => `${peer.origin}/${what}/${Math.random().toString(36).slice(2)}`;
    const follow = {
      "@context": "https://www.w3.org/ns/activitystreams",
      id: id("follows"),
      type: "Follow",
      actor: peer.actor,
      object: outputActor,
    };
    const batch = await serializeBatch([
      {
        variable: new URL(`${peer.origin}/variables/1`),
        payload: new TextEncoder().encode("21.5"),
        observedAt: Date.now(),
        sequence: 1,
      },
    ]);
    return [
      follow,
      { ...follow, id: id("undos"), type: "Undo", object: follow },
      { ...follow, id: id("accepts"), type: "Accept", object: `${b.fi.baseUrl}/ap/follows/x` },
      { ...follow, id: id("rejects"), type: "Reject", object: `${b.fi.baseUrl}/ap/follows/x` },
      { ...follow, id: id("deletes"), type: "Delete", object: peer.actor },
      {
        "@context": "https://www.w3.org/ns/activitystreams",
        id: id("activities"),
        type: "Add",
        actor: peer.actor,
        object: batch,
      },
      { ...follow, id: id("creates"), type: "Create", object: { type: "Note", content: "hi" } },
    ];
  }

  it("mutated signed activities and broken signatures never cause a 5xx", async () => {
    const base = await activities();
    const inboxes = ["/ap/inbox", new URL(`${outputActor}/inbox`).pathname];
    const statuses: Array<{ status: number; note: string; body: string }> = [];
    const record = async (req: Request, note: string, body: string) => {
      const res = await fetch(req);
      await res.arrayBuffer();
      statuses.push({ status: res.status, note, body: body.slice(0, 300) });
    };

    // 1. A valid signature over a mutated body.
    const bodyMutation = fc.record({
      activity: fc.constantFrom(...base),
      inbox: fc.constantFrom(...inboxes),
      how: fc.oneof(
        fc.constant({ kind: "text" as const }),
        fc.constant({ kind: "delete" as const }),
        fc.constant({ kind: "set" as const }),
      ),
      pick: fc.nat(),
      value: hostileValue,
      text: hostileBodyText,
      type: fc.oneof(hostileString, fc.constantFrom("Follow", "Undo", "Add", "Accept", "Announce")),
    });
    for (const m of fc.sample(bodyMutation, { seed: SEED, numRuns: BODY_MUTATIONS })) {
      const paths = pathsOf(m.activity);
      const target = paths[m.pick % paths.length] as string[];
      let body: string;
      if (m.how.kind === "text") body = m.text;
      else if (m.how.kind === "delete") body = JSON.stringify(setAt(m.activity, target, undefined));
      else if (target.join(".") === "type") body = JSON.stringify({ ...m.activity, type: m.type });
      else body = JSON.stringify(setAt(m.activity, target, m.value));
      await record(await sign(post(m.inbox, body)), `body ${m.how.kind} ${target.join(".")}`, body);
    }

    // 2. Broken signatures and headers around a valid activity.
    const deadPort = await freePort();
    const headerMutation = fc.record({
      activity: fc.constantFrom(...base),
      inbox: fc.constantFrom(...inboxes),
      how: fc.constantFrom(
        "garbage-signature",
        "truncated-signature",
        "key-unreachable",
        "key-not-url",
        "key-other-scheme",
        "no-date",
        "old-date",
        "bad-digest",
        "other-body",
        "text-content-type",
        "no-signature-headers",
      ),
      junk: hostileString,
    });
    for (const m of fc.sample(headerMutation, { seed: SEED + 1, numRuns: HEADER_MUTATIONS })) {
      const body = JSON.stringify(m.activity);
      const keyIds: Record<string, string> = {
        "key-unreachable": `http://127.0.0.1:${deadPort}/actor#main-key`,
        "key-not-url": "urn:x-junk:1",
        "key-other-scheme": "ftp://127.0.0.1/actor#main-key",
      };
      const signed = await sign(post(m.inbox, body), keyIds[m.how]);
      const headers = new Headers(signed.headers);
      const sig = headers.get("signature") ?? "";
      // Header values are bytes: junk outside Latin-1 or with line breaks cannot be sent at all.
      const junk = m.junk.replace(/[^\x20-\xff]/g, "?");
      if (m.how === "garbage-signature") headers.set("signature", junk);
      if (m.how === "truncated-signature") headers.set("signature", sig.slice(0, sig.length / 2));
      if (m.how === "no-date") headers.delete("date");
      if (m.how === "old-date") headers.set("date", new Date(0).toUTCString());
      if (m.how === "bad-digest") headers.set("digest", "SHA-256=AAAA");
      if (m.how === "text-content-type") headers.set("content-type", "text/plain");
      if (m.how === "no-signature-headers") headers.delete("signature");
      const sent =
        m.how === "other-body" ? JSON.stringify({ ...m.activity, id: `${peer.origin}/x` }) : body;
      let req: Request;
      try {
        req = new Request(signed.url, { method: "POST", headers, body: sent });
      } catch {
        continue; // a header value fetch itself refuses to send
      }
      await record(req, `header ${m.how}`, sent);
    }

    const errors = statuses.filter((s) => s.status >= 500);
    expect(errors).toEqual([]);
    expect(statuses.length).toBeGreaterThan(200);
    // Some got through verification and were handled (not everything refused at the door).
    expect(statuses.some((s) => s.status >= 200 && s.status < 300)).toBe(true);

    // Still healthy, and still federating: a valid signed Follow is accepted.
    expect((await fetch(`${b.fi.baseUrl}/healthz`)).status).toBe(200);
    const [follow] = await activities();
    const ok = await fetch(await sign(post(inboxes[0] as string, JSON.stringify(follow))));
    expect(ok.status).toBe(202);
  }, 240_000);
});
