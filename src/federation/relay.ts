import { signRequest } from "@fedify/fedify";
import { EMITTER_CONCURRENCY } from "../broker/emitter-concurrency.ts";
import { type Core, errorText, newActivityId, PEER_ORDERING_KEY } from "./core.ts";
import { recordPeerError, saveLastSequences } from "./federation.store.ts";
import type { FollowerRegistry } from "./followers.ts";
import type { RemoteEdgeRegistry } from "./links.ts";
import type { DrizzleMessageQueue } from "./message-queue.ts";
import { createPeerFormats } from "./peer-formats.ts";
import { domainOf } from "./policy.ts";
import {
  type IncomingReading,
  type OutgoingReading,
  parseBatch,
  type ReadingFormat,
  ReadingsAdd,
  readingsTypeOf,
  serializeBatch,
  serializeTable,
} from "./readings.ts";

// Values across instances.
//
// Out (home side): every value published on a followed output becomes a reading
// with a sequence number. Readings bound for one follower inbox (its shared inbox:
// each instance gets a value once, whatever number of its units follow it) leave
// together in one Add activity, signed (HTTP Signatures) with the instance key:
// while an activity to that inbox is still queued or in flight, new readings wait
// and join the next one, so batches grow with the rate (and with a peer's round-trip
// time) instead of the queue growing; once BUILD_AHEAD of them wait, that next one
// is built meanwhile (WINDOW), so a peer that is busy with one batch finds the next
// ready when it answers instead of waiting for us to build it. A batch
// leaves once its oldest reading has waited batchMs, so even a peer that answers at
// once gets at most one activity per batchMs, not one per reading. The activities go through
// the persistent queue with the peer's ordering key: after the Accept, in order,
// retried while the peer is down.
//
// Direct sending: while the queue holds nothing for a peer (checked in the database,
// then kept up to date by the queue's onEnqueue), its activities are POSTed straight
// from memory, one at a time and in order, without the queue's three database round
// trips per activity (they were most of the relay's latency). The first failure
// moves that activity and the ones after it into the queue, which then retries them
// in order; direct sending resumes once the queue is empty for the peer again. A stop
// moves what is still in memory into the queue; a crash loses it (at most WINDOW
// activities, milliseconds of readings). Not in cluster mode: another process may
// queue an activity for the peer (an Accept) that direct readings would overtake.
//
// Format (readings.ts): 2, one JSON-LD node per batch, to peers whose NodeInfo
// announces it (peer-formats.ts), 1 to the others. A peer that refuses a format-2
// activity (422: it no longer reads it) gets the same readings again in format 1.
//
// In (following side): readings of an active remote output are republished on the
// local broker under the output's home topic, unless their sequence number is not
// above the last one relayed (stale or duplicate). Batches are republished one after
// the other, in the order they arrived. The inbox answers a large batch once the batch
// before it and its own first PUBLISH_CHUNK readings are republished, not all of it:
// the sender's next batch then travels and is verified while the rest is published
// (the sender posts one at a time, so arrival order stays its order). A broker that
// cannot publish (closed, say) fails that first chunk, so the failure is the answer
// and the sender retries. At most one answered batch is still
// being published: a stop finishes it (and refuses later batches: the sender retries
// them after the restart), a crash loses the rest of it, as the sending side's direct
// mode may lose WINDOW activities. After a failed batch, and in cluster mode, a batch
// is answered only once it is wholly republished.

export const READINGS_MESSAGE = "pepeunit-readings";
/** Readings per activity, by format: format 1 costs the receiver a JSON-LD node per reading. */
const MAX_BATCH: Record<ReadingFormat, number> = { 1: 500, 2: 2000 };
/** Payload bytes per activity, well under the inboxes' default limit (1 MB). */
const MAX_BATCH_BYTES = 256 * 1024;
/**
 * Activities per inbox queued or in flight before readings wait for one to finish.
 * They are delivered one at a time anyway (in order), so readings that arrive while
 * one is on its way normally make the next activity larger instead of waiting in
 * another one; but once BUILD_AHEAD readings wait, the next activity is built (and
 * queued behind the one in flight) meanwhile, so the peer never waits for us to build it.
 */
