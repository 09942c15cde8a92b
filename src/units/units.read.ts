import type { Context, TypedResponse } from "hono";
import type { Principal } from "../access/principal.ts";
import { canSee } from "../access/visibility.ts";
import { notFound } from "../http/errors.ts";
import type { AppDeps } from "../http/types.ts";
import type { CachedUnit, ReadModel } from "../read-model/read-model.ts";
import { toUnitNodeOut } from "../unit-nodes/unit-nodes.schemas.ts";
import { readUnitEnv } from "./unit-artifacts.ts";
import { isSelfOrManager } from "./units.access.ts";
import { toUnitOut, type UnitOutT } from "./units.schemas.ts";
import type { UnitListFilter } from "./units.store.ts";

// The units' hot reads from the read model (src/read-model/), with the same access rules
// and the same answers as the database queries of units.store.ts / units.access.ts.

/** Read access by visibility; anything the caller may not see is a 404. */
export async function readVisibleUnit(
  rm: ReadModel,
  p: Principal,
  uuid: string,
): Promise<CachedUnit> {
  const unit = await rm.unit(uuid);
  if (!unit || !canSee(p, unit.row.visibility, unit.row.creatorUuid)) throw notFound("unit");
  return unit;
}

/** Device-plane access: the unit itself, its creator or an admin (else 404). */
export async function readUnitForDevice(
  rm: ReadModel,
  p: Principal,
  uuid: string,
): Promise<CachedUnit> {
  const unit = await rm.unit(uuid);
  if (!unit || !isSelfOrManager(p, unit.row)) throw notFound("unit");
  return unit;
}

/** serializeUnits' answer for one cached unit. */
export function cachedUnitOut(
  deps: Pick<AppDeps, "config" | "broker">,
  p: Principal,
  u: CachedUnit,
  outputsOnly = false,
): UnitOutT {
  const creator = u.row.creatorUuid;
  const nodes = [];
  for (const { row } of u.nodes) {
    if ((outputsOnly && row.type !== "Output") || !canSee(p, row.visibility, creator)) continue;
    nodes.push(toUnitNodeOut(deps.config.domain, row));
  }
  return toUnitOut(u.row, nodes, deps.broker.isOnline(u.row.uuid));
}

const VIEWS_PER_UNIT = 4;

/**
 * JSON.stringify(cachedUnitOut(...)), kept on the cached unit: the answer depends on the
 * unit, which of its variables the caller sees and whether it is online, nothing else.
 */
export function cachedUnitJson(
  deps: Pick<AppDeps, "config" | "broker">,
  p: Principal,
  u: CachedUnit,
  outputsOnly = false,
): string {
  const creator = u.row.creatorUuid;
  let key = deps.broker.isOnline(u.row.uuid) ? "1:" : "0:";
  for (const { row } of u.nodes) {
    key +=
      (outputsOnly && row.type !== "Output") || !canSee(p, row.visibility, creator) ? "0" : "1";
  }
  let json = u.json.get(key);
  if (json === undefined) {
    json = JSON.stringify(cachedUnitOut(deps, p, u, outputsOnly));
    if (u.json.size >= VIEWS_PER_UNIT) u.json.clear();
    u.json.set(key, json);
  }
  return json;
}

/** The env.json answer of a cached unit (readUnitEnv, serialized once per version of the unit). */
export function cachedEnvJson(deps: AppDeps, u: CachedUnit): string {
  u.envJson ??= JSON.stringify(readUnitEnv(deps, u.row));
  return u.envJson;
}

/**
 * An answer serialized beforehand, sent as c.json would send it (same bytes, same
 * content-type), accepted where the route's JSON answer is.
 */
export function jsonText(c: Context, text: string): Response & TypedResponse<never, 200, "json"> {
  const res: Response = c.body(text, 200, { "content-type": "application/json" });
  // never: the route's own JSON type accepts it (the text was made from that type).
  return res as Response & TypedResponse<never, 200, "json">;
}

const ASCII = /^[\x20-\x7e]*$/;
// Units newest first (the default) or oldest first, uuid breaking ties, per revision.
const sorted = new WeakMap<ReadModel, { rev: number; desc: CachedUnit[]; asc: CachedUnit[] }>();

