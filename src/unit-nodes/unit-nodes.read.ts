import type { Principal } from "../access/principal.ts";
import { canSee } from "../access/visibility.ts";
import type { CachedNode, ReadModel, UnitView } from "../read-model/read-model.ts";
import type { UnitNodeListFilter, UnitNodeRow } from "./unit-nodes.store.ts";

// GET /unit_nodes from the read model (src/read-model/): listUnitNodes' rules and order
// (creation time in microseconds, uuid breaking ties) over the units held in memory.

type Owned = CachedNode & { unit: Pick<UnitView, "visibility" | "creatorUuid"> };

const byUuid = (a: Owned, b: Owned) =>
  a.row.uuid < b.row.uuid ? -1 : a.row.uuid > b.row.uuid ? 1 : 0;
const sorted = new WeakMap<ReadModel, { rev: number; asc: Owned[]; desc: Owned[] }>();

async function nodesInOrder(rm: ReadModel, order: "asc" | "desc"): Promise<Owned[]> {
  const units = await rm.units();
  const rev = rm.unitsRevision();
  let memo = sorted.get(rm);
  if (!memo || memo.rev !== rev) {
    const all: Owned[] = [];
    for (const u of units) for (const n of u.nodes) all.push({ ...n, unit: u.row });
    const asc = all.sort((a, b) => a.createdUs - b.createdUs || byUuid(a, b));
    const desc = [...asc].sort((a, b) => b.createdUs - a.createdUs || byUuid(a, b));
    memo = { rev, asc, desc };
    sorted.set(rm, memo);
  }
  return memo[order];
}

/** null when the query needs the database (the inputs linked from an output: edges). */
export async function listCachedUnitNodes(
  rm: ReadModel,
  p: Principal,
  f: UnitNodeListFilter,
): Promise<{ count: number; rows: UnitNodeRow[] } | null> {
  if (f.outputUuid) return null;
  const levels = f.visibility?.length ? new Set(f.visibility) : null;
  const matching = (await nodesInOrder(rm, f.order)).filter(
    ({ row, unit }) =>
      canSee(p, unit.visibility, unit.creatorUuid) &&
      canSee(p, row.visibility, unit.creatorUuid) &&
      (!f.unitUuid || row.unitUuid === f.unitUuid) &&
      (!f.type || row.type === f.type) &&
      (!levels || levels.has(row.visibility)),
  );
  return {
    count: matching.length,
    rows: matching.slice(f.offset, f.offset + f.limit).map((n) => n.row),
  };
}