const WINDOW = 2;
/** Waiting readings from which the second activity of the window is built ahead. */
const BUILD_AHEAD = 500;
/** Republishes of a received batch in flight at once (under the broker emitter's concurrency). */
export const PUBLISH_CHUNK = EMITTER_CONCURRENCY / 2;
/** A safety net: readings never wait longer than this for the window to open. */
const MAX_HOLD_MS = 2000;

type ReadingsMessage = {
  type: typeof READINGS_MESSAGE;
  inbox: string;
  activity: unknown;
};

export type Relay = {
  push(nodeUuid: string, payload: Buffer): void;
  /**
   * Queues a received batch behind the ones before it. `applied`: its readings are
   * republished (how many). `accepted`: when the inbox may answer (see "In" above).
   */
  apply(
    readings: IncomingReading[],
    senderOrigin: string,
  ): { accepted: Promise<void>; applied: Promise<number> };
  /** Queue handler of READINGS_MESSAGE: the signed POST to the follower's inbox. */
  deliver(message: unknown): Promise<void>;
  /** Queue callback: a message left the queue for good. */
  done(message: unknown): void;
  /** Queue callback: messages were queued under this ordering key. */
  enqueued(orderingKey: string | null): void;
  /** Sends what is pending now (stop, tests). */
  flush(): Promise<void>;
  stop(): Promise<void>;
};

type ActiveOutput = RemoteEdgeRegistry["active"] extends Map<string, infer V> ? V : never;

type Peer = {
  inbox: string;
  /** Fedify's ordering key of every activity to this peer's instance. */
  orderingKey: string;
  followerActor: string;
  readings: OutgoingReading[];
  outstanding: number;
  timer: NodeJS.Timeout | null;
  /** "direct": the queue holds nothing for the peer; "queued": it may (or is unknown yet). */
  mode: "direct" | "queued";
  /** Activities to POST directly, oldest first (the first one may be in flight). */
  direct: ReadingsMessage[];
  sending: Promise<void> | null;
  /** A check of the queue for this peer is running. */
  checking: boolean;
  /** Bumped by every enqueue for the peer: a check that saw an older value is stale. */
  enqueues: number;
  /** The last insert into the queue for this peer. */
  inserting: Promise<unknown>;
};

/** The oldest readings up to `max` of them and MAX_BATCH_BYTES of payload (at least one). */
function takeBatch(readings: OutgoingReading[], max: number): OutgoingReading[] {
  let n = 0;
  let bytes = 0;
  while (n < readings.length && n < max) {
    bytes += (readings[n] as OutgoingReading).payload.length;
    if (n > 0 && bytes > MAX_BATCH_BYTES) break;
    n++;
  }
  return readings.splice(0, n);
}

/** A format-2 readings activity of ours rewritten in format 1 (same id and envelope). */
async function asFormat1(activity: unknown): Promise<Record<string, unknown> | null> {
  const readings = await parseBatch(activity).catch(() => null);
  if (!readings) return null;
  const object = await serializeBatch(
    readings.map((r) => ({
      variable: r.variable,
      payload: r.payload,
      observedAt: r.observedAt ?? Date.now(),
      sequence: r.sequence,
    })),
  );
  return { ...(activity as Record<string, unknown>), object };
}