async function unitsInOrder(rm: ReadModel, order: "asc" | "desc"): Promise<CachedUnit[]> {
  const all = await rm.units();
  const rev = rm.unitsRevision();
  let memo = sorted.get(rm);
  if (!memo || memo.rev !== rev) {
    const byUuid = (a: CachedUnit, b: CachedUnit) =>
      a.row.uuid < b.row.uuid ? -1 : a.row.uuid > b.row.uuid ? 1 : 0;
    const asc = [...all].sort((a, b) => a.createdUs - b.createdUs || byUuid(a, b));
    const desc = [...asc].sort((a, b) => b.createdUs - a.createdUs || byUuid(a, b));
    memo = { rev, asc, desc };
    sorted.set(rm, memo);
  }
  return memo[order];
}

/**
 * GET /units from memory (the JSON text), or null when the query needs the database: ordering by name
 * follows the database's collation, and a non-ASCII search its case folding (names are ASCII).
 */
export async function listCachedUnits(
  deps: Pick<AppDeps, "config" | "broker">,
  rm: ReadModel,
  p: Principal,
  f: UnitListFilter,
  outputsOnly: boolean,
): Promise<string | null> {
  if (f.orderByName || (f.search && !ASCII.test(f.search))) return null;
  const ordered = await unitsInOrder(rm, f.orderByCreateDate === "asc" ? "asc" : "desc");
  // The same list for the same kind of caller and query, until a unit changes.
  const key = `${accessKey(p)}|${outputsOnly}|${JSON.stringify(f)}`;
  const changes = rm.unitsChanges();
  let lists = listCaches.get(rm);
  if (!lists) {
    lists = new Map();
    listCaches.set(rm, lists);
  }
  let cached = lists.get(key);
  if (!cached || cached.changes !== changes) {
    cached = { changes, matching: matchingUnits(ordered, p, f), online: "", text: "" };
    if (lists.size >= LISTS_KEPT) lists.clear();
    lists.set(key, cached);
  }
  const page = cached.matching.slice(f.offset, f.offset + f.limit);
  // Online state comes from the broker (and cluster presence), not from events: checked per answer.
  let online = "";
  for (const u of page) online += deps.broker.isOnline(u.row.uuid) ? "1" : "0";
  if (cached.online !== online || !cached.text) {
    // The bytes of c.json({ count, units }), from each unit's serialized answer.
    const units = page.map((u) => cachedUnitJson(deps, p, u, outputsOnly));
    cached.text = `{"count":${cached.matching.length},"units":[${units.join(",")}]}`;
    cached.online = online;
  }
  return cached.text;
}

/** What canSee depends on: admin, owner (a user or a unit acting for its creator), or anonymous. */
function accessKey(p: Principal): string {
  if (p.kind === "anonymous") return "anonymous";
  if (p.kind === "user" && p.role === "Admin") return "admin";
  return `owner:${p.kind === "unit" ? p.creatorUuid : p.uuid}`;
}

const LISTS_KEPT = 32;
type CachedList = {
  changes: number;
  matching: CachedUnit[];
  online: string;
  text: string;
};
// Per read model: the lists asked for lately, each with its last answer.
const listCaches = new WeakMap<ReadModel, Map<string, CachedList>>();

function matchingUnits(ordered: CachedUnit[], p: Principal, f: UnitListFilter): CachedUnit[] {
  const needle = f.search ? f.search.toLowerCase() : null;
  const levels = f.visibility?.length ? new Set(f.visibility) : null;
  const nodeUuids = f.unitNodeUuids?.length ? new Set(f.unitNodeUuids) : null;
  return ordered.filter(
    ({ row, nodes }) =>
      canSee(p, row.visibility, row.creatorUuid) &&
      (!f.repoUuid || row.repoUuid === f.repoUuid) &&
      (!f.creatorUuid || row.creatorUuid === f.creatorUuid) &&
      (!levels || levels.has(row.visibility)) &&
      (!needle || row.name.toLowerCase().includes(needle)) &&
      (!nodeUuids ||
        nodes.some(
          (n) => nodeUuids.has(n.row.uuid) && canSee(p, n.row.visibility, row.creatorUuid),
        )),
  );
}
