import type { UnitNode, UnitNodeEdge, User } from "./api.ts";

// What the viewer may do, by the server's rules (src/edges/edges.service.ts,
// src/unit-nodes/set-input.routes.ts), so the UI offers only what will be allowed.

type Viewer = Pick<User, "uuid" | "role"> | null;

const manages = (viewer: Viewer, creatorUuid: string | undefined) =>
  !!viewer && (viewer.role === "Admin" || viewer.uuid === creatorUuid);

/** Linking an output into this input, or setting its value: its unit's creator, an admin, or anyone when rewritable. */
export function mayWriteInput(
  viewer: Viewer,
  input: Pick<UnitNode, "is_rewritable_input">,
  unitCreatorUuid: string,
): boolean {
  return !!viewer && (input.is_rewritable_input || manages(viewer, unitCreatorUuid));
}

/** Removing a link: its creator, an admin, or the creator of either end's unit. */
export function mayRemoveLink(
  viewer: Viewer,
  link: Pick<UnitNodeEdge, "creator_uuid" | "input_uuid" | "output_uuid">,
  unitCreatorOf: (variableUuid: string) => string | undefined,
): boolean {
  if (!viewer) return false;
  return (
    link.creator_uuid === viewer.uuid ||
    manages(viewer, unitCreatorOf(link.output_uuid)) ||
    (link.input_uuid !== null && manages(viewer, unitCreatorOf(link.input_uuid)))
  );
}
