import { eq } from "drizzle-orm";
import type { DbLike } from "../db/database.ts";
import { repos, unitNodes, units, type Visibility } from "../db/schema.ts";

// The few columns the live channel needs to decide who may see an entity.

export type OwnedEntry = { visibility: Visibility; creatorUuid: string };
export type UnitEntry = OwnedEntry & { repoUuid: string };
export type NodeEntry = { unitUuid: string; visibility: Visibility };

const unitCols = {
  uuid: units.uuid,
  visibility: units.visibility,
  creatorUuid: units.creatorUuid,
  repoUuid: units.repoUuid,
};
const nodeCols = {
  uuid: unitNodes.uuid,
  unitUuid: unitNodes.unitUuid,
  visibility: unitNodes.visibility,
};
const repoCols = { uuid: repos.uuid, visibility: repos.visibility, creatorUuid: repos.creatorUuid };

export async function loadAllEntries(db: DbLike) {
  const [u, n, r] = await Promise.all([
    db.select(unitCols).from(units),
    db.select(nodeCols).from(unitNodes),
    db.select(repoCols).from(repos),
  ]);
  return { units: u, nodes: n, repos: r };
}

export async function loadUnitEntry(db: DbLike, unitUuid: string) {
  const [unit] = await db.select(unitCols).from(units).where(eq(units.uuid, unitUuid));
  if (!unit) return null;
  const nodes = await db.select(nodeCols).from(unitNodes).where(eq(unitNodes.unitUuid, unitUuid));
  return { unit, nodes };
}

export async function loadRepoEntry(db: DbLike, repoUuid: string) {
  const [repo] = await db.select(repoCols).from(repos).where(eq(repos.uuid, repoUuid));
  return repo ?? null;
}
