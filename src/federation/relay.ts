import { type Core, errorText, newActivityId, PEER_ORDERING_KEY } from "./core.ts";
import { saveLastSequence } from "./federation.store.ts";
import type { FollowerRegistry } from "./followers.ts";
import type { RemoteEdgeRegistry } from "./links.ts";
import { type IncomingReading, type OutgoingReading, ReadingsAdd, serializeBatch } from "./readings.ts";

// Values across instances.
//
// Out (home side): every value published on a followed output becomes a reading
// with a sequence number; readings bound for the same follower inbox wait up to
// `batchMs` and leave together in one signed Add activity. Each follower instance
// gets a value once (its shared inbox), whatever number of its units follow it.
// Activities are enqueued one after another with the peer's ordering key, so the
// queue delivers them to each peer in order, retrying while it is down.
//
// In (following side): readings of an active remote output are republished on the
// local broker under the output's home topic, unless their sequence number is not
// above the last one relayed (stale or duplicate).

const MAX_BATCH = 500;

export type Relay = {
  push(nodeUuid: string, payload: Buffer): void;
  apply(readings: IncomingReading[], senderOrigin: string): Promise<number>;
  /** Sends what is pending now (stop, tests). */
  flush(): Promise<void>;
  stop(): Promise<void>;
};

export function createRelay(
  core: Core,
  followers: FollowerRegistry,
  edges: RemoteEdgeRegistry,
  batchMs: number,
): Relay {
  const lastSeq = new Map<string, number>();
  type Pending = { followerActor: string; readings: OutgoingReading[] };
  let pending = new Map<string, Pending>();
  let timer: NodeJS.Timeout | null = null;
  let chain: Promise<void> = Promise.resolve();
  const dirty = new Map<string, number>();
  let saveTimer: NodeJS.Timeout | null = null;

  /** Time-based, strictly increasing per variable, also across restarts (clock permitting). */
  function nextSequence(nodeUuid: string): number {
    const seq = Math.max((lastSeq.get(nodeUuid) ?? 0) + 1, Date.now() * 1000);
    lastSeq.set(nodeUuid, seq);
    return seq;
  }

  async function send(batches: Map<string, Pending>): Promise<void> {
    const ctx = core.ctx();
    const sender = await core.instanceRsaSender();
    for (const [inbox, p] of batches) {
      for (let i = 0; i < p.readings.length; i += MAX_BATCH) {
        const add = new ReadingsAdd({
          id: newActivityId(core),
          actor: core.instanceUri(),
          to: new URL(p.followerActor),
        });
        add.batchJson = await serializeBatch(p.readings.slice(i, i + MAX_BATCH));
        try {
          await ctx.sendActivity(
            sender,
            { id: new URL(p.followerActor), inboxId: new URL(inbox) },
            add,
            { orderingKey: PEER_ORDERING_KEY, fanout: "skip" },
          );
        } catch (err) {
          core.log.error({ err: errorText(err), inbox }, "federation: readings not enqueued");
        }
      }
    }
  }

  function flushNow(): Promise<void> {
    if (timer) clearTimeout(timer);
    timer = null;
    const batches = pending;
    pending = new Map();
    if (batches.size === 0) return chain;
    // One enqueue after another: queue order is delivery order.
    chain = chain.then(() => send(batches));
    return chain;
  }

  function saveSequences(): Promise<unknown> {
    saveTimer = null;
    const rows = [...dirty];
    dirty.clear();
    return Promise.all(
      rows.map(([actor, seq]) =>
        saveLastSequence(core.db, actor, seq).catch((err: unknown) =>
          core.log.warn({ err: errorText(err) }, "federation: saving a sequence number failed"),
        ),
      ),
    );
  }

  return {
    push(nodeUuid, payload) {
      if (!followers.hasFollowers(nodeUuid) || !core.policy.settings.enabled) return;
      const ctx = core.ctx();
      const variable = ctx.getActorUri(nodeUuid);
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
        let p = pending.get(f.inbox);
        if (!p) pending.set(f.inbox, (p = { followerActor: f.followerActor, readings: [] }));
        p.readings.push(reading);
      }
      if (!timer && pending.size) {
        timer = setTimeout(() => void flushNow(), batchMs);
      }
    },

    async apply(readings, senderOrigin) {
      let relayed = 0;
      for (const r of readings) {
        if (r.variable.origin !== senderOrigin) continue; // only the home instance speaks for its outputs
        const a = edges.active.get(r.variable.href);
        if (!a || r.sequence <= a.lastSequence) continue;
        a.lastSequence = r.sequence;
        dirty.set(r.variable.href, r.sequence);
        try {
          await core.deps.broker.publish(a.topic, r.payload);
          relayed++;
        } catch (err) {
          core.log.warn({ err: errorText(err), topic: a.topic }, "federation: republish failed");
        }
      }
      if (dirty.size && !saveTimer) saveTimer = setTimeout(() => void saveSequences(), 200);
      return relayed;
    },

    flush: flushNow,

    async stop() {
      await flushNow();
      if (saveTimer) clearTimeout(saveTimer);
      await saveSequences();
    },
  };
}
