import { type KeyCache, verifyRequest } from "@fedify/fedify";
import type { CryptographicKey, Multikey } from "@fedify/vocab";
import type { Principal } from "../access/principal.ts";
import { canManage } from "../access/visibility.ts";
import type { FederationMode } from "../db/schema.ts";
import { BodyTooLargeError, readBodyCapped } from "../http/body-limit.ts";
import { forbidden, notFound, unprocessable } from "../http/errors.ts";
import { errorText, type FederationDeps } from "./core.ts";
import {
  countsByDomain,
  deleteFollowers,
  deleteGrant,
  findGrant,
  findNodeAndUnit,
  type GrantRow,
  grantsOfNode,
  insertGrant,
  listPeers,
  setPeerFlags,
  writeSettings,
} from "./federation.store.ts";
import { buildFederation } from "./federation.ts";
import { type Follower, recheckFollowers, revokeFollowers } from "./followers.ts";
import { linkRemote, type RemoteEdge, sendUndo, unlinkRemote } from "./links.ts";
import type { DeliveryStats } from "./message-queue.ts";
import { domainOf, normalizeDomain, type PeerPolicy } from "./policy.ts";
import { parseBatch, readingsTypeOf, UnsupportedReadingFormat } from "./readings.ts";

// The federation bridge as the rest of the instance sees it: built once by the
// composition root, reacting to domain events (values, deletions, visibility
// changes), and offering the link/unlink, admin and grant operations.

type User = Extract<Principal, { kind: "user" }>;

export type PeerOut = {
  domain: string;
  blocked: boolean;
  allowed: boolean;
  last_contact_datetime: string | null;
  followers: number;
  following: number;
  delivery_errors: number;
  last_error: string | null;
  last_error_datetime: string | null;
};

export type FederationService = {
  readonly policy: PeerPolicy;
  /** The response to a federation request (ActivityPub, WebFinger, NodeInfo), or null: not ours. */
  fetch(request: Request): Promise<Response | null>;
  link(user: User, input: { output: string; inputUuid: string }): Promise<RemoteEdge>;
  /** null when no remote edge has this uuid. */
  unlink(user: User, uuid: string): Promise<RemoteEdge | null>;
  remoteEdges(): RemoteEdge[];
  /** Physical topics of active remote edges into a unit's inputs (empty while suspended). */
  remoteTopicsForSchema(unitUuid: string): Array<{ inputUuid: string; topic: string }>;
  /** Broker ACL: may this unit subscribe to this remote topic? */
  remoteTopicAllowed(unitUuid: string, topic: string): boolean;
  settings(): { enabled: boolean; mode: FederationMode };
  updateSettings(patch: { enabled?: boolean; mode?: FederationMode }): Promise<void>;
  peers(): Promise<PeerOut[]>;
  setPeer(domain: string, flags: { blocked?: boolean; allowed?: boolean }): Promise<PeerOut>;
  grants(user: User, nodeUuid: string): Promise<GrantRow[]>;
  grant(user: User, nodeUuid: string, grantee: string): Promise<GrantRow>;
  revokeGrant(user: User, uuid: string): Promise<void>;
  /** Sends pending readings now (tests, bench). */
  flush(): Promise<void>;
  /** Delivery outcomes since start (read by src/metrics/). */
  readonly deliveryStats: DeliveryStats;
  /** The delivery queue consumer: the "federation-queue" role (one process of a cluster). */
  startQueue(): void;
  stopQueue(): Promise<void>;
  stop(): Promise<void>;
};

