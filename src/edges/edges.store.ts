import { and, asc, count, eq, inArray, or, type SQL, sql } from "drizzle-orm";
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

export type ListedEdge = EdgeRow & {
  /** False when the caller sees the link only as its output's owner, not its input. */
  inputVisible: boolean;
};

/**
 * Edges whose both ends the caller may see, plus every edge out of the caller's own
 * outputs (the owner may always see and cut what flows out of them; the input side is
 * then shown only as far as the caller may see it). Oldest first.
 */
export async function listEdges(
  db: DbLike,
  p: Principal,
  f: EdgeListFilter,
): Promise<{ count: number; rows: ListedEdge[] }> {
  const seesInput = and(
    visibleTo(p, inUnit.visibility, inUnit.creatorUuid),
    visibleTo(p, inNode.visibility, inUnit.creatorUuid),
  );
  const seesBoth = and(
    seesInput,
    visibleTo(p, outUnit.visibility, outUnit.creatorUuid),
    visibleTo(p, outNode.visibility, outUnit.creatorUuid),
  );
  const conds: Array<SQL | undefined> = [
    p.kind === "user" && seesBoth ? or(seesBoth, eq(outUnit.creatorUuid, p.uuid)) : seesBoth,
  ];
  if (f.unitUuid) conds.push(or(eq(inNode.unitUuid, f.unitUuid), eq(outNode.unitUuid, f.unitUuid)));
  if (f.outputUuid) conds.push(eq(unitNodeEdges.outputUuid, f.outputUuid));
  if (f.inputUuid) conds.push(eq(unitNodeEdges.inputUuid, f.inputUuid));
  const where = and(...conds);
  const [total] = await db
    .select({ n: count() })
    .from(unitNodeEdges)
    .innerJoin(inNode, eq(inNode.uuid, unitNodeEdges.inputUuid))
    .innerJoin(inUnit, eq(inUnit.uuid, inNode.unitUuid))
    .innerJoin(outNode, eq(outNode.uuid, unitNodeEdges.outputUuid))
    .innerJoin(outUnit, eq(outUnit.uuid, outNode.unitUuid))
    .where(where);
  const rows = await db
    .select({
      edge: unitNodeEdges,
      inputVisible: seesInput ? sql<boolean>`(${seesInput})` : sql<boolean>`true`,
    })
    .from(unitNodeEdges)
    .innerJoin(inNode, eq(inNode.uuid, unitNodeEdges.inputUuid))
    .innerJoin(inUnit, eq(inUnit.uuid, inNode.unitUuid))
    .innerJoin(outNode, eq(outNode.uuid, unitNodeEdges.outputUuid))
    .innerJoin(outUnit, eq(outUnit.uuid, outNode.unitUuid))
    .where(where)
    .orderBy(asc(unitNodeEdges.createdAt), asc(unitNodeEdges.uuid))
    .limit(f.limit)
    .offset(f.offset);
  return {
    count: total?.n ?? 0,
    rows: rows.map((r) => ({ ...r.edge, inputVisible: Boolean(r.inputVisible) })),
  };
}

/** Local links out of any output of these units, with what deciding their access needs. */
export async function edgesOutOfUnits(db: DbLike, unitUuids: string[]) {
  if (!unitUuids.length) return [];
  return db
    .select({
      edgeUuid: unitNodeEdges.uuid,
      outputUuid: unitNodeEdges.outputUuid,
      inputUuid: unitNodeEdges.inputUuid,
      inputUnit: { uuid: inUnit.uuid, creatorUuid: inUnit.creatorUuid },
      output: {
        unitVisibility: outUnit.visibility,
        nodeVisibility: outNode.visibility,
        ownerUuid: outUnit.creatorUuid,
      },
    })
    .from(unitNodeEdges)
    .innerJoin(outNode, eq(outNode.uuid, unitNodeEdges.outputUuid))
    .innerJoin(outUnit, eq(outUnit.uuid, outNode.unitUuid))
    .innerJoin(inNode, eq(inNode.uuid, unitNodeEdges.inputUuid))
    .innerJoin(inUnit, eq(inUnit.uuid, inNode.unitUuid))
    .where(inArray(outNode.unitUuid, unitUuids));
}

/** Deletes these edges; returns the uuids actually removed (a concurrent delete may win). */
export async function deleteEdges(db: DbLike, uuids: string[]): Promise<string[]> {
  if (!uuids.length) return [];
  const rows = await db
    .delete(unitNodeEdges)
    .where(inArray(unitNodeEdges.uuid, uuids))
    .returning({ uuid: unitNodeEdges.uuid });
  return rows.map((r) => r.uuid);
}
