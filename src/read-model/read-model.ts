import { asc, getTableColumns, inArray, type SQL, sql } from "drizzle-orm";
import type { PgColumn } from "drizzle-orm/pg-core";
import type { DbLike } from "../db/database.ts";
import { repos, unitNodes, units } from "../db/schema.ts";
import type { DomainEvents, EventBus } from "../events.ts";
import type { RepoRow } from "../repos/repos.schemas.ts";
import { edgesIntoUnit, type UnitNodeRow, type UnitRow } from "../units/units.store.ts";
import { createEntityCache } from "./entity-cache.ts";

// The hot reads (GET /units/{uuid}, /units, /unit_nodes, the device's env, schema and
// target version, /repos/{uuid}) answered from memory. Domain events invalidate what a
// write changed and the next read reloads that entity (src/read-model/entity-cache.ts);
// in cluster mode the event bridge replays the other processes' events here, so their
// writes reach this cache too. Device data (last values, last seen) is patched in place
// from the ingest's "device-data.written": reloading a unit per published value would
// cost what the cache saves. The access check stays with each request.

/** A unit row without its state storage (written without an event, never a hot read). */
export type UnitView = Omit<UnitRow, "stateStorageEnc">;
/** `createdUs`: created_at in microseconds, the database's own ordering (JS dates keep ms). */
export type CachedNode = { row: UnitNodeRow; createdUs: number };
export type CachedUnit = {
  row: UnitView;
  createdUs: number;
  nodes: CachedNode[];
  /**
   * Answers already serialized (src/units/units.read.ts), by what they depend on besides
   * the unit: which variables the caller sees, online or not. Dropped with the entity on
   * reload and by every patch.
   */
  json: Map<string, string>;
  /** The device's env.json, serialized (decrypting it per request cost more than the rest). */
  envJson: string | null;
};
export type EdgeIntoUnit = Awaited<ReturnType<typeof edgesIntoUnit>>[number];

export type ReadModel = {
  unit(uuid: string): Promise<CachedUnit | undefined>;
  units(): Promise<Iterable<CachedUnit>>;
  /** Changes whenever a unit is added, replaced or dropped (memoized orderings follow it). */
  unitsRevision(): number;
  /** Changes with the revision and with every device-data patch (memoized answers follow it). */
  unitsChanges(): number;
  repo(uuid: string): Promise<RepoRow | undefined>;
  /** Edges into the unit's inputs in creation order (its schema.json's local links). */
  edgesInto(unitUuid: string): Promise<EdgeIntoUnit[]>;
  /** Everything reloads: events may have been missed (the cluster bridge reconnected). */
  invalidateAll(): void;
  /** Entities held (units, their variables, repos). */
  sizes(): { units: number; nodes: number; repos: number };
};

const CHUNK = 500;
const micros = (col: PgColumn): SQL<number> =>
  sql<number>`(extract(epoch from ${col}) * 1000000)::float8`.mapWith(Number);
const { stateStorageEnc: _unused, ...unitColumns } = getTableColumns(units);

async function inChunks<T>(keys: string[], run: (part: string[]) => Promise<T[]>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < keys.length; i += CHUNK) out.push(...(await run(keys.slice(i, i + CHUNK))));
  return out;
}

async function loadUnits(db: DbLike, keys: string[] | null): Promise<Map<string, CachedUnit>> {
  const unitQuery = (where: SQL | undefined) =>
    db
      .select({ row: unitColumns, createdUs: micros(units.createdAt) })
      .from(units)
      .where(where);
  // The order of serializeUnits' nodesOfUnits: creation, then type and name.
  const nodeQuery = (where: SQL | undefined) =>
    db
      .select({ row: unitNodes, createdUs: micros(unitNodes.createdAt) })
      .from(unitNodes)
      .where(where)
      .orderBy(asc(unitNodes.createdAt), asc(unitNodes.type), asc(unitNodes.topicName));
  const [rows, nodes] = keys
    ? await Promise.all([
        inChunks(keys, (part) => unitQuery(inArray(units.uuid, part))),
        inChunks(keys, (part) => nodeQuery(inArray(unitNodes.unitUuid, part))),
      ])
    : await Promise.all([unitQuery(undefined), nodeQuery(undefined)]);
  const out = new Map<string, CachedUnit>();
  for (const r of rows) {
    out.set(r.row.uuid, {
      row: r.row,
      createdUs: r.createdUs,
      nodes: [],
      json: new Map(),
      envJson: null,
    });
  }
  for (const n of nodes) out.get(n.row.unitUuid)?.nodes.push(n);
  return out;
}

