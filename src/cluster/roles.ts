/**
 * Work that runs on exactly one process of a cluster at a time (src/cluster/leadership.ts).
 * The index is the role's advisory-lock key: append new roles, never reorder.
 */
export const CLUSTER_ROLES = [
  "sync", // repo sync worker (src/repos/sync-worker.ts)
  "ota", // OTA tracker restore and mass-update waves (src/ota/)
  "federation-queue", // federation delivery queue consumer (src/federation/)
  "history", // closing due Aggregation windows (src/history/)
  "telegram", // the Telegram bot's poller or webhook registration (src/telegram/)
  "backups", // scheduled backups (src/backup/)
  "alerts", // offline-unit alerts (src/alerts/unit-watch.ts)
] as const;

export type ClusterRole = (typeof CLUSTER_ROLES)[number];

/** What runs while this process holds a role. */
export type RoleWorker = {
  start(): Promise<void> | void;
  /** Must not throw; waits for the work in progress. */
  stop(): Promise<void> | void;
};
