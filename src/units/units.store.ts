import { and, asc, eq, inArray } from "drizzle-orm";
import { alias } from "drizzle-orm/pg-core";
import type { DbLike } from "../db/database.ts";
import { repos, unitNodeEdges, unitNodes, units } from "../db/schema.ts";

export type UnitRow = typeof units.$inferSelect;
export type UnitNodeRow = typeof unitNodes.$inferSelect;
export type RepoRow = typeof repos.$inferSelect;

export async function findUnit(db: DbLike, uuid: string): Promise<UnitRow | undefined> {
  const [u] = await db.select().from(units).where(eq(units.uuid, uuid));
  return u;
}

export async function findUnitByName(db: DbLike, name: string): Promise<UnitRow | undefined> {
  const [u] = await db.select().from(units).where(eq(units.name, name));
  return u;
}

export async function findRepo(db: DbLike, uuid: string): Promise<RepoRow | undefined> {
  const [r] = await db.select().from(repos).where(eq(repos.uuid, uuid));
  return r;
}

/** Variables of the given units, oldest first (stable order for the UI and devices). */
export async function nodesOfUnits(db: DbLike, unitUuids: string[]): Promise<UnitNodeRow[]> {
  if (!unitUuids.length) return [];
  return db
    .select()
    .from(unitNodes)
    .where(inArray(unitNodes.unitUuid, unitUuids))
    .orderBy(asc(unitNodes.createdAt), asc(unitNodes.type), asc(unitNodes.topicName));
}

const outputNode = alias(unitNodes, "output_node");

/** Edges into the unit's inputs in creation order, with each output's topic name. */
export async function edgesIntoUnit(db: DbLike, unitUuid: string) {
  return db
    .select({
      uuid: unitNodeEdges.uuid,
      inputUuid: unitNodeEdges.inputUuid,
      outputUuid: unitNodeEdges.outputUuid,
      outputTopicName: outputNode.topicName,
    })
    .from(unitNodeEdges)
    .innerJoin(unitNodes, eq(unitNodes.uuid, unitNodeEdges.inputUuid))
    .innerJoin(outputNode, eq(outputNode.uuid, unitNodeEdges.outputUuid))
    .where(eq(unitNodes.unitUuid, unitUuid))
    .orderBy(asc(unitNodeEdges.createdAt), asc(unitNodeEdges.uuid));
}

/** Lowers the unit's variables that are more open than `visibility` (a parent was closed). */
export async function clampUnitNodes(db: DbLike, unitUuid: string, visibility: UnitRow["visibility"]) {
  const tooOpen = visibility === "Private" ? ["Internal", "Public"] : visibility === "Internal" ? ["Public"] : [];
  if (!tooOpen.length) return;
  await db
    .update(unitNodes)
    .set({ visibility })
    .where(and(eq(unitNodes.unitUuid, unitUuid), inArray(unitNodes.visibility, tooOpen as UnitRow["visibility"][])));
}
