import type { Principal } from "../access/principal.ts";
import { canManage, canSee } from "../access/visibility.ts";
import type { DbLike } from "../db/database.ts";
import { forbidden, notFound } from "../http/errors.ts";
import { findUnit, type UnitRow } from "./units.store.ts";

// Who may touch a unit. Anything the caller may not see answers 404, so the
// existence of a Private unit never leaks.

/** Read access by visibility (Public / Internal / own). */
export async function loadVisibleUnit(db: DbLike, p: Principal, uuid: string): Promise<UnitRow> {
  const unit = await findUnit(db, uuid);
  if (!unit || !canSee(p, unit.visibility, unit.creatorUuid)) throw notFound("unit");
  return unit;
}

/** Management (creator or admin, never a unit token); visible-but-not-yours is a 403. */
export async function loadManagedUnit(db: DbLike, p: Principal, uuid: string): Promise<UnitRow> {
  const unit = await loadVisibleUnit(db, p, uuid);
  if (!canManage(p, unit.creatorUuid)) {
    throw forbidden(
      p.kind === "unit"
        ? "a unit token cannot manage units"
        : "only the unit's creator or an admin may do this",
    );
  }
  return unit;
}

/** Whether the principal is the unit itself, its creator or an admin. */
export function isSelfOrManager(
  p: Principal,
  unit: Pick<UnitRow, "uuid" | "creatorUuid">,
): boolean {
  if (p.kind === "unit") return p.uuid === unit.uuid;
  return canManage(p, unit.creatorUuid);
}

/**
 * Device-plane access: the unit's own token, or its creator / an admin. A unit
 * addressing any other uuid gets 404, exactly like a stranger.
 */
export async function loadUnitForDevice(db: DbLike, p: Principal, uuid: string): Promise<UnitRow> {
  const unit = await findUnit(db, uuid);
  if (!unit || !isSelfOrManager(p, unit)) throw notFound("unit");
  return unit;
}
