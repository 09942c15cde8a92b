import type { Visibility } from "../db/schema.ts";
import type { Principal } from "./principal.ts";

export const VISIBILITIES = ["Public", "Internal", "Private"] as const;

const rank: Record<Visibility, number> = { Private: 0, Internal: 1, Public: 2 };

/** A child is never more open than its parent (repo → unit → variables). */
export function isMoreOpen(child: Visibility, parent: Visibility): boolean {
  return rank[child] > rank[parent];
}

export function clampTo(child: Visibility, parent: Visibility): Visibility {
  return isMoreOpen(child, parent) ? parent : child;
}

/** The least open visibility of a chain: what the entity effectively is. */
export function effective(...chain: Visibility[]): Visibility {
  return chain.reduce((a, b) => (rank[a] <= rank[b] ? a : b));
}

/** Visibilities a principal may see without owning the entity. */
export function visibleLevels(p: Principal): Visibility[] {
  if (p.kind === "anonymous") return ["Public"];
  return ["Public", "Internal"];
}

/** Read access: Public to anyone, Internal to this instance's users and units, Private to the owner. */
export function canSee(p: Principal, visibility: Visibility, ownerUuid: string): boolean {
  if (isAdmin(p) || ownsAs(p, ownerUuid)) return true;
  return visibleLevels(p).includes(visibility);
}

export function isAdmin(p: Principal): boolean {
  return p.kind === "user" && p.role === "Admin";
}

/** Whether the principal acts for the owner (the user, or one of the user's units). */
export function ownsAs(p: Principal, ownerUuid: string): boolean {
  if (p.kind === "user") return p.uuid === ownerUuid;
  if (p.kind === "unit") return p.creatorUuid === ownerUuid;
  return false;
}

export function canManage(p: Principal, ownerUuid: string): boolean {
  return p.kind === "user" && (p.uuid === ownerUuid || p.role === "Admin");
}
