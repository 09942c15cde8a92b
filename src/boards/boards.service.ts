import { randomUUID } from "node:crypto";
import { eq } from "drizzle-orm";
import type { Principal } from "../access/principal.ts";
import { canSee } from "../access/visibility.ts";
import type { DbLike } from "../db/database.ts";
import { type BoardItem, boards } from "../db/schema.ts";
import { unprocessable } from "../http/errors.ts";
import type { UnitNodeRow } from "../unit-nodes/unit-nodes.store.ts";
import type { BoardItemInT } from "./boards.schemas.ts";
import { type BoardRow, nodesWithUnits } from "./boards.store.ts";

// A board is its owner's: only they read or change it. Its items are shown with the
// owner's current access, so a variable that became hidden reads "unavailable".

type User = Extract<Principal, { kind: "user" }>;

/** A board item as its owner may see it now: `node` only when visible. */
export type ResolvedItem = {
  item: BoardItem;
  node: UnitNodeRow | undefined;
  unitName: string | undefined;
};

export async function resolveItems(
  db: DbLike,
  p: Principal,
  items: BoardItem[],
): Promise<ResolvedItem[]> {
  const rows = await nodesWithUnits(
    db,
    items.map((i) => i.unitNodeUuid),
  );
  const visible = new Map(
    rows
      .filter(
        (r) =>
          canSee(p, r.unit.visibility, r.unit.creatorUuid) &&
          canSee(p, r.node.visibility, r.unit.creatorUuid),
      )
      .map((r) => [r.node.uuid, r]),
  );
  return items.map((item) => {
    const found = visible.get(item.unitNodeUuid);
    return { item, node: found?.node, unitName: found?.unit.name };
  });
}

/** Every item names a variable the user sees now; values only on Inputs. */
async function checkItems(db: DbLike, user: User, input: BoardItemInT[]): Promise<BoardItem[]> {
  const items = input.map((i) => ({
    unitNodeUuid: i.unit_node_uuid,
    label: i.label ?? null,
    values: i.values ?? [],
  }));
  const resolved = await resolveItems(db, user, items);
  for (const [n, r] of resolved.entries()) {
    // The same answer for a missing and a hidden variable: nothing leaks.
    if (!r.node) throw unprocessable(`items.${n}: unit node not found`);
    if (r.node.type === "Output" && r.item.values.length) {
      throw unprocessable(`items.${n}: values are buttons of an Input; this is an Output`);
    }
  }
  return items;
}

export async function createBoard(
  db: DbLike,
  user: User,
  input: { name: string; items: BoardItemInT[] },
): Promise<BoardRow> {
  const items = await checkItems(db, user, input.items);
  const [row] = await db
    .insert(boards)
    .values({ uuid: randomUUID(), creatorUuid: user.uuid, name: input.name, items })
    .returning();
  if (!row) throw new Error("insert returned nothing");
  return row;
}

export async function updateBoard(
  db: DbLike,
  user: User,
  board: BoardRow,
  input: { name?: string | undefined; items?: BoardItemInT[] | undefined },
): Promise<BoardRow> {
  const items = input.items ? await checkItems(db, user, input.items) : undefined;
  const [row] = await db
    .update(boards)
    .set({
      ...(input.name ? { name: input.name } : {}),
      ...(items ? { items } : {}),
      updatedAt: new Date(),
    })
    .where(eq(boards.uuid, board.uuid))
    .returning();
  return row ?? board;
}

export async function toBoardOut(db: DbLike, p: Principal, board: BoardRow) {
  const resolved = await resolveItems(db, p, board.items);
  return {
    uuid: board.uuid,
    name: board.name,
    items: resolved.map(({ item, node, unitName }) => ({
      unit_node_uuid: item.unitNodeUuid,
      label: item.label,
      values: item.values,
      available: Boolean(node),
      type: node?.type ?? null,
      unit_name: unitName ?? null,
      topic_name: node?.topicName ?? null,
      last_value: node?.lastValue ?? null,
      last_value_datetime: node?.lastValueAt?.toISOString() ?? null,
    })),
    create_datetime: board.createdAt.toISOString(),
    update_datetime: board.updatedAt.toISOString(),
  };
}
