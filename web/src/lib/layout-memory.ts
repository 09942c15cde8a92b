import type { Point } from "./layout.ts";

// The graph remembers where a person put things: node id → position (variables
// relative to their unit), per user, in localStorage.

export type Positions = Record<string, Point>;

export function layoutKey(userUuid: string | null): string {
  return `pepeunit.layout.v1.${userUuid ?? "anonymous"}`;
}

export function loadPositions(storage: Pick<Storage, "getItem">, key: string): Positions {
  try {
    const parsed: unknown = JSON.parse(storage.getItem(key) ?? "{}");
    if (typeof parsed !== "object" || parsed === null) return {};
    const out: Positions = {};
    for (const [id, p] of Object.entries(parsed as Record<string, unknown>)) {
      const pt = p as Partial<Point> | null;
      if (pt && Number.isFinite(pt.x) && Number.isFinite(pt.y))
        out[id] = { x: Number(pt.x), y: Number(pt.y) };
    }
    return out;
  } catch {
    return {};
  }
}

export function savePositions(
  storage: Pick<Storage, "setItem">,
  key: string,
  positions: Positions,
): void {
  try {
    storage.setItem(key, JSON.stringify(positions));
  } catch {
    // Storage full or disabled: the layout is a convenience, not worth an error.
  }
}
