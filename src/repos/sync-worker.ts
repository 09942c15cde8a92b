import type { AppDeps } from "../http/types.ts";
import { syncRepo } from "./repos.service.ts";
import { claimDueRepos } from "./repos.store.ts";

// Periodic sync of repos with auto_sync: every tick claims the due repos (safe
// across several instances on one PostgreSQL) and fetches them one by one,
// outside the claiming transaction so no row lock is held while git runs.

/** Repos claimed per tick: the rest stay due and are taken by the next tick. */
const BATCH = 10;

export type RepoSyncWorker = { start(): void; stop(): Promise<void> };

export function createRepoSyncWorker(
  deps: AppDeps,
  opts: { tickMs?: number } = {},
): RepoSyncWorker {
  const tickMs = opts.tickMs ?? deps.config.syncTickMs;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = true;

  async function tick(): Promise<void> {
    const due = await claimDueRepos(deps.database.db, BATCH);
    for (const uuid of due) {
      if (stopped) break;
      // syncRepo records a failing remote on the repo itself; it only throws when
      // the database does, and one repo's trouble must not stop the others.
      await syncRepo(deps, uuid).catch((err) =>
        deps.log.error({ err, repo: uuid }, "repo sync crashed"),
      );
    }
  }

  function schedule(): void {
    if (stopped) return;
    timer = setTimeout(() => {
      running = tick()
        .catch((err) => deps.log.error({ err }, "repo sync tick failed"))
        .finally(() => {
          running = undefined;
          schedule();
        });
    }, tickMs);
    // The worker alone must not keep the process alive.
    timer.unref();
  }

  return {
    start() {
      if (!stopped) return;
      stopped = false;
      schedule();
    },
    /** Stops ticking and waits for the sync in progress (if any) to finish. */
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
