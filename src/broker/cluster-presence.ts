import type { Redis } from "ioredis";
import type { Logger } from "pino";

// Which units are online anywhere in the cluster. Each process keeps the set of its own
// online units in Redis (`online:<node>`, expiring unless refreshed) and reads the sets of
// the others: again after any "unit.online" event (the event bridge brings the other
// processes' ones, and their origin wrote Redis before emitting) and on a timer, so the
// units of a process that died without a word go offline once its set expires.

/** A process's set outlives it by this much; refreshed every TICK_MS while it lives. */
export const PRESENCE_TTL_MS = 10_000;
const TICK_MS = 3_000;
/** Several events of one moment (a reconnect storm) share one read. */
const RELOAD_DELAY_MS = 20;
const NODES_KEY = "online-nodes";

export type ClusterPresence = {
  /** Records a local change; resolves once Redis has it (before the event announces it). */
  changed(unitUuid: string, online: boolean): Promise<void>;
  /** Online on another live process (as of the last read). */
  has(unitUuid: string): boolean;
  units(): Iterable<string>;
  /** Reads the other processes' sets again soon (an online event was seen). */
  refresh(): void;
  /** Writes this process's set and reads the others' (awaited once at start). */
  tick(): Promise<void>;
  close(): Promise<void>;
};

export type PresenceDeps = {
  /** Connection whose keyPrefix is the cluster namespace. */
  redis: Redis;
  nodeName: string;
  /** This process's online units right now. */
  localUnits(): string[];
  /** Runs on the timer too (the client id claims are refreshed with the set). */
  onTick?(): Promise<void>;
  log: Logger;
};

export function createClusterPresence(deps: PresenceDeps): ClusterPresence {
  const { redis, nodeName, log } = deps;
  const ownKey = `online:${nodeName}`;
  let remote = new Set<string>();
  let reloading: Promise<void> | undefined;
  let again = false;
  let reloadTimer: NodeJS.Timeout | undefined;
  let closed = false;

  async function readOthers(): Promise<Set<string>> {
    const nodes = (await redis.smembers(NODES_KEY)).filter((n) => n !== nodeName);
    if (!nodes.length) return new Set();
    const pipe = redis.pipeline();
    for (const n of nodes) pipe.smembers(`online:${n}`);
    const results = (await pipe.exec()) ?? [];
    const units = new Set<string>();
    const gone: string[] = [];
    results.forEach(([err, members], i) => {
      if (err) throw err;
      const list = members as string[];
      // An expired (dead) or empty set: the name is dropped; a live one names itself again.
      if (!list.length) gone.push(nodes[i] as string);
      for (const u of list) units.add(u);
    });
    if (gone.length) await redis.srem(NODES_KEY, ...gone);
    return units;
  }

  /** One read at a time; events during a read cause one more after it. */
  function reload(): Promise<void> {
    if (reloading) {
      again = true;
      return reloading;
    }
    reloading = (async () => {
      do {
        again = false;
        try {
          const next = await readOthers();
          if (!closed) remote = next;
        } catch (err) {
          log.warn({ reason: (err as Error).message }, "mqtt: reading cluster presence failed");
        }
      } while (again && !closed);
    })().finally(() => {
      reloading = undefined;
    });
    return reloading;
  }

  async function writeOwn(): Promise<void> {
    const units = deps.localUnits();
    const tx = redis.multi().del(ownKey);
    if (units.length) tx.sadd(ownKey, ...units).pexpire(ownKey, PRESENCE_TTL_MS);
    await tx.sadd(NODES_KEY, nodeName).exec();
  }

  async function tick(): Promise<void> {
    try {
      await writeOwn();
      await deps.onTick?.();
    } catch (err) {
      log.warn({ reason: (err as Error).message }, "mqtt: writing cluster presence failed");
    }
    await reload();
  }

  const timer = setInterval(() => void tick(), TICK_MS);
  timer.unref();

  return {
    async changed(unitUuid, online) {
      if (closed) return;
      if (online) {
        await redis
          .multi()
          .sadd(ownKey, unitUuid)
          .pexpire(ownKey, PRESENCE_TTL_MS)
          .sadd(NODES_KEY, nodeName)
          .exec();
      } else {
        await redis.srem(ownKey, unitUuid);
      }
    },
    has: (unitUuid) => remote.has(unitUuid),
    units: () => remote,
    refresh() {
      if (closed || reloadTimer) return;
      reloadTimer = setTimeout(() => {
        reloadTimer = undefined;
        void reload();
      }, RELOAD_DELAY_MS);
      reloadTimer.unref();
    },
    tick,
    async close() {
      closed = true;
      clearInterval(timer);
      if (reloadTimer) clearTimeout(reloadTimer);
      await reloading;
      // A clean stop: the units are offline at once, not when the set expires.
      await redis.del(ownKey).catch(() => {});
    },
  };
}
