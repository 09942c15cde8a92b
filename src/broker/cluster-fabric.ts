import { createRequire } from "node:module";
import { Readable } from "node:stream";
import { Redis } from "ioredis";
import type { Logger } from "pino";
import type { ClusterConfig } from "../config.ts";
import { EMITTER_CONCURRENCY } from "./emitter-concurrency.ts";
import { drainIteratively } from "./emitter-drain.ts";

// Cluster mode: what Aedes needs to behave as one broker across processes. Its message
// fabric (mqemitter-redis: every publish goes through Redis pub/sub and each process
// delivers to its own subscribers) and its session store (aedes-persistence-redis:
// persistent subscriptions, QoS 1 queues and in-flight packets, wills) both live in
// the cluster's Redis, every channel and key under the cluster's namespace.

const require = createRequire(import.meta.url);

// Aedes types both options as `any`; these are the parts used here.
type MqEmitter = {
  /** mqemitter-redis re-emits its connections' errors here (unhandled, they would throw). */
  state: { on(event: "error", listener: (err: Error) => void): unknown };
  close(cb: () => void): void;
};
type Persistence = {
  subscriptionsByClient(client: { id: string }): Promise<Array<{ topic: string }>>;
  removeSubscriptions(client: { id: string }, topics: string[]): Promise<void>;
  cleanSubscriptions(client: { id: string }): Promise<void>;
  createRetainedStreamCombi(patterns: string[]): AsyncIterable<unknown>;
  destroy(): Promise<void>;
};

// Neither subpath has typings: the prefixing emitter is an extra export, and the
// async persistence is what Aedes 1.x calls (the package's main is the callback one).
const { MQEmitterRedisPrefix } = require("mqemitter-redis") as {
  MQEmitterRedisPrefix: new (prefix: string, opts: Record<string, unknown>) => MqEmitter;
};
const AsyncRedisPersistence = require("aedes-persistence-redis/asyncPersistence.js") as new (opts: {
  conn: Redis;
  packetTTL?: () => number;
  maxSessionDelivery?: number;
}) => Persistence;

/**
 * How long a message queued for an offline persistent session is kept (seconds). A device
 * that never comes back must not make Redis grow forever; a day covers any reboot.
 */
const QUEUED_PACKET_TTL_S = 24 * 3600;

export type ClusterFabric = {
  mq: MqEmitter;
  persistence: Persistence;
  /** For presence and client id claims; its keyPrefix is the namespace. */
  redis: Redis;
  /**
   * The namespace is one more topic level inside mqemitter's matcher (qlobber refuses
   * more than 100), so the broker's own limit must leave room for it.
   */
  maxTopicLevels(configured: number): number;
  /**
   * Ends a client id's stored session (its unit was deleted): nothing more is queued for
   * it; what was queued expires with QUEUED_PACKET_TTL_S.
   */
  forgetSession(clientId: string): Promise<void>;
  /** After Aedes closed (which closes `mq`; closed here too if Aedes never started). */
  close(): Promise<void>;
};

export function createClusterFabric(cluster: ClusterConfig, log: Logger): ClusterFabric {
  // A whole topic level, not a bare prefix: `ns:#` would be a literal word to the matcher,
  // `ns/#` is still a wildcard (subscriptions to `#` and `+/…` keep working).
  const mq = new MQEmitterRedisPrefix(`${cluster.namespace}/`, {
    connectionString: cluster.redisUrl,
    // What Aedes' default in-memory emitter does ([MQTT-4.7.1-3]: `a/#` matches `a`).
    matchEmptyLevels: true,
    concurrency: EMITTER_CONCURRENCY,
  });
  drainIteratively(mq);
  mq.state.on("error", (err) => log.error({ reason: err.message }, "mqtt: cluster fabric error"));

  const conn = new Redis(cluster.redisUrl, { keyPrefix: `${cluster.namespace}:` });
  conn.on("error", (err) => log.error({ reason: err.message }, "mqtt: session store error"));
  const persistence = new AsyncRedisPersistence({
    conn,
    packetTTL: () => QUEUED_PACKET_TTL_S,
  });
  // A resumed session is its queued messages only, not its subscriptions: Aedes would
  // answer session-present 1, which the MicroPython client takes for a refusal (it
  // accepts only CONNACK 20 02 00 00), and devices subscribe again after every connect
  // anyway (each one checked afresh). The subscriptions stay stored: messages published
  // while the device is away are still queued for it [MQTT-3.1.2-5].
  const storedSubscriptions = persistence.subscriptionsByClient.bind(persistence);
  persistence.subscriptionsByClient = async () => [];
  // What a clean session (or a deleted unit) removes: the stored ones, not the none above.
  persistence.cleanSubscriptions = async (client) => {
    const topics = (await storedSubscriptions(client)).map((s) => s.topic);
    if (topics.length) await persistence.removeSubscriptions(client, topics);
  };
  // Aedes 1.x pipes this one (`.pipe`); the 11.2 store returns a bare async generator.
  const retainedCombi = persistence.createRetainedStreamCombi.bind(persistence);
  persistence.createRetainedStreamCombi = (patterns) => Readable.from(retainedCombi(patterns));

  const redis = new Redis(cluster.redisUrl, { keyPrefix: `${cluster.namespace}:` });
  redis.on("error", (err) => log.error({ reason: err.message }, "mqtt: cluster presence error"));

  let closed = false;
  return {
    mq,
    persistence,
    redis,
    maxTopicLevels: (configured) => Math.min(configured, 99),
    forgetSession: (clientId) => persistence.cleanSubscriptions({ id: clientId }),
    async close() {
      if (closed) return;
      closed = true;
      await new Promise<void>((resolve) => mq.close(resolve));
      // destroy() unsubscribes from `mq` (already closed with Aedes) and disconnects.
      await persistence.destroy().catch(() => conn.disconnect());
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
