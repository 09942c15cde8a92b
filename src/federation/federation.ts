import {
  type Context,
  createFederation,
  type Federation,
  type InboxContext,
  SendActivityError,
  type SenderKeyPair,
} from "@fedify/fedify";
import type { Activity } from "@fedify/vocab";
import {
  Accept,
  Add,
  Application,
  Object as ASObject,
  Delete,
  Endpoints,
  Follow,
  isActor,
  Reject,
  Service,
  Undo,
} from "@fedify/vocab";
import { getDocumentLoader, preloadedContexts } from "@fedify/vocab-runtime";
import { packageVersion } from "../project-root.ts";
import { variableTopic } from "../units/unit-schema.ts";
import { disclosedActor, UUID_RE } from "./actors.ts";
import { setCollectionDispatchers } from "./collections.ts";
import {
  type Core,
  errorText,
  type FederationDeps,
  INSTANCE_ACTOR,
  newActivityId,
  PEER_ORDERING_KEY,
} from "./core.ts";
import {
  countUnits,
  deleteFollowers,
  findNodeAndUnit,
  findUnit,
  recordPeerError,
  touchPeer,
} from "./federation.store.ts";
import { decideFollow, FollowerRegistry, saveFollower } from "./followers.ts";
import { createKeyStore } from "./keys.ts";
import { DrizzleKvStore } from "./kv-store.ts";
import { activateRemote, isHomeTopic, RemoteEdgeRegistry, rejectRemote } from "./links.ts";
import { DrizzleMessageQueue } from "./message-queue.ts";
import { createOutbox } from "./outbox.ts";
import { domainOf, PeerPolicy } from "./policy.ts";
import { parseBatch, READING_FORMATS, UnsupportedReadingFormat } from "./readings.ts";
import { createRelay, READINGS_MESSAGE, type Relay } from "./relay.ts";

// The Fedify federation object of this instance: actors (the instance as an
// Application, Public units and Public output variables as Services, each with
// persisted keys, an outbox, followers and following: collections.ts), WebFinger,
// NodeInfo 2.1, and the inbox listeners. Everything
// server-to-server is signed by the instance actor (units and variables that are
// not Public have no disclosed actor document, so they could not be verified).

const VERSION = packageVersion();

export type FederationParts = {
  core: Core;
  fed: Federation<void>;
  queue: DrizzleMessageQueue;
  kv: DrizzleKvStore;
  followers: FollowerRegistry;
  links: RemoteEdgeRegistry;
  relay: Relay;
};

