import { and, asc, count, eq, or, type SQL } from "drizzle-orm";
import { alias } from "drizzle-orm/pg-core";
import type { Principal } from "../access/principal.ts";
import type { DbLike } from "../db/database.ts";
import { unitNodeEdges, unitNodes, units } from "../db/schema.ts";
import { visibleTo } from "../units/units.store.ts";

export type EdgeRow = typeof unitNodeEdges.$inferSelect;

export async function findEdge(db: DbLike, uuid: string): Promise<EdgeRow | undefined> {
  const [e] = await db.select().from(unitNodeEdges).where(eq(unitNodeEdges.uuid, uuid));
  return e;
}

export async function findEdgeByPair(db: DbLike, outputUuid: string, inputUuid: string) {
  const [e] = await db
    .select()
    .from(unitNodeEdges)
    .where(and(eq(unitNodeEdges.outputUuid, outputUuid), eq(unitNodeEdges.inputUuid, inputUuid)));
  return e;
}

const inNode = alias(unitNodes, "in_node");
const inUnit = alias(units, "in_unit");
const outNode = alias(unitNodes, "out_node");
const outUnit = alias(units, "out_unit");

export type EdgeListFilter = {
  unitUuid?: string | undefined;
  outputUuid?: string | undefined;
  inputUuid?: string | undefined;
  limit: number;
  offset: number;
};

/** Edges whose both ends the caller may see, oldest first. */
export async function listEdges(
  db: DbLike,
  p: Principal,
  f: EdgeListFilter,
): Promise<{ count: number; rows: EdgeRow[] }> {
  const conds: Array<SQL | undefined> = [
    visibleTo(p, inUnit.visibility, inUnit.creatorUuid),
    visibleTo(p, inNode.visibility, inUnit.creatorUuid),
    visibleTo(p, outUnit.visibility, outUnit.creatorUuid),
    visibleTo(p, outNode.visibility, outUnit.creatorUuid),
  ];
  if (f.unitUuid) conds.push(or(eq(inNode.unitUuid, f.unitUuid), eq(outNode.unitUuid, f.unitUuid)));
  if (f.outputUuid) conds.push(eq(unitNodeEdges.outputUuid, f.outputUuid));
  if (f.inputUuid) conds.push(eq(unitNodeEdges.inputUuid, f.inputUuid));
  const where = and(...conds);
  const base = () =>
    db
      .select({ edge: unitNodeEdges })
      .from(unitNodeEdges)
      .innerJoin(inNode, eq(inNode.uuid, unitNodeEdges.inputUuid))
      .innerJoin(inUnit, eq(inUnit.uuid, inNode.unitUuid))
      .innerJoin(outNode, eq(outNode.uuid, unitNodeEdges.outputUuid))
      .innerJoin(outUnit, eq(outUnit.uuid, outNode.unitUuid));
  const [total] = await db
    .select({ n: count() })
    .from(unitNodeEdges)
    .innerJoin(inNode, eq(inNode.uuid, unitNodeEdges.inputUuid))
    .innerJoin(inUnit, eq(inUnit.uuid, inNode.unitUuid))
    .innerJoin(outNode, eq(outNode.uuid, unitNodeEdges.outputUuid))
    .innerJoin(outUnit, eq(outUnit.uuid, outNode.unitUuid))
    .where(where);
  const rows = await base()
    .where(where)
    .orderBy(asc(unitNodeEdges.createdAt), asc(unitNodeEdges.uuid))
    .limit(f.limit)
    .offset(f.offset);
  return { count: total?.n ?? 0, rows: rows.map((r) => r.edge) };
}
