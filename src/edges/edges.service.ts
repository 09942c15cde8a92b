import { randomUUID } from "node:crypto";
import { eq } from "drizzle-orm";
import type { Principal } from "../access/principal.ts";
import { canManage, canSee } from "../access/visibility.ts";
import { unitNodeEdges } from "../db/schema.ts";
import { conflict, forbidden, notFound, unprocessable } from "../http/errors.ts";
import type { AppDeps } from "../http/types.ts";
import { findNodeWithUnit } from "../unit-nodes/unit-nodes.store.ts";
import { isUniqueViolation } from "../units/units.store.ts";
import { inputUnitMayRead } from "./edges.access.ts";
import { type EdgeRow, findEdge, findEdgeByPair } from "./edges.store.ts";

type User = Extract<Principal, { kind: "user" }>;

async function loadVisibleNode(deps: AppDeps, p: Principal, uuid: string, what: string) {
  const found = await findNodeWithUnit(deps.database.db, uuid);
  if (
    !found ||
    !canSee(p, found.unit.visibility, found.unit.creatorUuid) ||
    !canSee(p, found.node.visibility, found.unit.creatorUuid)
  ) {
    throw notFound(what);
  }
  return found;
}

/**
 * Links an output into an input. Reading the output is decided by visibility;
 * writing into the input by ownership, or by the input's is_rewritable_input flag.
 */
export async function createEdge(
  deps: AppDeps,
  user: User,
  input: { outputUuid: string; inputUuid: string },
): Promise<EdgeRow> {
  const out = await loadVisibleNode(deps, user, input.outputUuid, "output");
  const inp = await loadVisibleNode(deps, user, input.inputUuid, "input");
  if (out.node.type !== "Output") throw unprocessable("output_uuid must be an Output variable");
  if (inp.node.type !== "Input") throw unprocessable("input_uuid must be an Input variable");
  if (!canManage(user, inp.unit.creatorUuid) && !inp.node.isRewritableInput) {
    throw forbidden(
      "this input is not rewritable: only its unit's creator (or an admin) may link into it",
    );
  }
  const readable = inputUnitMayRead(inp.unit, {
    unitVisibility: out.unit.visibility,
    nodeVisibility: out.node.visibility,
    ownerUuid: out.unit.creatorUuid,
  });
  if (!readable) {
    // The same rule removes a link when its output is made Private later (edges.recheck.ts).
    throw forbidden("a Private output can only be linked into its owner's units");
  }
  const db = deps.database.db;
  if (await findEdgeByPair(db, out.node.uuid, inp.node.uuid))
    throw conflict("these variables are already linked");
  let edge: EdgeRow | undefined;
  try {
    [edge] = await db
      .insert(unitNodeEdges)
      .values({
        uuid: randomUUID(),
        outputUuid: out.node.uuid,
        inputUuid: inp.node.uuid,
        creatorUuid: user.uuid,
      })
      .returning();
  } catch (err) {
    if (isUniqueViolation(err)) throw conflict("these variables are already linked");
    throw err;
  }
  if (!edge) throw new Error("insert returned nothing");
  deps.events.emit("edge.created", {
    edgeUuid: edge.uuid,
    outputUuid: edge.outputUuid,
    inputUuid: edge.inputUuid,
    inputUnitUuid: inp.unit.uuid,
  });
  return edge;
}

/**
 * The edge's creator, the input unit's creator, the output unit's creator or an admin may
 * remove a link: whoever owns an output may always cut what flows out of it, even into a
 * unit it cannot see.
 */
export async function deleteEdge(deps: AppDeps, user: User, uuid: string): Promise<void> {
  const db = deps.database.db;
  const edge = await findEdge(db, uuid);
  if (!edge) throw notFound("edge");
  const inp = await findNodeWithUnit(db, edge.inputUuid);
  const out = await findNodeWithUnit(db, edge.outputUuid);
  if (!inp || !out) throw notFound("edge");
  const allowed =
    edge.creatorUuid === user.uuid ||
    canManage(user, inp.unit.creatorUuid) ||
    canManage(user, out.unit.creatorUuid);
  if (!allowed) {
    const seesInput =
      canSee(user, inp.unit.visibility, inp.unit.creatorUuid) &&
      canSee(user, inp.node.visibility, inp.unit.creatorUuid);
    if (!seesInput) throw notFound("edge");
    throw forbidden(
      "only the edge's creator, the input unit's creator or an admin may remove this link",
    );
  }
  const [removed] = await db.delete(unitNodeEdges).where(eq(unitNodeEdges.uuid, uuid)).returning();
  if (!removed) throw notFound("edge");
  deps.events.emit("edge.deleted", {
    edgeUuid: removed.uuid,
    outputUuid: removed.outputUuid,
    inputUuid: removed.inputUuid,
    inputUnitUuid: inp.unit.uuid,
  });
}
