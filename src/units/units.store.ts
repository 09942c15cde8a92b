import { and, asc, count, desc, eq, exists, ilike, inArray, or, type SQL } from "drizzle-orm";
import { alias, type PgColumn } from "drizzle-orm/pg-core";
import type { Principal } from "../access/principal.ts";
import { isAdmin, visibleLevels } from "../access/visibility.ts";
import type { DbLike } from "../db/database.ts";
import { repos, unitNodeEdges, unitNodes, units, type Visibility } from "../db/schema.ts";

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
export async function clampUnitNodes(
  db: DbLike,
  unitUuid: string,
  visibility: Visibility,
): Promise<string[]> {
  const tooOpen: Visibility[] =
    visibility === "Private" ? ["Internal", "Public"] : visibility === "Internal" ? ["Public"] : [];
  if (!tooOpen.length) return [];
  const rows = await db
    .update(unitNodes)
    .set({ visibility })
    .where(and(eq(unitNodes.unitUuid, unitUuid), inArray(unitNodes.visibility, tooOpen)))
    .returning({ uuid: unitNodes.uuid });
  return rows.map((r) => r.uuid);
}

/** A unique index refused the write (PostgreSQL 23505; drizzle wraps the driver error). */
export function isUniqueViolation(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 4; depth++) {
    if ((e as { code?: unknown }).code === "23505") return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** SQL twin of canSee(): rows whose visibility the principal sees, or that it owns. */
export function visibleTo(p: Principal, visibility: PgColumn, creator: PgColumn): SQL | undefined {
  if (isAdmin(p)) return undefined;
  const byLevel = inArray(visibility, visibleLevels(p));
  const owner = p.kind === "user" ? p.uuid : p.kind === "unit" ? p.creatorUuid : null;
  return owner ? or(byLevel, eq(creator, owner)) : byLevel;
}

/** `%` and `_` typed by a user are literal characters, not wildcards. */
export function likePattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

export type UnitListFilter = {
  repoUuid?: string | undefined;
  creatorUuid?: string | undefined;
  visibility?: Visibility[] | undefined;
  search?: string | undefined;
  /** Units owning any of these variables (only variables the caller may see count). */
  unitNodeUuids?: string[] | undefined;
  orderByName?: "asc" | "desc" | undefined;
  orderByCreateDate?: "asc" | "desc" | undefined;
  limit: number;
  offset: number;
};

export async function listUnits(
  db: DbLike,
  p: Principal,
  f: UnitListFilter,
): Promise<{ count: number; rows: UnitRow[] }> {
  const conds: Array<SQL | undefined> = [visibleTo(p, units.visibility, units.creatorUuid)];
  if (f.repoUuid) conds.push(eq(units.repoUuid, f.repoUuid));
  if (f.creatorUuid) conds.push(eq(units.creatorUuid, f.creatorUuid));
  if (f.visibility?.length) conds.push(inArray(units.visibility, f.visibility));
  if (f.search) conds.push(ilike(units.name, likePattern(f.search)));
  if (f.unitNodeUuids?.length) {
    conds.push(
      exists(
        db
          .select({ one: unitNodes.uuid })
          .from(unitNodes)
          .where(
            and(
              eq(unitNodes.unitUuid, units.uuid),
              inArray(unitNodes.uuid, f.unitNodeUuids),
              visibleTo(p, unitNodes.visibility, units.creatorUuid),
            ),
          ),
      ),
    );
  }
  const where = and(...conds);
  const order = [];
  if (f.orderByName) order.push(f.orderByName === "asc" ? asc(units.name) : desc(units.name));
  order.push(
    f.orderByCreateDate === "asc" ? asc(units.createdAt) : desc(units.createdAt),
    asc(units.uuid),
  );
  const [total] = await db.select({ n: count() }).from(units).where(where);
  const rows = await db
    .select()
    .from(units)
    .where(where)
    .orderBy(...order)
    .limit(f.limit)
    .offset(f.offset);
  return { count: total?.n ?? 0, rows };
}
