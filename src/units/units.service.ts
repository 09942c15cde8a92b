import { randomBytes, randomUUID } from "node:crypto";
import { eq } from "drizzle-orm";
import type { Principal } from "../access/principal.ts";
import { canSee, isMoreOpen } from "../access/visibility.ts";
import { decryptJson, encryptJson } from "../crypto/aes-gcm.ts";
import { unitNodes, units, type Visibility } from "../db/schema.ts";
import { conflict, notFound, unprocessable } from "../http/errors.ts";
import type { AppDeps } from "../http/types.ts";
import { toUnitNodeOut } from "../unit-nodes/unit-nodes.schemas.ts";
import { buildUnitEnv, checkEnvEdits, type EnvEditValue, type UnitEnv } from "./unit-env.ts";
import {
  edgesTouching,
  resolveUnitVersion,
  templateNodes,
  type VersionTarget,
} from "./unit-version.service.ts";
import { toUnitOut, type UnitOutT } from "./units.schemas.ts";
import {
  findRepo,
  findUnitByName,
  isUniqueViolation,
  nodesOfUnits,
  type UnitRow,
} from "./units.store.ts";

const newSalt = () => randomBytes(24).toString("base64url");

/**
 * Unit names stay unique on the whole instance: a Public unit's name is its WebFinger
 * handle (`acct:<name>@<domain>`, src/federation/federation.ts mapHandle), so per-user
 * names would make handles ambiguous. A taken name is therefore refused, but without
 * saying that a unit with it exists, whose it is or how visible: "a unit named X already
 * exists" let anyone enumerate the names of other users' Private units.
 */
export const nameNotAvailable = () => conflict("this unit name is not available");

export type CreateUnitInput = {
  repoUuid: string;
  name: string;
  visibility?: Visibility | undefined;
  version: VersionTarget;
};

/** Creates a unit from a repo version: its variables, its encrypted env and a token salt. */
export async function createUnit(
  deps: AppDeps,
  user: Extract<Principal, { kind: "user" }>,
  input: CreateUnitInput,
): Promise<UnitRow> {
  const db = deps.database.db;
  const repo = await findRepo(db, input.repoUuid);
  if (!repo || !canSee(user, repo.visibility, repo.creatorUuid)) throw notFound("repo");
  const visibility = input.visibility ?? repo.visibility;
  if (isMoreOpen(visibility, repo.visibility)) {
    throw unprocessable(`a unit cannot be more open than its repo (repo is ${repo.visibility})`);
  }
  if (await findUnitByName(db, input.name)) throw nameNotAvailable();
  const version = await resolveUnitVersion(deps, repo, input.version);

  const uuid = randomUUID();
  const tokenSalt = newSalt();
  const env = await buildUnitEnv(deps.config, {
    unitUuid: uuid,
    tokenSalt,
    commit: version.commit,
    envExample: version.template.envExample,
    stored: {},
  });
  try {
    const unit = await db.transaction(async (tx) => {
      const [row] = await tx
        .insert(units)
        .values({
          uuid,
          creatorUuid: user.uuid,
          repoUuid: repo.uuid,
          name: input.name,
          visibility,
          followRepo: version.followRepo,
          branch: version.branch,
          tag: version.tag,
          commit: version.commit,
          tokenSalt,
          envEnc: encryptJson(deps.config.encryptKey, env),
        })
        .returning();
      const nodes = templateNodes(version.template).map((n) => ({
        uuid: randomUUID(),
        unitUuid: uuid,
        type: n.type,
        topicName: n.topicName,
        visibility,
      }));
      if (nodes.length) await tx.insert(unitNodes).values(nodes);
      if (!row) throw new Error("insert returned nothing");
      return row;
    });
    deps.events.emit("unit.created", { unitUuid: unit.uuid });
    return unit;
  } catch (err) {
    // Two creations with the same name racing past the check above.
    if (isUniqueViolation(err)) throw nameNotAvailable();
    throw err;
  }
}

/** Deletes a unit; its variables and every edge touching them go with it (FK cascade). */
export async function deleteUnit(deps: AppDeps, unit: UnitRow): Promise<void> {
  const db = deps.database.db;
  const removedEdges = await db.transaction(async (tx) => {
    const nodes = await tx
      .select({ uuid: unitNodes.uuid })
      .from(unitNodes)
      .where(eq(unitNodes.unitUuid, unit.uuid));
    const edges = await edgesTouching(
      tx,
      nodes.map((n) => n.uuid),
    );
    await tx.delete(units).where(eq(units.uuid, unit.uuid));
    return edges;
  });
  // Edges from this unit's outputs into other units change those units' schemas.
  for (const e of removedEdges) deps.events.emit("edge.deleted", e);
  deps.events.emit("unit.deleted", { unitUuid: unit.uuid });
}

/** A new salt revokes the old token at once; the stored env carries the new one. */
export async function rotateUnitToken(deps: AppDeps, unit: UnitRow): Promise<UnitEnv> {
  const db = deps.database.db;
  const tokenSalt = newSalt();
  const stored = decryptJson<UnitEnv>(deps.config.encryptKey, unit.envEnc);
  // Rebuild from the stored env itself: its keys already are env_example's + generated.
  const env = await buildUnitEnv(deps.config, {
    unitUuid: unit.uuid,
    tokenSalt,
    commit: unit.commit,
    envExample: stored,
    stored,
  });
  await db
    .update(units)
    .set({ tokenSalt, envEnc: encryptJson(deps.config.encryptKey, env), updatedAt: new Date() })
    .where(eq(units.uuid, unit.uuid));
  deps.events.emit("unit.token-rotated", { unitUuid: unit.uuid });
  return env;
}

/** Units as JSON with the variables the caller may see (optionally only outputs). */
export async function serializeUnits(
  deps: AppDeps,
  p: Principal,
  rows: UnitRow[],
  opts: { outputsOnly?: boolean } = {},
): Promise<UnitOutT[]> {
  const nodes = await nodesOfUnits(
    deps.database.db,
    rows.map((u) => u.uuid),
  );
  return rows.map((u) => {
    const own = nodes.filter(
      (n) =>
        n.unitUuid === u.uuid &&
        (!opts.outputsOnly || n.type === "Output") &&
        canSee(p, n.visibility, u.creatorUuid),
    );
    return toUnitOut(
      u,
      own.map((n) => toUnitNodeOut(deps.config.domain, n)),
      deps.broker.isOnline(u.uuid),
    );
  });
}

/** Applies user edits (checked against the current env) and stores the result encrypted. */
export async function editUnitEnv(
  deps: AppDeps,
  unit: UnitRow,
  edits: Record<string, EnvEditValue>,
): Promise<UnitEnv> {
  const stored = decryptJson<UnitEnv>(deps.config.encryptKey, unit.envEnc);
  checkEnvEdits(stored, edits);
  const env = await buildUnitEnv(deps.config, {
    unitUuid: unit.uuid,
    tokenSalt: unit.tokenSalt,
    commit: unit.commit,
    envExample: stored,
    stored,
    edits,
  });
  await deps.database.db
    .update(units)
    .set({ envEnc: encryptJson(deps.config.encryptKey, env), updatedAt: new Date() })
    .where(eq(units.uuid, unit.uuid));
  deps.events.emit("unit.env-updated", { unitUuid: unit.uuid });
  return env;
}