export function createRelay(
  core: Core,
  followers: FollowerRegistry,
  edges: RemoteEdgeRegistry,
  queue: () => DrizzleMessageQueue,
  batchMs: number,
): Relay {
  const lastSeq = new Map<string, number>();
  const actorUris = new Map<string, URL>();
  const peers = new Map<string, Peer>();
  const formats = createPeerFormats(core);
  /** The format readings bound for this inbox go in now. */
  const formatOf = (inbox: string): ReadingFormat =>
    Math.min(core.deps.config.federationReadingFormat, formats.formatFor(inbox)) as ReadingFormat;
  let chain: Promise<void> = Promise.resolve();
  let stopping = false;
  const dirty = new Map<string, number>();
  let saveTimer: NodeJS.Timeout | null = null;

  /** Time-based, strictly increasing per variable, also across restarts (clock permitting). */
  function nextSequence(nodeUuid: string): number {
    const seq = Math.max((lastSeq.get(nodeUuid) ?? 0) + 1, Date.now() * 1000);
    lastSeq.set(nodeUuid, seq);
    return seq;
  }

  async function build(p: Peer, readings: OutgoingReading[], format: ReadingFormat) {
    const add = new ReadingsAdd({
      id: newActivityId(core),
      actor: core.instanceUri(),
      to: new URL(p.followerActor),
    });
    add.batchJson = format === 2 ? await serializeTable(readings) : await serializeBatch(readings);
    const message: ReadingsMessage = {
      type: READINGS_MESSAGE,
      inbox: p.inbox,
      activity: await add.toJsonLd(),
    };
    // Built once per activity, direct or queued: the actors' outbox lists it.
    core.outbox.readingsSent(add.id, p.followerActor, readings);
    return message;
  }

  /** Into the persistent queue, with Fedify's own ordering key for this peer: after our Accept. */
  async function enqueue(p: Peer, messages: ReadingsMessage[]): Promise<void> {
    p.mode = "queued";
    // One insert after the other: with a connection pool, two at once could commit (and
    // number their rows) in either order.
    const run = p.inserting.then(() =>
      queue().enqueueMany(messages, { orderingKey: p.orderingKey }),
    );
    p.inserting = run.catch(() => {});
    await run;
  }

  async function send(p: Peer, message: ReadingsMessage): Promise<void> {
    if (p.mode !== "direct" || stopping) return enqueue(p, [message]);
    p.direct.push(message);
    kick(p);
  }

  function kick(p: Peer): void {
    if (p.sending || !p.direct.length) return;
    p.sending = pump(p).finally(() => {
      p.sending = null;
      kick(p); // one pushed while this pump was finishing
    });
  }

  /** POSTs the peer's direct activities in order; on a failure the rest go to the queue. */
  async function pump(p: Peer): Promise<void> {
    while (p.direct.length && !stopping) {
      const m = p.direct[0] as ReadingsMessage;
      try {
        await deliverMessage(m);
      } catch (err) {
        core.log.info(
          { inbox: p.inbox, err: errorText(err) },
          "federation: readings delivery failed; queued for retries",
        );
        // Counted like a failed attempt of the queue (the admin's peer list shows it).
        recordPeerError(core.db, domainOf(new URL(p.inbox)), errorText(err)).catch(() => {});
        break;
      }
      p.direct.shift();
      sent(p);
    }
    if (p.direct.length) await moveToQueue(p);
  }

  async function moveToQueue(p: Peer): Promise<void> {
    const rest = p.direct.splice(0);
    if (!rest.length) return;
    await enqueue(p, rest).catch((err: unknown) => {
      p.outstanding = Math.max(0, p.outstanding - rest.length);
      core.log.error({ err: errorText(err), inbox: p.inbox }, "federation: readings not enqueued");
    });
  }

  /** Direct sending again once the database holds nothing for the peer (not in cluster mode). */
  async function checkQueue(p: Peer): Promise<void> {
    if (p.checking || p.mode === "direct" || stopping || core.deps.config.cluster) return;
    p.checking = true;
    const seen = p.enqueues;
    try {
      const n = await queue().countOrderingKey(p.orderingKey);
      if (n === 0 && seen === p.enqueues && !stopping) p.mode = "direct";
    } catch {
      // stays queued; checked again after the next delivery
    } finally {
      p.checking = false;
    }
  }

  /** An activity of the peer left (delivered, dropped or given up): the window opens. */
  function sent(p: Peer): void {
    p.outstanding = Math.max(0, p.outstanding - 1);
    if (!windowOpen(p)) return;
    const open = () => {
      if (!p.readings.length || !windowOpen(p)) return;
      if (p.timer) clearTimeout(p.timer);
      p.timer = null;
      // Not before the oldest waiting reading is batchMs old: a fast peer would otherwise get
      // an activity (a signature to make and check) for every reading or two.
      const wait = batchMs - (Date.now() - (p.readings[0] as OutgoingReading).observedAt);
      if (wait <= 0 || p.readings.length >= MAX_BATCH[formatOf(p.inbox)]) flush(p.inbox);
      else {
        p.timer = setTimeout(() => {
          p.timer = null;
          flush(p.inbox);
        }, wait);
      }
    };
    // Nothing of ours left in the queue: maybe nothing at all, then the next goes direct.
    if (p.mode === "queued" && p.outstanding === 0) void checkQueue(p).then(open);
    else open();
  }

  function flush(inbox: string): void {
    const p = peers.get(inbox);
    if (!p) return;
    if (p.timer) clearTimeout(p.timer);
    p.timer = null;
    const format = formatOf(inbox);
    while (p.readings.length) {
      const batch = takeBatch(p.readings, MAX_BATCH[format]);
      p.outstanding++;
      // One enqueue after another: queue order is delivery order.
      chain = chain
        .then(async () => send(p, await build(p, batch, format)))
        .catch((err: unknown) => {
          p.outstanding = Math.max(0, p.outstanding - 1);
          core.log.error({ err: errorText(err), inbox }, "federation: readings not enqueued");
        });
    }
  }

  /** Whether another activity may leave now: none on its way, or a backlog worth building ahead. */
  function windowOpen(p: Peer): boolean {
    return p.outstanding === 0 || (p.outstanding < WINDOW && p.readings.length >= BUILD_AHEAD);
  }

  function schedule(inbox: string, p: Peer): void {
    const now =
      p.outstanding === 0 ? p.readings.length >= MAX_BATCH[formatOf(inbox)] : windowOpen(p);
    if (now) {
      flush(inbox);
      return;
    }
    if (p.timer) return;
    const delay = p.outstanding === 0 ? batchMs : MAX_HOLD_MS;
    p.timer = setTimeout(() => {
      p.timer = null;
      flush(inbox);
    }, delay);
  }

  function saveSequences(): Promise<unknown> {
    saveTimer = null;
    const rows = [...dirty];
    dirty.clear();
    // One statement for every output relayed since the last save (not one per output).
    return saveLastSequences(core.db, rows).catch((err: unknown) =>
      core.log.warn({ err: errorText(err) }, "federation: saving sequence numbers failed"),
    );
  }

  /** The signed POST of an activity to an inbox (the instance actor's RSA key). */
  async function post(inbox: URL, activity: unknown): Promise<Response> {
    const sender = await core.instanceRsaSender();
    const request = await signRequest(
      new Request(inbox, {
        method: "POST",
        headers: {
          "content-type": "application/activity+json",
          accept: "application/activity+json",
        },
        body: JSON.stringify(activity),
      }),
      sender.privateKey,
      sender.keyId,
    );
    return fetch(request, { redirect: "manual", signal: AbortSignal.timeout(30_000) });
  }

  /** The signed POST of a readings activity; throws when it should be retried. */
  async function deliverMessage(m: ReadingsMessage): Promise<void> {
    const inbox = new URL(m.inbox);
    const domain = domainOf(inbox);
    // Resolved again at each attempt: no delivery to an address that became private.
    const allowed = await core.policy.check(inbox);
    if (!allowed.ok) {
      core.log.warn({ inbox: m.inbox, reason: allowed.reason }, "federation: readings dropped");
      return;
    }
    let res = await post(inbox, m.activity);
    if (res.status === 422 && readingsTypeOf(m.activity) === "ReadingTable") {
      // The peer no longer reads format 2 (it was downgraded): the same readings in format 1.
      formats.downgrade(m.inbox);
      const again = await asFormat1(m.activity);
      if (again) {
        await res.body?.cancel();
        res = await post(inbox, again);
      }
    }
    const text = await res.text().catch(() => "");
    if (res.ok) return;
    if (res.status === 403 || res.status === 404 || res.status === 410) {
      // The peer refuses us or has no such inbox: retrying would not help.
      await recordPeerError(core.db, domain, `HTTP ${res.status}: ${text.slice(0, 200)}`);
      return;
    }
    throw new Error(`HTTP ${res.status} from ${m.inbox}: ${text.slice(0, 200)}`);
  }

  /** The last batch queued for republishing: whether it was republished. */
  let applying: Promise<boolean> = Promise.resolve(true);
  /** Set by stop(): readings arriving later are refused (the sender retries after the restart). */
  let applyStopped = false;
  /** Republishes a batch; `firstChunkDone` once its first PUBLISH_CHUNK readings are out. */
  async function applyNow(
    readings: IncomingReading[],
    senderOrigin: string,
    firstChunkDone: () => void,
  ): Promise<number> {
    // Publishes are started PUBLISH_CHUNK at a time before any is awaited: the broker keeps
    // their order, and a subscriber's connection gets a chunk in one write instead of one
    // write each. (Not the whole batch: what exceeds the broker emitter's concurrency waits
    // in its queue, and the inbox answers once the first chunk is out.)
    const started: Array<{ r: IncomingReading; a: ActiveOutput; done: Promise<void> }> = [];
    const before = new Map<ActiveOutput, number>();
    const results: Array<PromiseSettledResult<void>> = [];
    for (const r of readings) {
      if (r.variable.origin !== senderOrigin) continue; // only the home instance speaks for its outputs
      const a = edges.active.get(r.variable.href);
      if (!a || r.sequence <= a.lastSequence) continue;
      if (!before.has(a)) before.set(a, a.lastSequence);
      a.lastSequence = r.sequence; // a repeated sequence later in the batch is skipped too
      started.push({ r, a, done: core.deps.broker.publish(a.topic, r.payload) });
      if (started.length - results.length >= PUBLISH_CHUNK) {
        results.push(
          ...(await Promise.allSettled(started.slice(results.length).map((x) => x.done))),
        );
        if (results.some((x) => x.status === "rejected")) break; // the rest waits for the retry
        if (results.length === PUBLISH_CHUNK) firstChunkDone();
      }
    }
    results.push(...(await Promise.allSettled(started.slice(results.length).map((x) => x.done))));
    const failedAt = results.findIndex((x) => x.status === "rejected");
    const applied = failedAt === -1 ? started : started.slice(0, failedAt);
    if (failedAt !== -1) {
      // Not applied (e.g. the broker is closing for a restart): the request fails and the
      // sender retries the batch; readings before this one are applied and skipped then.
      for (const [a, seq] of before) a.lastSequence = seq;
      for (const x of applied) x.a.lastSequence = x.r.sequence;
    }
    for (const x of applied) dirty.set(x.r.variable.href, x.r.sequence);
    const relayed = applied.length;
    if (failedAt !== -1) {
      const failed = results[failedAt] as PromiseRejectedResult;
      core.log.warn(
        { err: errorText(failed.reason), topic: started[failedAt]?.a.topic },
        "federation: republish failed",
      );
      if (dirty.size && !saveTimer) saveTimer = setTimeout(() => void saveSequences(), 200);
      throw failed.reason;
    }
    if (dirty.size && !saveTimer) saveTimer = setTimeout(() => void saveSequences(), 200);
    return relayed;
  }

  return {
    push(nodeUuid, payload) {
      if (!followers.hasFollowers(nodeUuid) || !core.policy.settings.enabled) return;
      let variable = actorUris.get(nodeUuid);
      if (!variable) {
        // Building a Fedify context per value is measurable at thousands of values/s.
        if (actorUris.size > 100_000) actorUris.clear();
        variable = core.ctx().getActorUri(nodeUuid);
        actorUris.set(nodeUuid, variable);
      }
      const reading: OutgoingReading = {
        variable,
        payload: new Uint8Array(payload),
        observedAt: Date.now(),
        sequence: nextSequence(nodeUuid),
      };
      const seen = new Set<string>();
      for (const f of followers.ofNode(nodeUuid)) {
        if (seen.has(f.inbox) || !core.policy.decide(f.domain).ok) continue;
        seen.add(f.inbox);
        let p = peers.get(f.inbox);
        if (!p) {
          p = {
            inbox: f.inbox,
            orderingKey: `${PEER_ORDERING_KEY}\n${new URL(f.inbox).origin}`,
            followerActor: f.followerActor,
            readings: [],
            outstanding: 0,
            timer: null,
            mode: "queued",
            direct: [],
            sending: null,
            checking: false,
            enqueues: 0,
            inserting: Promise.resolve(),
          };
          peers.set(f.inbox, p);
          void checkQueue(p);
        }
        p.readings.push(reading);
        schedule(f.inbox, p);
      }
    },

    deliver: (raw) => deliverMessage(raw as ReadingsMessage),

    done(raw) {
      const m = raw as ReadingsMessage | null;
      if (m?.type !== READINGS_MESSAGE) return;
      const p = peers.get(m.inbox);
      if (!p) return;
      sent(p);
    },

    enqueued(orderingKey) {
      if (!orderingKey) return;
      for (const p of peers.values()) {
        if (p.orderingKey !== orderingKey) continue;
        // An activity (an Update, a Delete…) queued for the peer: later readings go behind it.
        p.enqueues++;
        p.mode = "queued";
      }
    },

    apply(readings, senderOrigin) {
      // Sequences applied after stop() saved them would be forgotten by the restart, and the
      // sender's retry would then publish those readings a second time. (A batch queued
      // before the stop is still applied: stop() waits for it.)
      if (applyStopped) {
        const refused = Promise.reject(new Error("the relay is stopping; deliver again later"));
        refused.catch(() => {}); // `applied` carries the same error to whoever awaits it
        return { accepted: refused, applied: refused };
      }
      // One batch at a time: a reading counts as applied only once published, so batches
      // running side by side could both pass the sequence check.
      const before = applying;
      let answeredEarly = false;
      let firstChunkDone = () => {};
      const firstChunk = new Promise<void>((resolve) => {
        firstChunkDone = () => {
          answeredEarly = true;
          resolve();
        };
      });
      // Not in cluster mode: the sender's next batch may reach another process, which would
      // publish it while this one still publishes the rest of this batch.
      const early = !core.deps.config.cluster;
      const applied = before.then((ok) =>
        applyNow(readings, senderOrigin, ok && early ? firstChunkDone : () => {}),
      );
      applying = applied.then(
        () => true,
        (err: unknown) => {
          if (answeredEarly) {
            core.log.error(
              { err: errorText(err), readings: readings.length },
              "federation: readings of an answered batch were not republished",
            );
          }
          return false;
        },
      );
      const accepted = Promise.race([firstChunk, applied]).then(() => {});
      return { accepted, applied };
    },

    async flush() {
      for (const inbox of peers.keys()) flush(inbox);
      await chain;
    },

    async stop() {
      applyStopped = true;
      stopping = true;
      for (const inbox of peers.keys()) flush(inbox);
      await chain;
      // What direct sending still holds goes to the queue (the one in flight may arrive
      // twice: the receiver skips it by its sequence numbers).
      for (const p of peers.values()) {
        await p.sending;
        await moveToQueue(p);
      }
      await applying;
      if (saveTimer) clearTimeout(saveTimer);
      await saveSequences();
      await formats.settled();
    },
  };
}
