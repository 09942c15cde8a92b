import { canSee } from "../access/visibility.ts";
import type { Visibility } from "../db/schema.ts";

// Who may receive an output's values through a local link. Values flow to the input's
// unit, which reads them as a device of its owner would: the output (its unit and the
// variable itself) must be visible to that unit. Federation decides a follower the same
// way on behalf of the remote unit (src/federation/followers.ts decideFollow).

export type OutputSide = {
  unitVisibility: Visibility;
  nodeVisibility: Visibility;
  ownerUuid: string;
};

export function inputUnitMayRead(
  inputUnit: { uuid: string; creatorUuid: string },
  output: OutputSide,
): boolean {
  const reader = {
    kind: "unit",
    uuid: inputUnit.uuid,
    creatorUuid: inputUnit.creatorUuid,
  } as const;
  return (
    canSee(reader, output.unitVisibility, output.ownerUuid) &&
    canSee(reader, output.nodeVisibility, output.ownerUuid)
  );
}
