import type { Redis } from "ioredis";
import type { Logger } from "pino";

// ioredis is the client mqemitter-redis and aedes-persistence-redis already use; the
// bridge and presence reuse it (imported lazily: a single process never loads it).

/** A connection to the cluster's Redis that retries forever and reports errors once per outage. */
export async function connectRedis(url: string, log: Logger, purpose: string): Promise<Redis> {
  const { Redis: RedisClient } = await import("ioredis");
  const client = new RedisClient(url, {
    // Commands wait for a reconnect instead of failing after a few retries.
    maxRetriesPerRequest: null,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
    lazyConnect: true,
  });
  let failing = false;
  client.on("error", (err: Error) => {
    if (failing) return;
    failing = true;
    // The URL may hold a password: only the message is logged.
    log.error({ purpose, err: err.message }, "cluster: Redis unreachable; retrying");
  });
  client.on("ready", () => {
    if (failing) log.info({ purpose }, "cluster: Redis reachable again");
    failing = false;
  });
  await client.connect();
  return client;
}