async function loadRepos(db: DbLike, keys: string[] | null): Promise<Map<string, RepoRow>> {
  const rows = keys
    ? await inChunks(keys, (part) => db.select().from(repos).where(inArray(repos.uuid, part)))
    : await db.select().from(repos);
  return new Map(rows.map((r) => [r.uuid, r]));
}

export function createReadModel(deps: { db: DbLike; events: EventBus }): ReadModel {
  const { db, events } = deps;
  // Which unit a variable belongs to, for the ingest's value patches (kept as loaded).
  const nodeOwner = new Map<string, string>();
  const unitCache = createEntityCache<CachedUnit>({
    all: () => loadUnits(db, null).then(indexNodes),
    some: (keys) => loadUnits(db, keys).then(indexNodes),
  });
  function indexNodes(loaded: Map<string, CachedUnit>) {
    for (const u of loaded.values()) for (const n of u.nodes) nodeOwner.set(n.row.uuid, u.row.uuid);
    return loaded;
  }
  const repoCache = createEntityCache<RepoRow>({
    all: () => loadRepos(db, null),
    some: (keys) => loadRepos(db, keys),
  });
  const edgeCache = createEntityCache<EdgeIntoUnit[]>({
    all: () => Promise.reject(new Error("edges are read per unit")),
    async some(keys) {
      const out = new Map<string, EdgeIntoUnit[]>();
      for (const key of keys) out.set(key, await edgesIntoUnit(db, key));
      return out;
    },
  });

  const unitChanged = ({ unitUuid }: { unitUuid: string }) => unitCache.invalidate(unitUuid);
  events.on("unit.created", unitChanged);
  events.on("unit.updated", unitChanged);
  events.on("unit.token-rotated", unitChanged);
  events.on("unit.env-updated", unitChanged);
  events.on("unit.update-status", unitChanged);
  events.on("unit-node.updated", unitChanged);
  events.on("unit-node.data-pipe-changed", unitChanged);
  events.on("unit-nodes.changed", ({ unitUuid }) => {
    unitCache.invalidate(unitUuid);
    edgeCache.invalidate(unitUuid);
  });
  events.on("unit.deleted", ({ unitUuid }) => {
    unitCache.remove(unitUuid);
    // Its outputs' edges into other units went with it (a user's deletion names no edges).
    edgeCache.invalidateAll();
  });
  const edgeChanged = ({ inputUnitUuid }: { inputUnitUuid: string }) =>
    edgeCache.invalidate(inputUnitUuid);
  events.on("edge.created", edgeChanged);
  events.on("edge.deleted", edgeChanged);
  const repoChanged = ({ repoUuid }: { repoUuid: string }) => repoCache.invalidate(repoUuid);
  events.on("repo.created", repoChanged);
  events.on("repo.updated", repoChanged);
  events.on("repo.synced", repoChanged);
  events.on("repo.deleted", ({ repoUuid }) => repoCache.remove(repoUuid));
  events.on("device-data.written", (written) => applyDeviceData(written));
  events.on("cluster.events-missed", () => model.invalidateAll());

  function applyDeviceData({ seen, values, reload }: DomainEvents["device-data.written"][0]) {
    for (const unitUuid of reload ?? []) unitCache.invalidate(unitUuid);
    for (const [unitUuid, seenAt, commit, stateChanged] of seen) {
      // last_state is jsonb: the database's key order is the answer's, so it is reloaded.
      if (stateChanged) {
        unitCache.invalidate(unitUuid);
        continue;
      }
      unitCache.patch(unitUuid, ({ row, json }) => {
        json.clear();
        const at = new Date(seenAt);
        if (!row.lastSeenAt || row.lastSeenAt < at) row.lastSeenAt = at;
        if (commit !== null) row.currentCommit = commit;
      });
    }
    for (const [nodeUuid, value, at] of values) {
      const owner = nodeOwner.get(nodeUuid);
      unitCache.patch(owner ?? null, (u) => {
        const node = u.nodes.find((n) => n.row.uuid === nodeUuid);
        if (!node) return;
        u.json.clear();
        node.row.lastValue = value;
        node.row.lastValueAt = new Date(at);
      });
    }
  }

  const model: ReadModel = {
    unit: (uuid) => unitCache.get(uuid),
    units: () => unitCache.all(),
    unitsRevision: () => unitCache.revision(),
    unitsChanges: () => unitCache.changes(),
    repo: (uuid) => repoCache.get(uuid),
    async edgesInto(unitUuid) {
      return (await edgeCache.get(unitUuid)) ?? [];
    },
    invalidateAll() {
      unitCache.invalidateAll();
      repoCache.invalidateAll();
      edgeCache.invalidateAll();
      nodeOwner.clear();
    },
    sizes: () => ({ units: unitCache.size(), nodes: nodeOwner.size, repos: repoCache.size() }),
  };
  return model;
}
