import { EventEmitter } from "node:events";
import type { AlertEventKind } from "./db/schema.ts";

// Domain events: features announce what changed; the broker, federation and UI
// live-updates react here instead of being called from every route.
export type DomainEvents = {
  "unit.created": [{ unitUuid: string }];
  "unit.updated": [{ unitUuid: string; versionChanged: boolean }];
  "unit.deleted": [{ unitUuid: string }];
  "unit.token-rotated": [{ unitUuid: string }];
  /** Every token of this user stopped being valid (blocked, password changed, deleted). */
  "user.revoked": [{ userUuid: string }];
  /**
   * One user token was revoked: a session's logout (`jti` is its JWT id, refused until it
   * expires) or a deleted personal access token (`jti` is the access token's uuid).
   */
  "user.token-revoked": [{ userUuid: string; jti: string }];
  /**
   * The user was blocked: besides their own tokens (user.revoked), their units' tokens are
   * refused on REST and MQTT until the user is unblocked (the tokens themselves stay).
   */
  "user.blocked": [{ userUuid: string }];
  "unit-nodes.changed": [{ unitUuid: string; added: string[]; removed: string[] }];
  "edge.created": [
    { edgeUuid: string; outputUuid: string; inputUuid: string; inputUnitUuid: string },
  ];
  "edge.deleted": [
    { edgeUuid: string; outputUuid: string; inputUuid: string; inputUnitUuid: string },
  ];
  "repo.synced": [{ repoUuid: string; changedBranches: string[] }];
  /** A variable's visibility or is_rewritable_input changed (the broker's access index follows). */
  "unit-node.updated": [{ unitUuid: string; nodeUuid: string }];
  /** A unit reported its state over MQTT; `commit` is its running pu_commit_version, if given. */
  "unit.state-received": [{ unitUuid: string; commit: string | null; state?: unknown }];
  /**
   * Device data the ingest (or set-input) just wrote: per unit [uuid, last seen (ISO),
   * current commit or null, whether last_state changed]; per variable [uuid, last value,
   * when (ISO)]. The read model (src/read-model/) patches what it holds; cluster: every process's.
   * `reload`: units whose device data another writer changed (set-input races the ingest's
   * flush on the same row: the database's order wins, so these are read back).
   */
  "device-data.written": [
    {
      seen: Array<[unitUuid: string, seenAt: string, commit: string | null, stateChanged: boolean]>;
      values: Array<[nodeUuid: string, value: string, at: string]>;
      reload?: string[];
    },
  ];
  /** The unit's first MQTT connection came up (online) or its last one went away (offline). */
  "unit.online": [{ unitUuid: string; online: boolean }];
  /** A repo was registered (its row exists). */
  "repo.created": [{ repoUuid: string }];
  /** A repo's settings or sync status changed (a successful sync also emits repo.synced). */
  "repo.updated": [{ repoUuid: string }];
  "repo.deleted": [{ repoUuid: string }];
  /** A unit published a value on one of its Output variables (the broker's ingest; federation relays it). */
  "unit-node.value": [{ nodeUuid: string; unitUuid: string; payload: Buffer }];
  /**
   * Any value seen on a variable's topic, Input or Output: a device's publish, set-input,
   * a remote value federation republished. The value history (src/history/) records it.
   */
  "unit-node.value-seen": [{ nodeUuid: string; unitUuid: string; payload: Buffer }];
  /** A variable's data pipe config or is_data_pipe_active changed (the history writer reloads it). */
  "unit-node.data-pipe-changed": [{ unitUuid: string; nodeUuid: string }];
  /**
   * Federation: remote edges into these units' inputs became active or went away (or were
   * suspended/restored): the broker re-checks subscriptions, the units get SchemaUpdate.
   */
  "federation.remote-edges.changed": [{ unitUuids: string[] }];
  /** Federation: a remote follower of an output was accepted or removed (cluster: the others reload). */
  "federation.followers-changed": [{ node: string }];
  /** OTA: a mass-update job was saved by a process that does not run the waves (cluster mode). */
  "ota.job-saved": [{ jobUuid: string }];
  /** A user edited the unit's env (PATCH /units/env): the device gets EnvUpdate. */
  "unit.env-updated": [{ unitUuid: string }];
  /**
   * OTA (src/ota/): an Update was sent (RequestSent) or its outcome is known (Success / Error).
   * `commit` is the target the unit was asked to run.
   */
  "unit.update-status": [
    {
      unitUuid: string;
      commit: string;
      status: "RequestSent" | "Success" | "Error";
      error: string | null;
    },
  ];
  /** An alert rule was created, edited or deleted (the evaluators reload it). */
  "alert-rule.changed": [{ ruleUuid: string; userUuid: string }];
  /**
   * A threshold rule's state (condition, last sent) was saved by the process that saw the
   * value (cluster: the others take it, so a device that moves keeps its rule's state).
   */
  "alert-rule.state-saved": [{ ruleUuid: string }];
  /** Cluster: the event bridge was down; this process missed the others' events meanwhile. */
  "cluster.events-missed": [Record<string, never>];
  /** An alert event was kept for this user (src/alerts/): a bell's unread count changed. */
  "alert.created": [{ userUuid: string; eventUuid: string; kind: AlertEventKind }];
};

export type DomainEventName = keyof DomainEvents;

/**
 * Values seen on topics: per message, far too many to cross processes, and only the
 * process that received the publish acts on them (ingest, history, federation relay).
 * A missed-events notice is about this process's own bridge connection.
 */
export const PROCESS_LOCAL_EVENTS: ReadonlySet<DomainEventName> = new Set([
  "unit-node.value",
  "unit-node.value-seen",
  "cluster.events-missed",
]);

/**
 * The domain event bus. In cluster mode (src/cluster/event-bridge.ts) every event but the
 * process-local ones also reaches the other processes: `onLocalEmit` hands each local
 * event to the bridge after the local listeners ran (a write is visible at once where
 * it was acknowledged), and `emitFromOtherProcess` replays another process's event here.
 * Caches and connections follow every event; work that must happen once (sending a
 * device command, deleting what a change invalidated) checks `fromOtherProcess`.
 */
export class EventBus extends EventEmitter<DomainEvents> {
  #remote = new WeakSet<object>();
  onLocalEmit: (<K extends DomainEventName>(name: K, payload: DomainEvents[K][0]) => void) | null =
    null;

  override emit<K extends DomainEventName>(name: K, ...args: DomainEvents[K]): boolean {
    const had = EventEmitter.prototype.emit.call(this, name, ...args);
    const payload = args[0];
    if (this.onLocalEmit && !this.#remote.has(payload) && !PROCESS_LOCAL_EVENTS.has(name)) {
      this.onLocalEmit(name, payload);
    }
    return had;
  }

  /** Replays an event another process emitted (its listeners here see it like a local one). */
  emitFromOtherProcess<K extends DomainEventName>(name: K, payload: DomainEvents[K][0]): void {
    this.#remote.add(payload);
    EventEmitter.prototype.emit.call(this, name, payload);
  }

  /** True when this event came over the bridge: the process that emitted it did the once-only work. */
  fromOtherProcess(payload: object): boolean {
    return this.#remote.has(payload);
  }
}

export function createEventBus(): EventBus {
  const bus = new EventBus();
  // Every feature follows the unit events (caches, broker, read model): more than Node's
  // default 10 listeners per event is the design, not a leak.
  bus.setMaxListeners(50);
  return bus;
}
