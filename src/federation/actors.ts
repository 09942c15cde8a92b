import type { DbLike } from "../db/database.ts";
import { INSTANCE_ACTOR } from "./core.ts";
import { findNodeAndUnit, findUnit } from "./federation.store.ts";

// Which local actors are disclosed: the instance, Public units, Public output
// variables of Public units. The actor documents and their collections answer the
// same question, so a collection is never found where its actor is not.

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

type Found = NonNullable<Awaited<ReturnType<typeof findNodeAndUnit>>>;
export type LocalActor =
  | { kind: "instance" }
  | { kind: "unit"; unit: Found["unit"] }
  | ({ kind: "output" } & Found);

export async function disclosedActor(db: DbLike, identifier: string): Promise<LocalActor | null> {
  if (identifier === INSTANCE_ACTOR) return { kind: "instance" };
  if (!UUID_RE.test(identifier)) return null;
  const unit = await findUnit(db, { uuid: identifier });
  if (unit) return unit.visibility === "Public" ? { kind: "unit", unit } : null;
  const found = await findNodeAndUnit(db, identifier);
  if (
    found?.node.type !== "Output" ||
    found.node.visibility !== "Public" ||
    found.unit.visibility !== "Public"
  ) {
    return null;
  }
  return { kind: "output", ...found };
}
