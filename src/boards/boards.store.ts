import { and, count, desc, eq, inArray } from "drizzle-orm";
import type { DbLike } from "../db/database.ts";
import { boards, unitNodes, units } from "../db/schema.ts";

export type BoardRow = typeof boards.$inferSelect;

export async function findOwnBoard(
  db: DbLike,
  ownerUuid: string,
  uuid: string,
): Promise<BoardRow | undefined> {
  const [row] = await db
    .select()
    .from(boards)
    .where(and(eq(boards.uuid, uuid), eq(boards.creatorUuid, ownerUuid)));
  return row;
}

export async function listOwnBoards(
  db: DbLike,
  ownerUuid: string,
  page: { limit: number; offset: number },
): Promise<{ count: number; rows: BoardRow[] }> {
  const where = eq(boards.creatorUuid, ownerUuid);
  const [total] = await db.select({ n: count() }).from(boards).where(where);
  const rows = await db
    .select()
    .from(boards)
    .where(where)
    .orderBy(desc(boards.createdAt), desc(boards.uuid))
    .limit(page.limit)
    .offset(page.offset);
  return { count: total?.n ?? 0, rows };
}

/** Variables with their unit's access columns and name, for any visibility check. */
export async function nodesWithUnits(db: DbLike, nodeUuids: string[]) {
  if (!nodeUuids.length) return [];
  return db
    .select({
      node: unitNodes,
      unit: {
        uuid: units.uuid,
        name: units.name,
        creatorUuid: units.creatorUuid,
        visibility: units.visibility,
      },
    })
    .from(unitNodes)
    .innerJoin(units, eq(units.uuid, unitNodes.unitUuid))
    .where(inArray(unitNodes.uuid, nodeUuids));
}
