import { randomUUID } from "node:crypto";
import { and, eq, inArray, sql } from "drizzle-orm";
import { repos, users } from "../db/schema.ts";
import { GitError } from "../git/git-store.ts";
import { HttpError } from "../http/errors.ts";
import type { AppDeps } from "../http/types.ts";
import { syncRepo } from "../repos/repos.service.ts";
import { refreshLocalRepo, STANDARD_BRANCH } from "./local-repo.ts";
import {
  type BundledExample,
  bundledExamples,
  localRepoUrl,
  trustedLocalSource,
} from "./standard-source.ts";

// Importing the bundled standard unit repositories as ordinary Public repos. Idempotent:
// a repo already imported (same instance-made source URL, registered by an admin) is
// kept, and synced when the bundled copy changed since (a new build of the instance).

export type StandardRepoState = {
  example: BundledExample;
  repoUuid: string | null;
};

export type ImportStatus = "created" | "exists" | "updated";
export type ImportResult = StandardRepoState & { status: ImportStatus; commit: string };

/** A day: the sources only change with a new build, and importing again syncs at once. */
const SYNC_INTERVAL_S = 86400;

/** The imported repo of each bundled example (an admin's repo with its exact source URL). */
export async function standardRepoStates(deps: Pick<AppDeps, "config" | "database">) {
  const examples = bundledExamples();
  const urls = examples.map((e) => localRepoUrl(deps.config, e.name));
  const rows = urls.length
    ? await deps.database.db
        .select({ uuid: repos.uuid, url: repos.url })
        .from(repos)
        .innerJoin(users, eq(users.uuid, repos.creatorUuid))
        .where(and(inArray(repos.url, urls), eq(users.role, "Admin")))
        .orderBy(repos.createdAt)
    : [];
  return examples.map((example, i) => ({
    example,
    repoUuid: rows.find((r) => r.url === urls[i])?.uuid ?? null,
  }));
}

// One import at a time in this process: two concurrent calls must not both create.
let running: Promise<unknown> = Promise.resolve();

export function importStandardRepos(deps: AppDeps, adminUuid: string): Promise<ImportResult[]> {
  const next = running.then(() => importAll(deps, adminUuid));
  running = next.catch(() => undefined);
  return next;
}

async function importAll(deps: AppDeps, adminUuid: string): Promise<ImportResult[]> {
  const { config, git } = deps;
  const db = deps.database.db;
  const out: ImportResult[] = [];
  for (const state of await standardRepoStates(deps)) {
    const { example } = state;
    const commit = await refreshLocalRepo(config, example);
    const url = localRepoUrl(config, example.name);
    if (state.repoUuid) {
      const current = (await git.exists(state.repoUuid))
        ? await git.resolveCommit(state.repoUuid, `refs/heads/${STANDARD_BRANCH}`)
        : null;
      if (current === commit) {
        out.push({ ...state, status: "exists", commit });
        continue;
      }
      // The repo's sync fetches it (the trusted source) and announces the new head.
      const synced = await syncRepo(deps, state.repoUuid);
      if (synced?.syncStatus === "Error") {
        throw new HttpError(
          500,
          `syncing standard repo ${example.name} failed: ${synced.syncError}`,
        );
      }
      out.push({ ...state, status: "updated", commit });
      continue;
    }
    const source = trustedLocalSource(config, url);
    if (!source) throw new Error(`standard repo ${example.name} has no trusted source`);
    const uuid = randomUUID();
    try {
      await source.git.clone(uuid, source.url, undefined, config.maxRepoSizeBytes);
    } catch (err) {
      if (err instanceof GitError) {
        throw new HttpError(500, `cloning standard repo ${example.name} failed: ${err.message}`);
      }
      throw err;
    }
    try {
      await db.insert(repos).values({
        uuid,
        creatorUuid: adminUuid,
        name: example.name,
        url,
        visibility: "Public",
        defaultBranch: STANDARD_BRANCH,
        autoSync: false,
        syncIntervalS: SYNC_INTERVAL_S,
        syncStatus: "Synced",
        lastSyncedAt: sql`now()`,
        nextSyncAt: sql`now() + make_interval(secs => ${SYNC_INTERVAL_S})`,
      });
    } catch (err) {
      await git.remove(uuid);
      throw err;
    }
    deps.events.emit("repo.created", { repoUuid: uuid });
    deps.log.info({ repo: uuid, name: example.name }, "standard repo imported");
    out.push({ example, repoUuid: uuid, status: "created", commit });
  }
  return out;
}
