import type { Principal } from "../access/principal.ts";
import { decryptJson } from "../crypto/aes-gcm.ts";
import type { AppDeps } from "../http/types.ts";
import { loadUnitTemplate } from "../repos/unit-template.ts";
import type { UnitEnv } from "./unit-env.ts";
import { buildUnitSchema, type UnitSchema } from "./unit-schema.ts";
import { loadUnitForDevice } from "./units.access.ts";
import { edgesIntoUnit, nodesOfUnits, type UnitNodeRow, type UnitRow } from "./units.store.ts";

export type UnitArtifacts = {
  unitUuid: string;
  repoUuid: string;
  commit: string;
  env: Record<string, unknown>;
  schema: Record<string, Record<string, string[]>>;
};

/** The stored env.json of a unit, decrypted. */
export function readUnitEnv(deps: AppDeps, unit: Pick<UnitRow, "envEnc" | "commit">): UnitEnv {
  const env = decryptJson<UnitEnv>(deps.config.encryptKey, unit.envEnc);
  // The stored env follows every version change; this keeps the wire value exact
  // even if a change was interrupted between the two writes.
  env.PU_COMMIT_VERSION = unit.commit;
  return env;
}

/**
 * schema.json of a unit at its target version, edges included (device-protocol §3).
 * `cachedNodes`: the unit's variables from the read model (its edges come from there too).
 */
export async function buildSchemaForUnit(
  deps: AppDeps,
  unit: Pick<UnitRow, "uuid" | "repoUuid" | "commit">,
  cachedNodes: UnitNodeRow[] | null = null,
): Promise<UnitSchema> {
  const db = deps.database.db;
  const rm = deps.readModel;
  const template = await loadUnitTemplate(deps.git, unit.repoUuid, unit.commit);
  const [nodes, edges] = await Promise.all([
    cachedNodes ?? nodesOfUnits(db, [unit.uuid]),
    rm && cachedNodes ? rm.edgesInto(unit.uuid) : edgesIntoUnit(db, unit.uuid),
  ]);
  // Active remote edges (federation) come after the local ones, in their creation order.
  const remote = (deps.federation?.remoteTopicsForSchema(unit.uuid) ?? []).map((r) => ({
    inputUuid: r.inputUuid,
    outputUuid: "",
    outputTopicName: "",
    remoteTopic: r.topic,
  }));
  return buildUnitSchema(deps.config.domain, unit.uuid, template.schema, nodes, [
    ...edges,
    ...remote,
  ]);
}

/** What a device (or its owner) downloads. 404 unless the principal is the unit itself, its creator or an admin. */
export async function loadUnitArtifacts(
  deps: AppDeps,
  principal: Principal,
  unitUuid: string,
): Promise<UnitArtifacts> {
  const unit = await loadUnitForDevice(deps.database.db, principal, unitUuid);
  return {
    unitUuid: unit.uuid,
    repoUuid: unit.repoUuid,
    commit: unit.commit,
    env: readUnitEnv(deps, unit),
    schema: await buildSchemaForUnit(deps, unit),
  };
}
