import type { Logger } from "pino";
import type { DbLike } from "../db/database.ts";
import type { DomainEvents, EventBus } from "../events.ts";
import { loadAclSnapshot, loadAclUnit, type TemplateCache } from "./acl.store.ts";
import { AclIndex } from "./acl-index.ts";

// Keeps the access index in step with the domain events. Removals and edges are
// applied synchronously inside the emit, i.e. before the HTTP response that caused
// them: revocation is effective at once. Additions that need the database (a new
// unit, a version change) reload the unit asynchronously; authorization waits for
// such a reload (settled()) before deciding, so nothing is refused for being new.

export type AclSync = {
  index: AclIndex;
  start(): Promise<void>;
  stop(): void;
  /** Null when no reload is in flight (the synchronous fast path), else a promise for their end. */
  settled(): Promise<void> | null;
  /** Makes sure a unit is indexed (loading it if needed); false when it does not exist. */
  ensureUnit(unitUuid: string): Promise<boolean>;
  /** Re-reads everything; skipped when an event changed the index meanwhile. */
  rebuild(): Promise<void>;
};

export type AclSyncDeps = {
  db: DbLike;
  events: EventBus;
  templates: TemplateCache;
  log: Logger;
  /** Called after every change of the index: the broker re-checks live subscriptions. */
  onChanged(): void;
  /** Full re-read period (a safety net for changes no event announces). */
  rebuildIntervalMs?: number;
};

export function createAclSync(deps: AclSyncDeps): AclSync {
  const { db, events, templates, log } = deps;
  const index = new AclIndex();
  // Uuids are never reused, so a deletion seen once wins over any older read.
  const deletedUnits = new Set<string>();
  const deletedNodes = new Set<string>();
  const chains = new Map<string, Promise<void>>();
  let generation = 0;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const changed = () => {
    generation++;
    try {
      deps.onChanged();
    } catch (err) {
      log.error({ err }, "mqtt: enforcing access changes failed");
    }
  };

  async function reload(unitUuid: string): Promise<void> {
    const found = await loadAclUnit(db, templates, unitUuid);
    if (stopped || deletedUnits.has(unitUuid)) return;
    if (!found) {
      index.removeUnit(unitUuid);
    } else {
      index.putUnit(
        found.unit,
        found.nodes.filter((n) => !deletedNodes.has(n.uuid)),
      );
    }
    changed();
  }

  /** Reloads of one unit run one after another, so the last read is the newest. */
  function scheduleReload(unitUuid: string): Promise<void> {
    const prev = chains.get(unitUuid) ?? Promise.resolve();
    const next = prev
      .then(() => reload(unitUuid))
      .catch((err: unknown) =>
        log.error({ err, unitUuid }, "mqtt: reloading a unit's access failed"),
      );
    chains.set(unitUuid, next);
    void next.finally(() => {
      if (chains.get(unitUuid) === next) chains.delete(unitUuid);
    });
    return next;
  }

  // Listeners run inside the emitting route: they must never throw into it.
  function on<K extends keyof DomainEvents>(
    name: K,
    handler: (...args: DomainEvents[K]) => void,
  ): () => void {
    const safe = (...args: DomainEvents[K]) => {
      try {
        handler(...args);
      } catch (err) {
        log.error({ err, event: name }, "mqtt: access index update failed");
      }
    };
    // Cast: EventEmitter's generic listener type does not narrow through K.
    events.on(name, safe as never);
    return () => events.off(name, safe as never);
  }

  const unsubscribers: Array<() => void> = [];

  async function rebuild(): Promise<void> {
    const startGen = generation;
    const snapshot = await loadAclSnapshot(db, templates);
    if (stopped || generation !== startGen) return;
    index.replaceAll(snapshot);
    deletedUnits.clear();
    deletedNodes.clear();
    changed();
  }

  return {
    index,
    async start() {
      unsubscribers.push(
        on("unit.created", ({ unitUuid }) => void scheduleReload(unitUuid)),
        on("unit.updated", ({ unitUuid }) => void scheduleReload(unitUuid)),
        on("unit-node.updated", ({ unitUuid }) => void scheduleReload(unitUuid)),
        on("unit-nodes.changed", ({ unitUuid, added, removed }) => {
          for (const uuid of removed) deletedNodes.add(uuid);
          if (removed.length) {
            index.removeNodes(removed);
            changed();
          }
          if (added.length) void scheduleReload(unitUuid);
        }),
        on("unit.deleted", ({ unitUuid }) => {
          deletedUnits.add(unitUuid);
          index.removeUnit(unitUuid);
          changed();
        }),
        on("edge.created", (e) => {
          if (deletedNodes.has(e.outputUuid) || deletedNodes.has(e.inputUuid)) return;
          index.addEdge({ uuid: e.edgeUuid, outputUuid: e.outputUuid, inputUuid: e.inputUuid });
          changed();
        }),
        on("edge.deleted", (e) => {
          index.removeEdge(e.edgeUuid);
          changed();
        }),
      );
      await rebuild();
      const period = deps.rebuildIntervalMs ?? 60_000;
      timer = setInterval(() => {
        rebuild().catch((err: unknown) => log.error({ err }, "mqtt: access index rebuild failed"));
      }, period);
      timer.unref();
    },
    stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      for (const off of unsubscribers.splice(0)) off();
    },
    settled() {
      if (chains.size === 0) return null;
      return Promise.all([...chains.values()]).then(() => undefined);
    },
    async ensureUnit(unitUuid) {
      if (index.units.has(unitUuid)) {
        const pending = chains.get(unitUuid);
        if (pending) await pending;
        return index.units.has(unitUuid);
      }
      if (deletedUnits.has(unitUuid)) return false;
      await (chains.get(unitUuid) ?? scheduleReload(unitUuid));
      return index.units.has(unitUuid);
    },
    rebuild,
  };
}
