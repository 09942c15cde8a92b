import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { connectRedis } from "./redis.ts";

// Who is in the cluster: every process keeps a key of its own alive in Redis (refreshed
// every BEAT_MS, expiring after SILENT_MS), holding its roles and when it was last seen.
// A process that dies or loses Redis leaves the list within SILENT_MS.

const BEAT_MS = 2000;
export const SILENT_MS = 10_000;

export type ClusterMember = { node: string; roles: string[]; last_seen: string };

export type Presence = {
  /** Publishes this process's entry now (after its roles changed). */
  beat(): Promise<void>;
  members(): Promise<ClusterMember[]>;
  stop(): Promise<void>;
};

export async function startPresence(opts: {
  redisUrl: string;
  namespace: string;
  nodeName: string;
  roles: () => string[];
  log: Logger;
}): Promise<Presence> {
  const { namespace, nodeName, log } = opts;
  const redis: Redis = await connectRedis(opts.redisUrl, log, "presence");
  const prefix = `${namespace}:node:`;
  const key = `${prefix}${nodeName}`;
  let stopped = false;

  async function beat() {
    if (stopped) return;
    const entry: ClusterMember = {
      node: nodeName,
      roles: opts.roles(),
      last_seen: new Date().toISOString(),
    };
    await redis.set(key, JSON.stringify(entry), "PX", SILENT_MS);
  }

  await beat();
  const timer = setInterval(() => {
    beat().catch((err: unknown) => log.warn({ err: String(err) }, "cluster: presence beat failed"));
  }, BEAT_MS);
  timer.unref();

  return {
    beat,
    async members() {
      const keys: string[] = [];
      let cursor = "0";
      do {
        const [next, batch] = await redis.scan(
          cursor,
          "MATCH",
          `${escapeGlob(prefix)}*`,
          "COUNT",
          200,
        );
        cursor = next;
        keys.push(...batch);
      } while (cursor !== "0");
      if (!keys.length) return [];
      const values = await redis.mget(...keys);
      const members: ClusterMember[] = [];
      for (const v of values) {
        if (!v) continue;
        try {
          members.push(JSON.parse(v) as ClusterMember);
        } catch {
          // Not ours (someone else's key under the prefix): left out.
        }
      }
      return members.sort((a, b) => a.node.localeCompare(b.node));
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      // Leaving on purpose: the others see it at once, not after SILENT_MS.
      await redis.del(key).catch(() => {});
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

/** SCAN's MATCH is a glob: a namespace or node name with * ? [ ] \ must match literally. */
function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, "\\$&");
}
