import { randomUUID } from "node:crypto";
import { eq, inArray, or } from "drizzle-orm";
import { decryptJson, encryptJson } from "../crypto/aes-gcm.ts";
import type { DbLike } from "../db/database.ts";
import { type UnitNodeType, unitNodeEdges, unitNodes, units } from "../db/schema.ts";
import { checkFirmwareSize } from "../firmware/firmware-size.ts";
import { notFound, unprocessable } from "../http/errors.ts";
import type { AppDeps } from "../http/types.ts";
import { retargetedStatus } from "../ota/update-status.store.ts";
import { loadUnitTemplate, type UnitTemplate } from "../repos/unit-template.ts";
import { buildUnitEnv, type UnitEnv } from "./unit-env.ts";
import { findRepo, findUnit, type RepoRow, type UnitRow } from "./units.store.ts";

// Which version of its repo a unit runs, and what changes when that version changes.
// Used by the units routes and (later) by the OTA flow when a followed branch moves.

/** What the caller asks for: follow the repo's default branch, or a pinned branch + tag/commit. */
export type VersionTarget = {
  followRepo: boolean;
  branch?: string | null | undefined;
  commit?: string | null | undefined;
  tag?: string | null | undefined;
};

export type ResolvedVersion = {
  followRepo: boolean;
  branch: string;
  tag: string | null;
  /** Full 40-hex sha. */
  commit: string;
  template: UnitTemplate;
};

// Conservative ref names: what git check-ref-format allows minus the oddities.
const REF_RE = /^(?!.*\.\.)(?!.*\/\/)(?!\/)(?!.*\/$)(?!-)[A-Za-z0-9._/-]{1,200}$/;
const SHA_PREFIX_RE = /^[0-9a-fA-F]{7,40}$/;

function checkRef(kind: string, name: string): void {
  if (!REF_RE.test(name) || name.endsWith(".lock"))
    throw unprocessable(`invalid ${kind} name ${JSON.stringify(name)}`);
}

/** Resolves a target to a concrete commit on a branch and validates its unit template (422s). */
export async function resolveUnitVersion(
  deps: AppDeps,
  repo: RepoRow,
  target: VersionTarget,
): Promise<ResolvedVersion> {
  const { git } = deps;
  if (!(await git.exists(repo.uuid))) {
    throw unprocessable("the repo has not been cloned yet; sync it first");
  }
  if (target.followRepo) {
    if (target.branch || target.commit || target.tag) {
      throw unprocessable(
        "branch, commit and tag are chosen by the repo while follow_repo is true",
      );
    }
    if (!repo.defaultBranch) {
      throw unprocessable("the repo has no default_branch yet; its creator must choose one first");
    }
    const commit = await git.resolveCommit(repo.uuid, `refs/heads/${repo.defaultBranch}`);
    if (!commit)
      throw unprocessable(`the repo's default branch ${repo.defaultBranch} no longer exists`);
    const template = await loadUnitTemplate(git, repo.uuid, commit);
    await checkFirmwareSize(git, repo.uuid, commit, deps.config.maxFirmwareSizeBytes);
    return { followRepo: true, branch: repo.defaultBranch, tag: null, commit, template };
  }

  const { branch, tag } = target;
  const commitIn = target.commit;
  if (!branch || !(commitIn || tag)) {
    throw unprocessable("follow_repo=false needs a branch and a commit or a tag");
  }
  checkRef("branch", branch);
  const branchHead = await git.resolveCommit(repo.uuid, `refs/heads/${branch}`);
  if (!branchHead) throw unprocessable(`branch ${branch} does not exist in the repo`);

  let commit: string | null = null;
  if (tag) {
    checkRef("tag", tag);
    commit = await git.resolveCommit(repo.uuid, `refs/tags/${tag}`);
    if (!commit) throw unprocessable(`tag ${tag} does not exist in the repo`);
  }
  if (commitIn) {
    if (!SHA_PREFIX_RE.test(commitIn))
      throw unprocessable("commit must be a hex sha (7-40 characters)");
    const resolved = await git.resolveCommit(repo.uuid, commitIn.toLowerCase());
    if (!resolved) throw unprocessable(`commit ${commitIn} does not exist in the repo`);
    if (commit && commit !== resolved)
      throw unprocessable(`tag ${tag} does not point at commit ${commitIn}`);
    commit = resolved;
  }
  if (!commit) throw unprocessable("follow_repo=false needs a branch and a commit or a tag");
  if (!(await git.isAncestor(repo.uuid, commit, branch))) {
    throw unprocessable(`commit ${commit.slice(0, 8)} is not on branch ${branch}`);
  }
  const template = await loadUnitTemplate(git, repo.uuid, commit);
  // A version whose archive could never be built is refused here, not at the device.
  await checkFirmwareSize(git, repo.uuid, commit, deps.config.maxFirmwareSizeBytes);
  return { followRepo: false, branch, tag: tag ?? null, commit, template };
}

