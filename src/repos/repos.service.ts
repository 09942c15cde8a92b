import { eq, sql } from "drizzle-orm";
import { decryptJson } from "../crypto/aes-gcm.ts";
import { repos } from "../db/schema.ts";
import type { GitCredentials, GitVersions } from "../git/git-store.ts";
import type { AppDeps } from "../http/types.ts";
import { trustedLocalSource } from "../standard-repos/standard-source.ts";
import { type CloneTarget, checkCloneTarget, cloneUrlOptions } from "./clone-url.ts";
import type { RepoRow } from "./repos.schemas.ts";
import { findRepo } from "./repos.store.ts";

// Syncing is shared by "sync now" and the periodic worker: one code path records
// the outcome on the repo and announces changed branches.

type SyncDeps = Pick<AppDeps, "config" | "database" | "git" | "events" | "log">;

const MAX_ERROR_LENGTH = 1000;

/** Syncs in flight in this process, by clone directory: a second request joins the first. */
const inFlight = new Map<string, Promise<RepoRow | undefined>>();

export function repoCredentials(deps: Pick<AppDeps, "config">, repo: RepoRow) {
  return repo.credentialsEnc
    ? decryptJson<GitCredentials>(deps.config.encryptKey, repo.credentialsEnc)
    : undefined;
}

/** Branches whose commit differs (or that are new) after a fetch. */
export function changedBranches(before: GitVersions | null, after: GitVersions): string[] {
  const old = new Map((before?.branches ?? []).map((b) => [b.name, b.commit]));
  return after.branches.filter((b) => old.get(b.name) !== b.commit).map((b) => b.name);
}

/**
 * Fetches the remote into the clone now and records the outcome on the repo
 * (Synced, or Error with git's credential-free reason). Never throws for a
 * failing remote. Returns the updated repo, or undefined when it no longer exists.
 */
export function syncRepo(deps: SyncDeps, repoUuid: string): Promise<RepoRow | undefined> {
  const key = deps.git.dirFor(repoUuid);
  const running = inFlight.get(key);
  if (running) return running;
  const p = runSync(deps, repoUuid).finally(() => inFlight.delete(key));
  inFlight.set(key, p);
  return p;
}

/** Resolves once no sync of this repo runs in this process (used before removing the clone). */
export async function waitForSync(deps: Pick<AppDeps, "git">, repoUuid: string): Promise<void> {
  await inFlight.get(deps.git.dirFor(repoUuid))?.catch(() => undefined);
}

async function runSync(deps: SyncDeps, repoUuid: string): Promise<RepoRow | undefined> {
  const db = deps.database.db;
  const repo = await findRepo(db, repoUuid);
  if (!repo) return undefined;
  await db.update(repos).set({ syncStatus: "Syncing" }).where(eq(repos.uuid, repoUuid));
  deps.events.emit("repo.updated", { repoUuid });
  const next = sql`now() + make_interval(secs => ${repos.syncIntervalS})`;
  let changed: string[];
  try {
    // The instance's own standard repos (src/standard-repos/) are local by design; every
    // other URL is checked again at every sync: where a host name points can change.
    // The pinned address is the one checked now, so a host rebound since is not followed.
    const trusted = trustedLocalSource(deps.config, repo.url);
    const target: CloneTarget = trusted
      ? { url: trusted.url, gitUrl: trusted.url }
      : await checkCloneTarget(repo.url, cloneUrlOptions(deps.config));
    const git = trusted?.git ?? deps.git;
    const creds = repoCredentials(deps, repo);
    const max = deps.config.maxRepoSizeBytes;
    if (await deps.git.exists(repoUuid)) {
      const before = await deps.git.versions(repoUuid);
      await git.fetch(repoUuid, target.gitUrl, creds, max, target);
      changed = changedBranches(before, await deps.git.versions(repoUuid));
    } else {
      // The clone went missing (restored database, wiped disk): make it again.
      await git.clone(repoUuid, target.gitUrl, creds, max, target);
      changed = changedBranches(null, await deps.git.versions(repoUuid));
    }
  } catch (err) {
    const reason = (err instanceof Error ? err.message : String(err)).slice(0, MAX_ERROR_LENGTH);
    deps.log.warn({ repo: repoUuid, reason }, "repo sync failed");
    const [failed] = await db
      .update(repos)
      .set({ syncStatus: "Error", syncError: reason || "sync failed", nextSyncAt: next })
      .where(eq(repos.uuid, repoUuid))
      .returning();
    if (failed) deps.events.emit("repo.updated", { repoUuid });
    return failed;
  }
  const [synced] = await db
    .update(repos)
    .set({
      syncStatus: "Synced",
      syncError: null,
      lastSyncedAt: sql`now()`,
      nextSyncAt: next,
    })
    .where(eq(repos.uuid, repoUuid))
    .returning();
  if (!synced) {
    // Deleted while we fetched: whatever we wrote must not outlive the row.
    await deps.git.remove(repoUuid);
    return undefined;
  }
  deps.log.info({ repo: repoUuid, changedBranches: changed }, "repo synced");
  try {
    deps.events.emit("repo.synced", { repoUuid, changedBranches: changed });
  } catch (err) {
    // A failing listener is its feature's bug; the sync itself succeeded.
    deps.log.error({ err, repo: repoUuid }, "repo.synced listener failed");
  }
  return synced;
}
