import type { AppDeps } from "../http/types.ts";
import { inputUnitMayRead } from "./edges.access.ts";
import { deleteEdges, edgesOutOfUnits } from "./edges.store.ts";

// A link is decided when it is drawn, but the output's visibility may be lowered later
// (PATCH of the variable, of its unit, or of the repo that clamps its units). Every such
// change re-decides the local links out of the unit's outputs, as federation re-decides
// its followers: a link whose input unit may no longer read the output is removed, and
// edge.deleted makes the broker drop the subscription and sends the input unit SchemaUpdate.

type RecheckDeps = Pick<AppDeps, "database" | "events">;

/** Removes the links out of these units' outputs whose input unit lost read access. */
export async function recheckEdgesOutOf(deps: RecheckDeps, unitUuids: string[]): Promise<number> {
  const db = deps.database.db;
  const edges = await edgesOutOfUnits(db, unitUuids);
  const lost = edges.filter((e) => !inputUnitMayRead(e.inputUnit, e.output));
  const removed = new Set(
    await deleteEdges(
      db,
      lost.map((e) => e.edgeUuid),
    ),
  );
  for (const e of lost) {
    if (!removed.has(e.edgeUuid)) continue;
    deps.events.emit("edge.deleted", {
      edgeUuid: e.edgeUuid,
      outputUuid: e.outputUuid,
      inputUuid: e.inputUuid,
      inputUnitUuid: e.inputUnit.uuid,
    });
  }
  return removed.size;
}

export type EdgeRecheck = { stop(): Promise<void> };

/**
 * Re-checks on the domain events of any visibility change, wherever it was made (a repo's
 * clamp announces unit.updated for each unit it lowered). Routes that lower visibility
 * themselves also await recheckEdgesOutOf, so their answer already reflects it; the second
 * pass finds nothing to remove.
 */
export function startEdgeRecheck(deps: RecheckDeps & Pick<AppDeps, "log">): EdgeRecheck {
  const inFlight = new Set<Promise<unknown>>();
  const onChange = (e: { unitUuid: string }) => {
    // Cluster mode: the process where the visibility changed removes the links, once.
    if (deps.events.fromOtherProcess(e)) return;
    const { unitUuid } = e;
    const p = recheckEdgesOutOf(deps, [unitUuid])
      .catch((err: unknown) => deps.log.error({ err, unitUuid }, "re-checking links failed"))
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  };
  deps.events.on("unit.updated", onChange);
  deps.events.on("unit-node.updated", onChange);
  return {
    async stop() {
      deps.events.off("unit.updated", onChange);
      deps.events.off("unit-node.updated", onChange);
      await Promise.all([...inFlight]);
    },
  };
}