/** The (type, topic name) pairs a template asks for, in template order. */
export function templateNodes(
  template: UnitTemplate,
): Array<{ type: UnitNodeType; topicName: string }> {
  return [
    ...template.schema.input_topic.map((topicName) => ({ type: "Input" as const, topicName })),
    ...template.schema.output_topic.map((topicName) => ({ type: "Output" as const, topicName })),
  ];
}

export type RemovedEdge = {
  edgeUuid: string;
  outputUuid: string;
  inputUuid: string;
  inputUnitUuid: string;
};

/** Edges touching any of the nodes, with the unit of each input (for edge.deleted). */
export async function edgesTouching(db: DbLike, nodeUuids: string[]): Promise<RemovedEdge[]> {
  if (!nodeUuids.length) return [];
  return db
    .select({
      edgeUuid: unitNodeEdges.uuid,
      outputUuid: unitNodeEdges.outputUuid,
      inputUuid: unitNodeEdges.inputUuid,
      inputUnitUuid: unitNodes.unitUuid,
    })
    .from(unitNodeEdges)
    .innerJoin(unitNodes, eq(unitNodes.uuid, unitNodeEdges.inputUuid))
    .where(
      or(inArray(unitNodeEdges.outputUuid, nodeUuids), inArray(unitNodeEdges.inputUuid, nodeUuids)),
    );
}

export type VersionChange = {
  unit: UnitRow;
  versionChanged: boolean;
  added: string[];
  removed: string[];
  removedEdges: RemovedEdge[];
};

/**
 * Moves a unit to another version: variables whose (type, topic name) persist keep
 * their uuid, edges and last value; new ones are added with the unit's visibility;
 * missing ones are deleted with their edges; the stored env gets the new
 * PU_COMMIT_VERSION and the new env_example keys; a new commit starts the update
 * status afresh (retargetedStatus). Emits unit-nodes.changed, edge.deleted and
 * unit.updated.
 */
export async function changeUnitVersion(
  deps: AppDeps,
  unitUuid: string,
  target: VersionTarget,
  /** Other columns to update in the same transaction (PATCH of name/visibility). */
  extra: Partial<Pick<UnitRow, "name" | "visibility">> = {},
): Promise<VersionChange> {
  const db = deps.database.db;
  const unit = await findUnit(db, unitUuid);
  if (!unit) throw notFound("unit");
  const repo = await findRepo(db, unit.repoUuid);
  if (!repo) throw notFound("repo");
  const version = await resolveUnitVersion(deps, repo, target);

  const result = await db.transaction(async (tx) => {
    const current = await tx.select().from(unitNodes).where(eq(unitNodes.unitUuid, unitUuid));
    const wanted = templateNodes(version.template);
    const key = (n: { type: string; topicName: string }) => `${n.type}\u0000${n.topicName}`;
    const wantedKeys = new Set(wanted.map(key));
    const currentKeys = new Set(current.map(key));
    const gone = current.filter((n) => !wantedKeys.has(key(n))).map((n) => n.uuid);
    const removedEdges = await edgesTouching(tx, gone);
    if (gone.length) await tx.delete(unitNodes).where(inArray(unitNodes.uuid, gone));
    const visibility = extra.visibility ?? unit.visibility;
    const fresh = wanted
      .filter((n) => !currentKeys.has(key(n)))
      .map((n) => ({
        uuid: randomUUID(),
        unitUuid,
        type: n.type,
        topicName: n.topicName,
        visibility,
      }));
    // onConflictDoNothing: a concurrent change may have added the same variable first.
    const added = fresh.length
      ? (
          await tx
            .insert(unitNodes)
            .values(fresh)
            .onConflictDoNothing()
            .returning({ uuid: unitNodes.uuid })
        ).map((r) => r.uuid)
      : [];
    const env = await buildUnitEnv(deps.config, {
      unitUuid,
      tokenSalt: unit.tokenSalt,
      commit: version.commit,
      envExample: version.template.envExample,
      stored: decryptJson<UnitEnv>(deps.config.encryptKey, unit.envEnc),
    });
    const [updated] = await tx
      .update(units)
      .set({
        ...extra,
        followRepo: version.followRepo,
        branch: version.branch,
        tag: version.tag,
        commit: version.commit,
        envEnc: encryptJson(deps.config.encryptKey, env),
        ...(version.commit !== unit.commit
          ? retargetedStatus(unit.currentCommit, version.commit, new Date())
          : {}),
        updatedAt: new Date(),
      })
      .where(eq(units.uuid, unitUuid))
      .returning();
    if (!updated) throw notFound("unit");
    return {
      unit: updated,
      versionChanged: updated.commit !== unit.commit,
      added,
      removed: gone,
      removedEdges,
    };
  });

  for (const e of result.removedEdges) deps.events.emit("edge.deleted", e);
  if (result.added.length || result.removed.length) {
    deps.events.emit("unit-nodes.changed", {
      unitUuid,
      added: result.added,
      removed: result.removed,
    });
  }
  deps.events.emit("unit.updated", { unitUuid, versionChanged: result.versionChanged });
  return result;
}