export async function createFederationService(deps: FederationDeps): Promise<FederationService> {
  const parts = await buildFederation(deps);
  const { core, fed, followers, links, relay } = parts;
  const { events, log, config } = deps;
  const db = core.db;
  const policy = core.policy;
  await followers.load(core);
  await links.load(core);
  await core.keys.pairsOf("instance");
  // Cluster mode: a Follow or a remote link accepted by another process reaches this
  // one's relay and access checks by a reload (the bridged events below).
  followers.onChange = () => events.emit("federation.followers-changed", { node: config.nodeName });

  const usable = (domain: string) => policy.decide(domain).ok;
  const changed = (unitUuids: Iterable<string>) => {
    const list = [...new Set(unitUuids)];
    if (list.length) events.emit("federation.remote-edges.changed", { unitUuids: list });
  };
  const unitsWithActiveEdges = (filter: (e: RemoteEdge) => boolean = () => true) =>
    links
      .all()
      .filter((e) => e.status === "Active" && filter(e))
      .map((e) => e.inputUnitUuid);

  // Listeners run inside the emitting code: never throw into it.
  const safe =
    <A extends unknown[]>(what: string, fn: (...a: A) => Promise<void> | void) =>
    (...a: A) => {
      try {
        const r = fn(...a);
        if (r)
          r.catch((err: unknown) =>
            log.error({ err: errorText(err) }, `federation: ${what} failed`),
          );
      } catch (err) {
        log.error({ err: errorText(err) }, `federation: ${what} failed`);
      }
    };

  const onValue = safe("relaying a value", (e: { nodeUuid: string; payload: Buffer }) =>
    relay.push(e.nodeUuid, e.payload),
  );
  const removeFor = async (
    gone: (f: Follower) => boolean,
    goneEdge: (e: RemoteEdge) => boolean,
    reason: string,
  ) => {
    // Home side: followers of outputs that are gone hear about it.
    await revokeFollowers(core, followers, followers.all().filter(gone), reason);
    // Following side: our edges whose input is gone (rows already cascaded away).
    const edges = links.all().filter(goneEdge);
    for (const e of edges) links.remove(e.uuid);
    await sendUndo(core, edges);
  };
  const onNodesChanged = safe(
    "cleaning up removed variables",
    async (e: { unitUuid: string; removed: string[] }) => {
      if (!e.removed.length) return;
      const removed = new Set(e.removed);
      await removeFor(
        (f) => removed.has(f.nodeUuid),
        (x) => removed.has(x.inputUuid),
        "the output variable was deleted",
      );
    },
  );
  const onUnitDeleted = safe("cleaning up a deleted unit", async (e: { unitUuid: string }) => {
    await removeFor(
      (f) => f.unitUuid === e.unitUuid,
      (x) => x.inputUnitUuid === e.unitUuid,
      "the output's unit was deleted",
    );
  });
  const onUnitUpdated = safe("re-checking followers", async (e: { unitUuid: string }) => {
    const nodes = followers
      .all()
      .filter((f) => f.unitUuid === e.unitUuid)
      .map((f) => f.nodeUuid);
    await recheckFollowers(core, followers, new Set(nodes));
  });
  // Revoking followers sends activities: the process where the change happened does it.
  const here =
    <E extends object>(fn: (e: E) => void) =>
    (e: E) => {
      if (!events.fromOtherProcess(e)) fn(e);
    };
  const onNodesChangedHere = here(onNodesChanged);
  const onUnitDeletedHere = here(onUnitDeleted);
  const onUnitUpdatedHere = here(onUnitUpdated);
  const onFollowersChanged = safe("reloading followers", async (e: object) => {
    if (events.fromOtherProcess(e)) await followers.load(core);
  });
  const onRemoteEdgesChanged = safe("reloading remote links", async (e: object) => {
    if (events.fromOtherProcess(e)) await links.load(core);
  });
  events.on("unit-node.value", onValue);
  events.on("unit-nodes.changed", onNodesChangedHere);
  events.on("unit.deleted", onUnitDeletedHere);
  events.on("unit.updated", onUnitUpdatedHere);
  events.on("unit-node.updated", onUnitUpdatedHere);
  events.on("federation.followers-changed", onFollowersChanged);
  events.on("federation.remote-edges.changed", onRemoteEdgesChanged);

  let queue: { ac: AbortController; done: Promise<void> } | null = null;
  async function stopQueue() {
    const q = queue;
    queue = null;
    q?.ac.abort();
    await q?.done;
  }
  const FALLTHROUGH = new Response(null, { status: 599 });
  const FED_PATH = /^\/(ap\/|\.well-known\/(webfinger|nodeinfo)|nodeinfo\/)/;
  const notFoundJson = () =>
    new Response(JSON.stringify({ detail: "not found" }), {
      status: 404,
      headers: { "content-type": "application/json" },
    });

  /**
   * A request signed by a peer we refuse is refused before its keys are fetched (keyId
   * names its origin): deliveries, and signed fetches of actors and their collections
   * (an unsigned fetch of a disclosed actor or collection is answered as before).
   */
  function refusedSigner(request: Request): Response | null {
    const sig = `${request.headers.get("signature") ?? ""} ${request.headers.get("signature-input") ?? ""}`;
    const keyId = /keyid="([^"]+)"/i.exec(sig)?.[1];
    if (!keyId) return null;
    try {
      const d = policy.decide(domainOf(keyId));
      return d.ok ? null : new Response(d.reason, { status: 403 });
    } catch {
      return new Response("Bad signature key id.", { status: 401 });
    }
  }

  async function checkInbound(request: Request): Promise<Response | Request> {
    // Size limit before anything is parsed or verified.
    // A chunked body is counted as it streams and abandoned past the limit.
    let body: Uint8Array<ArrayBuffer>;
    try {
      body = await readBodyCapped(request, config.federationMaxInboxBytes);
    } catch (err) {
      if (err instanceof BodyTooLargeError)
        return new Response("Activity too large.", { status: 413 });
      throw err;
    }
    const refused = refusedSigner(request);
    if (refused) return refused;
    return new Request(request.url, { method: request.method, headers: request.headers, body });
  }

  // Verified keys of peers' actors, for the readings path (an hour at most).
  const keyCache = new Map<string, { key: CryptographicKey | Multikey | null; at: number }>();
  const keyCacheStore: KeyCache = {
    async get(keyId) {
      const hit = keyCache.get(keyId.href);
      return hit && Date.now() - hit.at < 3600_000 ? hit.key : undefined;
    },
    async set(keyId, key) {
      if (keyCache.size > 10_000) keyCache.clear();
      keyCache.set(keyId.href, { key, at: Date.now() });
    },
  };

  /**
   * Readings (an Add of a ReadingBatch or ReadingTable to an inbox) are the bulk of the traffic: they
   * are verified here with Fedify's HTTP Signatures check and parsed once by the
   * generated vocabulary classes, instead of going through Fedify's generic inbox
   * (which expands the whole JSON-LD document twice). Same rules: signed by the
   * actor's own key, actor and activity on one origin, peer allowed. Anything else
   * is left to Fedify (null).
   */
  async function readingsFastPath(request: Request): Promise<Response | null> {
    const path = new URL(request.url).pathname;
    if (!/^\/ap\/(inbox|actors\/[^/]+\/inbox)$/.test(path)) return null;
    let json: Record<string, unknown>;
    try {
      json = (await request.clone().json()) as Record<string, unknown>;
    } catch {
      return null;
    }
    if (!json || typeof json !== "object" || Array.isArray(json)) return null; // e.g. `null`
    if (json.type !== "Add" || !readingsTypeOf(json)) return null;
    const ctx = core.ctx();
    const key = await verifyRequest(request, {
      documentLoader: ctx.documentLoader,
      contextLoader: ctx.contextLoader,
      keyCache: keyCacheStore,
    });
    if (!key) return new Response("Failed to verify the request signature.", { status: 401 });
    let actor: URL;
    let id: URL;
    try {
      actor = new URL(String(json.actor));
      id = new URL(String(json.id));
    } catch {
      return new Response("Invalid activity.", { status: 400 });
    }
    if (key.ownerId?.href !== actor.href) {
      return new Response("The signer and the actor do not match.", { status: 401 });
    }
    if (id.origin !== actor.origin) return new Response("", { status: 202 }); // ignored
    const d = policy.decide(domainOf(actor));
    if (!d.ok) return new Response(d.reason, { status: 403 });
    let readings: Awaited<ReturnType<typeof parseBatch>>;
    try {
      readings = await parseBatch(json);
    } catch (err) {
      // Not acknowledged: the sender keeps the readings (and may send them in format 1).
      if (err instanceof UnsupportedReadingFormat)
        return new Response(err.message, { status: 422 });
      throw err;
    }
    // A large batch is answered before all of it is republished (relay.ts, "In").
    if (readings) await relay.apply(readings, actor.origin).accepted;
    return new Response("", { status: 202 });
  }

  const toPeerOut = async (): Promise<PeerOut[]> => {
    const [rows, counts] = await Promise.all([listPeers(db), countsByDomain(db)]);
    const domains = new Set([
      ...rows.map((r) => r.domain),
      ...counts.followers.keys(),
      ...counts.following.keys(),
    ]);
    return [...domains].sort().map((domain) => {
      const r = rows.find((x) => x.domain === domain);
      return {
        domain,
        blocked: r?.blocked ?? false,
        allowed: r?.allowed ?? false,
        last_contact_datetime: r?.lastContactAt?.toISOString() ?? null,
        followers: counts.followers.get(domain) ?? 0,
        following: counts.following.get(domain) ?? 0,
        delivery_errors: r?.deliveryErrors ?? 0,
        last_error: r?.lastError ?? null,
        last_error_datetime: r?.lastErrorAt?.toISOString() ?? null,
      };
    });
  };

  async function ownedOutput(user: User, nodeUuid: string) {
    const found = await findNodeAndUnit(db, nodeUuid);
    if (!found || !canManage(user, found.unit.creatorUuid)) throw notFound("output");
    if (found.node.type !== "Output") throw unprocessable("grants are for Output variables");
    return found;
  }

  return {
    deliveryStats: parts.queue.stats,
    policy,

    async fetch(request) {
      const url = new URL(request.url);
      if (!FED_PATH.test(url.pathname)) return null;
      if (!policy.settings.enabled) return notFoundJson(); // off: no ActivityPub endpoints
      let req = request;
      if (request.method === "POST") {
        const checked = await checkInbound(request);
        if (checked instanceof Response) return checked;
        req = checked;
        const fast = await readingsFastPath(req);
        if (fast) return fast;
      } else {
        const refused = refusedSigner(request);
        if (refused) return refused;
      }
      let res: Response;
      try {
        res = await fed.fetch(req, {
          contextData: undefined,
          onNotFound: () => notFoundJson(),
          // A browser asking for HTML: let the web UI answer.
          onNotAcceptable: () => FALLTHROUGH,
        });
      } catch (err) {
        // Fedify's inbox expands the activity as JSON-LD and lets a document it cannot
        // expand (an "@context" that is no URL, an unknown one) throw: the peer's error.
        if (err instanceof Error && err.name.startsWith("jsonld.")) {
          return new Response("Invalid activity (JSON-LD).", { status: 400 });
        }
        throw err;
      }
      return res === FALLTHROUGH ? null : res;
    },

    link: (user, input) => linkRemote(core, links, user, input),
    async unlink(user, uuid) {
      const e = await unlinkRemote(core, links, user, uuid);
      if (e?.status === "Active") changed([e.inputUnitUuid]);
      return e;
    },
    remoteEdges: () => links.all(),

    remoteTopicsForSchema(unitUuid) {
      if (!policy.settings.enabled) return [];
      return links
        .activeInto(unitUuid, usable)
        .map((e) => ({ inputUuid: e.inputUuid, topic: e.remoteTopic as string }));
    },

    remoteTopicAllowed(unitUuid, topic) {
      if (!policy.settings.enabled) return false;
      return links.hasActiveTopic(unitUuid, topic, usable);
    },

    settings: () => ({ ...policy.settings }),

    async updateSettings(patch) {
      const before = { ...policy.settings };
      const next = { ...before, ...patch };
      await writeSettings(db, next);
      policy.settings = next;
      // Remote edges are suspended while off (or their peers no longer allowed) and
      // restored after: units get the changed schema either way.
      if (before.enabled !== next.enabled || before.mode !== next.mode)
        changed(unitsWithActiveEdges());
      if (next.enabled && next.mode === "AllowList" && before.mode !== "AllowList") {
        await revokeFollowers(
          core,
          followers,
          followers.all().filter((f) => !usable(f.domain)),
          "instance not on the allow-list",
        );
      }
    },

    peers: toPeerOut,

    async setPeer(domainIn, flags) {
      const domain = normalizeDomain(domainIn);
      if (!domain) throw unprocessable("domain must be host or host:port");
      const row = await setPeerFlags(db, domain, flags);
      policy.putPeer(row);
      if (row.blocked || (policy.settings.mode === "AllowList" && !row.allowed)) {
        // Their follows of our outputs are dropped at once, silently for a blocked peer.
        const theirs = followers.all().filter((f) => f.domain === domain);
        for (const f of theirs) followers.remove(f.followId);
        await deleteFollowers(
          db,
          theirs.map((f) => f.followId),
        );
      }
      changed(unitsWithActiveEdges((e) => e.domain === domain));
      const out = (await toPeerOut()).find((p) => p.domain === domain);
      if (!out) throw new Error("peer vanished");
      return out;
    },

    async grants(user, nodeUuid) {
      await ownedOutput(user, nodeUuid);
      return grantsOfNode(db, nodeUuid);
    },

    async grant(user, nodeUuid, grantee) {
      await ownedOutput(user, nodeUuid);
      // A domain, a remote unit as <uuid>@<domain>, or a remote unit's actor URL.
      let domain: string | null;
      let actor: string | null = null;
      const m = /^([0-9a-f-]{36})@(.+)$/i.exec(grantee.trim());
      if (m?.[1] && m[2]) {
        domain = normalizeDomain(m[2]);
        if (domain) actor = `${config.httpType}://${domain}/ap/actors/${m[1].toLowerCase()}`;
      } else if (/^https?:\/\//.test(grantee)) {
        try {
          actor = new URL(grantee).href;
          domain = domainOf(grantee);
        } catch {
          domain = null;
        }
      } else {
        domain = normalizeDomain(grantee);
      }
      if (!domain)
        throw unprocessable("grantee must be a domain, <unit-uuid>@<domain> or an actor URL");
      return insertGrant(db, { nodeUuid, domain, actor, creatorUuid: user.uuid });
    },

    async revokeGrant(user, uuid) {
      const g = await findGrant(db, uuid);
      if (!g) throw notFound("grant");
      const found = await findNodeAndUnit(db, g.nodeUuid);
      if (!found || !canManage(user, found.unit.creatorUuid)) {
        if (found) throw forbidden("only the output's owner (or an admin) may revoke its grants");
        throw notFound("grant");
      }
      await deleteGrant(db, uuid);
      await recheckFollowers(core, followers, [g.nodeUuid]);
    },

    async flush() {
      await relay.flush();
      await core.outbox.flush();
    },

    startQueue() {
      if (queue) return;
      const ac = new AbortController();
      const done = fed
        .startQueue(undefined, { signal: ac.signal, queue: "outbox" })
        .catch((err: unknown) => {
          log.error({ err: errorText(err) }, "federation: queue worker stopped");
        });
      // Old cache entries and idempotence keys go away now and then.
      const prune = setInterval(() => void parts.kv.prune().catch(() => {}), 10 * 60_000);
      prune.unref();
      ac.signal.addEventListener("abort", () => clearInterval(prune));
      queue = { ac, done };
    },

    stopQueue,

    async stop() {
      events.off("unit-node.value", onValue);
      events.off("unit-nodes.changed", onNodesChangedHere);
      events.off("unit.deleted", onUnitDeletedHere);
      events.off("unit.updated", onUnitUpdatedHere);
      events.off("unit-node.updated", onUnitUpdatedHere);
      events.off("federation.followers-changed", onFollowersChanged);
      events.off("federation.remote-edges.changed", onRemoteEdgesChanged);
      await relay.stop();
      await core.outbox.stop();
      await stopQueue();
    },
  };
}