export async function buildFederation(deps: FederationDeps): Promise<FederationParts> {
  const { config, log } = deps;
  const db = deps.database.db;
  const policy = new PeerPolicy({
    allowLocal: config.federationAllowLocal,
    ownDomain: config.domain,
  });
  await policy.load(db);
  const keys = createKeyStore(db, config.encryptKey);
  const kv = new DrizzleKvStore(db);
  const followers = new FollowerRegistry();
  const links = new RemoteEdgeRegistry();

  // Built once the queue and the core exist; the queue's callbacks reach it through this.
  let relay: Relay = undefined as unknown as Relay;
  const lastTouched = new Map<string, number>();
  /** Last contact per peer, written at most every 5 s per peer. */
  const touch = (domain: string) => {
    const now = Date.now();
    if (now - (lastTouched.get(domain) ?? 0) < 5000) return;
    lastTouched.set(domain, now);
    touchPeer(db, domain).catch(() => {});
  };
  const inboxDomain = (message: unknown): string | null => {
    const m = message as { type?: string; inbox?: string } | null;
    if ((m?.type !== "outbox" && m?.type !== READINGS_MESSAGE) || !m.inbox) return null;
    try {
      return domainOf(m.inbox);
    } catch {
      return null;
    }
  };

  const queue = new DrizzleMessageQueue({
    db,
    encryptKey: config.encryptKey,
    log,
    retryBaseMs: Math.min(1000, config.federationRetryMaxMs),
    retryMaxMs: config.federationRetryMaxMs,
    gate(message) {
      if (!policy.settings.enabled) return "hold"; // federation off: kept for when it is back on
      const domain = inboxDomain(message);
      if (domain && !policy.decide(domain).ok) return "drop"; // blocked since it was queued
      return "run";
    },
    onHandled(message, error) {
      const domain = inboxDomain(message);
      if (!domain) return;
      if (error) recordPeerError(db, domain, errorText(error)).catch(() => {});
      else touch(domain);
    },
    onDone: (message) => relay.done(message),
    onEnqueue: (orderingKey) => relay.enqueued(orderingKey),
    storePlain: (message) => (message as { type?: string } | null)?.type === READINGS_MESSAGE,
    handlers: { [READINGS_MESSAGE]: (message) => relay.deliver(message) },
  });

  const fed = createFederation<void>({
    kv,
    queue: { outbox: queue },
    manuallyStartQueue: true,
    origin: config.baseUrl,
    allowPrivateAddress: config.federationAllowLocal,
    // Our queue retries in place (in order); a circuit breaker would drop or reorder.
    circuitBreaker: false,
    // Every activity we send has its id and actor URIs set already; the default
    // transformers would clone ReadingsAdd into a plain Add and lose its readings.
    activityTransformers: [],
    // A peer that refuses us (blocked, not allow-listed: 403) is not asked again.
    permanentFailureStatusCodes: [403, 404, 410],
    onOutboxError(error, activity) {
      if (!(error instanceof SendActivityError)) return;
      const domain = domainOf(error.inbox);
      recordPeerError(db, domain, `HTTP ${error.statusCode}`).catch(() => {});
      // A refused Follow is a Reject: the pending edge keeps the peer's reason.
      if (error.statusCode === 403 && activity instanceof Follow && activity.id) {
        const edge = links.byFollow(activity.id.href);
        const reason = `refused by ${domain}: ${error.responseBody.slice(0, 200) || "HTTP 403"}`;
        if (edge) rejectRemote(core, links, edge, reason).catch(() => {});
      }
    },
  });

  let instanceRsa: Promise<SenderKeyPair> | null = null;
  const outbox = createOutbox(db, log, () => core.instanceUri());
  const core: Core = {
    deps,
    db,
    log,
    fed,
    policy,
    keys,
    outbox,
    ctx: () => fed.createContext(new URL(config.baseUrl), undefined),
    instanceUri: () =>
      fed.createContext(new URL(config.baseUrl), undefined).getActorUri(INSTANCE_ACTOR),
    instanceRsaSender() {
      instanceRsa ??= (async () => {
        // Fedify's view of the pairs carries the key ids; the readings pair is one of them.
        const readings = await keys.readingsPair();
        const pairs = await core.ctx().getActorKeyPairs(INSTANCE_ACTOR);
        const rsa = pairs.find((p) => p.privateKey === readings.privateKey);
        if (!rsa) throw new Error("the instance actor has no readings key");
        return { keyId: rsa.keyId, privateKey: rsa.privateKey };
      })();
      return instanceRsa;
    },
  };
  relay = createRelay(core, followers, links, () => queue, config.federationBatchMs);

  // --- actors, keys, WebFinger ---
  fed
    .setActorDispatcher("/ap/actors/{identifier}", async (ctx, identifier) => {
      const common = async () => {
        const pairs = await ctx.getActorKeyPairs(identifier);
        return {
          id: ctx.getActorUri(identifier),
          inbox: ctx.getInboxUri(identifier),
          outbox: ctx.getOutboxUri(identifier),
          followers: ctx.getFollowersUri(identifier),
          following: ctx.getFollowingUri(identifier),
          endpoints: new Endpoints({ sharedInbox: ctx.getInboxUri() }),
          // Every RSA key: the instance's readings key is verified by its id among them.
          publicKeys: pairs
            .filter((p) => p.privateKey.algorithm.name === "RSASSA-PKCS1-v1_5")
            .map((p) => p.cryptographicKey),
          assertionMethods: pairs.map((p) => p.multikey),
        };
      };
      const actor = await disclosedActor(db, identifier);
      if (actor?.kind === "instance") {
        return new Application({
          ...(await common()),
          preferredUsername: INSTANCE_ACTOR,
          name: `Pepeunit ${config.domain}`,
          summary: "The Pepeunit instance: it signs every activity its units' links exchange.",
        });
      }
      if (actor?.kind === "unit") {
        return new Service({
          ...(await common()),
          preferredUsername: actor.unit.name,
          name: actor.unit.name,
          summary: "A Pepeunit unit (an IoT device).",
        });
      }
      if (actor?.kind !== "output") return null;
      return new Service({
        ...(await common()),
        preferredUsername: identifier,
        name: actor.node.topicName,
        summary: `Output variable of the Pepeunit unit ${actor.unit.name}; follow it to receive its values.`,
        attribution: ctx.getActorUri(actor.unit.uuid),
      });
    })
    .setKeyPairsDispatcher(async (_ctx, identifier) => keys.pairsOf(identifier))
    .mapHandle(async (_ctx, username) => {
      // acct:instance@D, acct:<variable-uuid>@D, acct:<unit-name>@D
      if (username === INSTANCE_ACTOR || UUID_RE.test(username)) return username;
      const unit = await findUnit(db, { name: username });
      return unit?.visibility === "Public" ? unit.uuid : null;
    });

  setCollectionDispatchers(fed, core, followers, links, outbox);

  fed.setNodeInfoDispatcher("/nodeinfo/2.1", async () => {
    const units = await countUnits(db);
    return {
      software: { name: "pepeunit", version: VERSION },
      protocols: ["activitypub"],
      openRegistrations: false,
      usage: { users: {}, localPosts: units, localComments: 0 },
      metadata: {
        units,
        federation: policy.settings.mode,
        // The readings formats this instance reads (readings.ts); senders pick from them.
        readingFormats: READING_FORMATS.filter((f) => f <= config.federationReadingFormat),
      },
    };
  });

  // --- inbox ---

  /**
   * Every listener: the actor and the activity come from one origin, the peer is
   * allowed (on, not blocked, on the allow-list in that mode); any failure is
   * logged, never a 500.
   */
  function listener<T extends Activity>(
    name: string,
    handle: (ctx: InboxContext<void>, activity: T, domain: string) => Promise<void>,
    /** Fail the delivery so it is retried (readings not yet published must come again). */
    opts: { retryOnError?: boolean } = {},
  ) {
    return async (ctx: InboxContext<void>, activity: T) => {
      const actorId = activity.actorId;
      if (!actorId || !activity.id || activity.id.origin !== actorId.origin) {
        log.info(
          { activity: activity.id?.href, actor: actorId?.href },
          "federation: activity and actor origins differ; ignored",
        );
        return;
      }
      const domain = domainOf(actorId);
      const d = policy.decide(domain);
      if (!d.ok) {
        log.info({ domain, reason: d.reason }, `federation: ${name} from a refused peer ignored`);
        return;
      }
      touch(domain);
      try {
        await handle(ctx, activity, domain);
      } catch (err) {
        log.error(
          { err: errorText(err), activity: activity.id.href },
          `federation: handling ${name} failed`,
        );
        if (opts.retryOnError) throw err;
      }
    };
  }

  async function answerFollow(ctx: Context<void>, follow: Follow, domain: string) {
    const followerActor = follow.actorId as URL;
    const target = follow.objectId ? ctx.parseUri(follow.objectId) : null;
    const identifier = target?.type === "actor" ? target.identifier : null;
    const onBehalfOfUrl = follow.attributionId;
    const onBehalfOf =
      onBehalfOfUrl && onBehalfOfUrl.origin === followerActor.origin ? onBehalfOfUrl.href : null;
    const actor = await follow.getActor({ documentLoader: ctx.documentLoader });
    const inbox = (isActor(actor) ? (actor.endpoints?.sharedInbox ?? actor.inboxId) : null) ?? null;
    if (!inbox || inbox.origin !== followerActor.origin) {
      log.info({ follower: followerActor.href }, "federation: follower without a usable inbox");
      return;
    }
    const decision =
      identifier && UUID_RE.test(identifier)
        ? await decideFollow(core, identifier, domain, onBehalfOf)
        : { ok: false as const, reason: "no such output variable" };
    const recipient = { id: followerActor, inboxId: inbox };
    if (decision.ok && identifier && follow.id) {
      const found = await findNodeAndUnit(db, identifier);
      if (!found) return;
      await saveFollower(
        core,
        followers,
        {
          nodeUuid: identifier,
          followId: follow.id.href,
          followerActor: followerActor.href,
          onBehalfOf,
          domain,
          inbox: inbox.href,
        },
        found.unit.uuid,
      );
      const accept = new Accept({
        id: newActivityId(core),
        actor: ctx.getActorUri(INSTANCE_ACTOR),
        object: follow,
        // The output's home topic: the follower republishes values under it (§3).
        result: new ASObject({
          id: ctx.getActorUri(identifier),
          name: variableTopic(config.domain, identifier, decision.topicName),
        }),
      });
      await ctx.sendActivity({ identifier: INSTANCE_ACTOR }, recipient, accept, {
        orderingKey: PEER_ORDERING_KEY,
        fanout: "skip",
      });
      outbox.record(accept, identifier);
      log.info({ follower: followerActor.href, output: identifier }, "federation: follow accepted");
      return;
    }
    const reject = new Reject({
      id: newActivityId(core),
      actor: ctx.getActorUri(INSTANCE_ACTOR),
      object: follow,
      summary: decision.ok ? "refused" : decision.reason,
    });
    await ctx.sendActivity({ identifier: INSTANCE_ACTOR }, recipient, reject, {
      orderingKey: PEER_ORDERING_KEY,
      fanout: "skip",
    });
    // Filed under the output only when it is one (a Follow of anything else is ours alone).
    outbox.record(
      reject,
      (await disclosedActor(db, identifier ?? ""))?.kind === "output" ? identifier : null,
    );
    log.info(
      {
        follower: followerActor.href,
        output: identifier,
        reason: decision.ok ? null : decision.reason,
      },
      "federation: follow rejected",
    );
  }

  /** The Follow an Accept/Reject/Undo is about (embedded or by id). */
  const followIdOf = (a: Accept | Reject | Undo): string | null => a.objectId?.href ?? null;

  fed
    .setInboxListeners("/ap/actors/{identifier}/inbox", "/ap/inbox")
    .on(Follow, listener<Follow>("Follow", answerFollow))
    .on(
      Undo,
      listener<Undo>("Undo", async (_ctx, undo) => {
        const followId = followIdOf(undo);
        const f = followId ? followers.get(followId) : undefined;
        if (!f || f.followerActor !== undo.actorId?.href) return;
        followers.remove(f.followId);
        await deleteFollowers(db, [f.followId]);
        log.info({ follower: f.followerActor, output: f.nodeUuid }, "federation: unfollowed");
      }),
    )
    .on(
      Accept,
      listener<Accept>("Accept", async (_ctx, accept, domain) => {
        const followId = followIdOf(accept);
        const edge = followId ? links.byFollow(followId) : undefined;
        if (!edge || edge.domain !== domain) return;
        const result = await accept.getResult({ documentLoader: offline });
        const topic = result?.name?.toString() ?? "";
        if (!isHomeTopic(topic, edge)) {
          log.warn(
            { edge: edge.uuid, topic },
            "federation: Accept with an unexpected topic ignored",
          );
          return;
        }
        if (edge.status === "Active" && edge.remoteTopic === topic) return;
        const e = await activateRemote(core, links, edge, topic);
        if (e)
          deps.events.emit("federation.remote-edges.changed", { unitUuids: [e.inputUnitUuid] });
      }),
    )
    .on(
      Reject,
      listener<Reject>("Reject", async (_ctx, reject, domain) => {
        const followId = followIdOf(reject);
        const edge = followId ? links.byFollow(followId) : undefined;
        if (!edge || edge.domain !== domain) return;
        const outcome = await rejectRemote(
          core,
          links,
          edge,
          reject.summary?.toString() ?? "rejected",
        );
        log.info(
          { edge: edge.uuid, outcome },
          "federation: follow rejected by the output's instance",
        );
        if (edge.status === "Active") {
          deps.events.emit("federation.remote-edges.changed", { unitUuids: [edge.inputUnitUuid] });
        }
      }),
    )
    .on(
      Delete,
      listener<Delete>("Delete", async (_ctx, del) => {
        // The remote output (or its unit) is gone: every edge from it goes too.
        const gone = del.objectId?.href;
        if (!gone || new URL(gone).origin !== del.actorId?.origin) return;
        const affected = links.all().filter((e) => e.remoteActor === gone);
        if (!affected.length) return;
        for (const e of affected)
          await rejectRemote(core, links, { ...e, status: "Active" }, "deleted");
        deps.events.emit("federation.remote-edges.changed", {
          unitUuids: [...new Set(affected.map((e) => e.inputUnitUuid))],
        });
      }),
    )
    .on(
      Add,
      listener<Add>(
        "Add",
        async (_ctx, add) => {
          // Readings: parsed from the activity's JSON by the generated vocabulary classes.
          // (Readings in the compact form our serializers write take the fast path of
          // federation.service.ts; this is for the same activities written otherwise.)
          const readings = await parseBatch(await add.toJsonLd()).catch((err: unknown) => {
            if (!(err instanceof UnsupportedReadingFormat)) throw err;
            log.warn({ err: err.message, activity: add.id?.href }, "federation: readings refused");
            return null;
          });
          if (!readings) return;
          await relay.apply(readings, (add.actorId as URL).origin).applied;
        },
        { retryOnError: true },
      ),
    )
    .onError((_ctx, err) => log.warn({ err: errorText(err) }, "federation: inbox error"));

  return { core, fed, queue, kv, followers, links, relay };
}

const preloadedLoader = getDocumentLoader({ allowPrivateAddress: false });
/** Embedded objects only: a peer's activity must not make us fetch anything. */
async function offline(url: string) {
  if (url in preloadedContexts) return preloadedLoader(url);
  throw new Error(`not fetched: ${url}`);
}
