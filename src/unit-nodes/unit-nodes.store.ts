import { and, asc, count, desc, eq, inArray, type SQL } from "drizzle-orm";
import type { Principal } from "../access/principal.ts";
import { canSee } from "../access/visibility.ts";
import type { DbLike } from "../db/database.ts";
import {
  type UnitNodeType,
  unitNodeEdges,
  unitNodes,
  units,
  type Visibility,
} from "../db/schema.ts";
import { visibleTo } from "../units/units.store.ts";

export type UnitNodeRow = typeof unitNodes.$inferSelect;
export type OwningUnit = { uuid: string; creatorUuid: string; visibility: Visibility };

/** A variable with the access-relevant columns of its unit. */
export async function findNodeWithUnit(
  db: DbLike,
  uuid: string,
): Promise<{ node: UnitNodeRow; unit: OwningUnit } | undefined> {
  const [row] = await db
    .select({
      node: unitNodes,
      unit: { uuid: units.uuid, creatorUuid: units.creatorUuid, visibility: units.visibility },
    })
    .from(unitNodes)
    .innerJoin(units, eq(units.uuid, unitNodes.unitUuid))
    .where(eq(unitNodes.uuid, uuid));
  return row;
}

/** The variable when the principal may read it (its unit and itself visible), else undefined. */
export async function findVisibleNode(db: DbLike, p: Principal, uuid: string) {
  const found = await findNodeWithUnit(db, uuid);
  if (
    !found ||
    !canSee(p, found.unit.visibility, found.unit.creatorUuid) ||
    !canSee(p, found.node.visibility, found.unit.creatorUuid)
  ) {
    return undefined;
  }
  return found;
}

export type UnitNodeListFilter = {
  unitUuid?: string | undefined;
  type?: UnitNodeType | undefined;
  visibility?: Visibility[] | undefined;
  /** Only inputs linked from this output. */
  outputUuid?: string | undefined;
  order: "asc" | "desc";
  limit: number;
  offset: number;
};

/** Variables the caller may see (the variable and its unit both visible). */
export async function listUnitNodes(
  db: DbLike,
  p: Principal,
  f: UnitNodeListFilter,
): Promise<{ count: number; rows: UnitNodeRow[] }> {
  const conds: Array<SQL | undefined> = [
    visibleTo(p, units.visibility, units.creatorUuid),
    visibleTo(p, unitNodes.visibility, units.creatorUuid),
  ];
  if (f.unitUuid) conds.push(eq(unitNodes.unitUuid, f.unitUuid));
  if (f.type) conds.push(eq(unitNodes.type, f.type));
  if (f.visibility?.length) conds.push(inArray(unitNodes.visibility, f.visibility));
  if (f.outputUuid) {
    conds.push(
      inArray(
        unitNodes.uuid,
        db
          .select({ uuid: unitNodeEdges.inputUuid })
          .from(unitNodeEdges)
          .where(eq(unitNodeEdges.outputUuid, f.outputUuid)),
      ),
    );
  }
  const where = and(...conds);
  const [total] = await db
    .select({ n: count() })
    .from(unitNodes)
    .innerJoin(units, eq(units.uuid, unitNodes.unitUuid))
    .where(where);
  const rows = await db
    .select({ node: unitNodes })
    .from(unitNodes)
    .innerJoin(units, eq(units.uuid, unitNodes.unitUuid))
    .where(where)
    .orderBy(
      f.order === "asc" ? asc(unitNodes.createdAt) : desc(unitNodes.createdAt),
      asc(unitNodes.uuid),
    )
    .limit(f.limit)
    .offset(f.offset);
  return { count: total?.n ?? 0, rows: rows.map((r) => r.node) };
}
