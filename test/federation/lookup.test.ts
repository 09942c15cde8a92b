import { parseNodeInfo } from "@fedify/fedify";
import { Application, lookupObject, Service } from "@fedify/vocab";
import { getDocumentLoader } from "@fedify/vocab-runtime";
import { lookupWebFinger } from "@fedify/webfinger";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeUnit, makeWorld, type World, type WorldUnit } from "../broker/mqtt-helpers.ts";
import { type FedInstance, startFedInstance } from "../helpers/federation.ts";
import type { TestInstance } from "../helpers/instance.ts";

// The documents as any fediverse server sees them, read with Fedify's own lookup
// tooling against a real instance (loopback: private addresses allowed here only).

const loader = getDocumentLoader({ allowPrivateAddress: true });
const opts = { documentLoader: loader, contextLoader: loader, allowPrivateAddress: true };

describe("federation documents (actors, WebFinger, NodeInfo)", () => {
  let b: FedInstance;
  let world: World;
  let pub: WorldUnit;
  let priv: WorldUnit;

  beforeAll(async () => {
    b = await startFedInstance();
    // The broker helpers take a TestInstance; only api is used by makeWorld/makeUnit.
    const t = { api: b.api } as unknown as TestInstance;
    world = await makeWorld(t);
    pub = await makeUnit(t, world.bob.token, world.repoUuid, { name: "greenhouse" });
    priv = await makeUnit(t, world.bob.token, world.repoUuid, { visibility: "Private" });
  });
  afterAll(async () => {
    await b?.close();
  });

  it("the instance actor is an Application with a key and a shared inbox", async () => {
    const actor = await lookupObject(`${b.baseUrl}/ap/actors/instance`, opts);
    expect(actor).toBeInstanceOf(Application);
    const app = actor as Application;
    expect(app.id?.href).toBe(`${b.baseUrl}/ap/actors/instance`);
    expect(app.endpoints?.sharedInbox?.href).toBe(`${b.baseUrl}/ap/inbox`);
    const key = await app.getPublicKey(opts);
    expect(key?.ownerId?.href).toBe(app.id?.href);
  });

  it("a Public output variable is a Service actor named after its topic; its unit too", async () => {
    const out = await lookupObject(
      `${b.baseUrl}/ap/actors/${pub.nodeUuid("Output", "temperature")}`,
      opts,
    );
    expect(out).toBeInstanceOf(Service);
    expect((out as Service).name?.toString()).toBe("temperature");
    expect((out as Service).attributionId?.href).toBe(`${b.baseUrl}/ap/actors/${pub.uuid}`);
    const unit = await lookupObject(`${b.baseUrl}/ap/actors/${pub.uuid}`, opts);
    expect(unit).toBeInstanceOf(Service);
    expect((unit as Service).preferredUsername?.toString()).toBe("greenhouse");
  });

  it("keys persist: the same key after a restart", async () => {
    const url = `${b.baseUrl}/ap/actors/${pub.nodeUuid("Output", "temperature")}`;
    const before = await (await lookupObject(url, opts))?.toJsonLd();
    await b.restart();
    const after = await (await lookupObject(url, opts))?.toJsonLd();
    const pem = (j: unknown) =>
      (j as { publicKey?: { publicKeyPem?: string } }).publicKey?.publicKeyPem;
    expect(pem(before)).toMatch(/BEGIN PUBLIC KEY/);
    expect(pem(after)).toBe(pem(before));
  });

  it("WebFinger resolves acct:<variable-uuid>@domain and acct:<unit-name>@domain", async () => {
    const uuid = pub.nodeUuid("Output", "temperature");
    for (const [user, actor] of [
      [uuid, uuid],
      ["greenhouse", pub.uuid],
    ]) {
      const res = await fetch(
        `${b.baseUrl}/.well-known/webfinger?resource=${encodeURIComponent(`acct:${user}@${b.domain}`)}`,
      );
      expect(res.status).toBe(200);
      const jrd = (await res.json()) as { links: Array<{ rel: string; href?: string }> };
      expect(jrd.links.find((l) => l.rel === "self")?.href).toBe(`${b.baseUrl}/ap/actors/${actor}`);
    }
    // Fedify's client, by actor URL (acct: lookups always use https, which loopback lacks).
    const jrd = await lookupWebFinger(`${b.baseUrl}/ap/actors/${uuid}`, {
      allowPrivateAddress: true,
    });
    expect(jrd?.links?.find((l) => l.rel === "self")?.href).toBe(`${b.baseUrl}/ap/actors/${uuid}`);
  });

  it("NodeInfo 2.1 names the software, its version and the unit count", async () => {
    // getNodeInfo() refuses private addresses outright: the same two steps, parsed by Fedify.
    const wk = (await (await fetch(`${b.baseUrl}/.well-known/nodeinfo`)).json()) as {
      links: Array<{ rel: string; href: string }>;
    };
    const link = wk.links.find((l) => l.rel === "http://nodeinfo.diaspora.software/ns/schema/2.1");
    expect(link?.href).toBe(`${b.baseUrl}/nodeinfo/2.1`);
    const info = parseNodeInfo(await (await fetch(link?.href ?? "")).json());
    expect(info?.software.name).toBe("pepeunit");
    expect(info?.software.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(info?.protocols).toContain("activitypub");
    expect(info?.usage.localPosts).toBe(2);
    expect(info?.metadata?.units).toBe(2);
  });

  it("actors of non-Public entities are not disclosed (404), nor found by WebFinger", async () => {
    for (const id of [
      priv.uuid,
      priv.nodeUuid("Output", "temperature"),
      pub.nodeUuid("Input", "relay"),
    ]) {
      const res = await fetch(`${b.baseUrl}/ap/actors/${id}`, {
        headers: { accept: "application/activity+json" },
      });
      expect(res.status).toBe(404);
      expect(await lookupObject(`${b.baseUrl}/ap/actors/${id}`, opts)).toBeNull();
    }
    const wf = await fetch(
      `${b.baseUrl}/.well-known/webfinger?resource=${encodeURIComponent(`acct:${priv.json.name}@${b.domain}`)}`,
    );
    expect(wf.status).toBe(404);
  });
});
