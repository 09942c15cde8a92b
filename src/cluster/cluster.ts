import type { Logger } from "pino";
import type { Config } from "../config.ts";
import type { EventBus } from "../events.ts";
import { type EventBridge, startEventBridge } from "./event-bridge.ts";
import { createLocalLeadership, createLockLeadership, type Leadership } from "./leadership.ts";
import { type ClusterMember, type Presence, startPresence } from "./presence.ts";
import type { ClusterRole, RoleWorker } from "./roles.ts";

// Cluster mode (PEPEUNIT_CLUSTER_REDIS_URL): N identical processes on one PostgreSQL and
// one Redis behave as one instance. This module holds what the processes share besides
// the database and the broker's fabric (src/broker/): the event bridge, leadership of
// the once-only workers, and presence. Without it, the same interface describes the one
// process, which holds every role.

export type Cluster = {
  readonly nodeName: string;
  /** false: the single process (the default). */
  readonly enabled: boolean;
  /** Registers work that runs on exactly one process (before start()). */
  lead(role: ClusterRole, worker: RoleWorker): void;
  holds(role: ClusterRole): boolean;
  roles(): ClusterRole[];
  /** Every live process (just this one without cluster mode). */
  members(): Promise<ClusterMember[]>;
  /** Starts campaigning for the registered roles (single process: starts them all). */
  start(): Promise<void>;
  /** Gives up the roles (their workers stop) and leaves presence. */
  stop(): Promise<void>;
  /** Closes the event bridge (last: what the shutdown emits still reaches the others). */
  close(): Promise<void>;
};

export async function createCluster(opts: {
  config: Config;
  events: EventBus;
  log: Logger;
}): Promise<Cluster> {
  const { config, events, log } = opts;
  const nodeName = config.nodeName;
  const cluster = config.cluster;
  if (!cluster || !config.databaseUrl) {
    const leadership = createLocalLeadership(log);
    return {
      nodeName,
      enabled: false,
      lead: (role, worker) => leadership.register(role, worker),
      holds: (role) => leadership.holds(role),
      roles: () => leadership.held(),
      members: async () => [
        { node: nodeName, roles: leadership.held(), last_seen: new Date().toISOString() },
      ],
      start: () => leadership.start(),
      stop: () => leadership.stop(),
      close: async () => {},
    };
  }

  const bridge: EventBridge = await startEventBridge({
    events,
    redisUrl: cluster.redisUrl,
    channel: `${cluster.namespace}:events`,
    nodeName,
    log,
    onReconnect: () => {
      log.warn("cluster: the event bridge reconnected; events of the outage were not received");
      // What follows events reloads (the read model, src/read-model/).
      events.emit("cluster.events-missed", {});
    },
  });
  let presence: Presence | undefined;
  let leadership: Leadership | undefined;
  try {
    leadership = await createLockLeadership({
      databaseUrl: config.databaseUrl,
      log,
      onChange: () => void presence?.beat().catch(() => {}),
    });
    const lead = leadership;
    presence = await startPresence({
      redisUrl: cluster.redisUrl,
      namespace: cluster.namespace,
      nodeName,
      roles: () => lead.held(),
      log,
    });
  } catch (err) {
    await leadership?.stop();
    await bridge.stop();
    throw err;
  }
  const lead = leadership;
  const present = presence;
  log.info({ node: nodeName, namespace: cluster.namespace }, "cluster mode: joined");
  return {
    nodeName,
    enabled: true,
    lead: (role, worker) => lead.register(role, worker),
    holds: (role) => lead.holds(role),
    roles: () => lead.held(),
    members: () => present.members(),
    start: () => lead.start(),
    async stop() {
      await lead.stop();
      await present.stop();
    },
    close: () => bridge.stop(),
  };
}
