import type { AppDeps } from "../http/types.ts";
import { syncRepo } from "./repos.service.ts";
import { claimDueRepos } from "./repos.store.ts";

// Periodic sync of repos with auto_sync: every tick claims the due repos (safe
// across several instances on one PostgreSQL) and fetches them one by one,
// outside the claiming transaction so no row lock is held while git runs.

/** Repos claimed per tick: the rest stay due and are taken by the next tick. */
const BATCH = 10;

export type RepoSyncWorker = {
  start(): void;
  stop(): Promise<void>;
  /** Outcomes of this worker's syncs, for the metrics endpoint (src/metrics/). */
  readonly stats: SyncStats;
};

export type SyncResult = "synced" | "error" | "gone" | "crashed";

export type SyncStats = {
  syncs: Record<SyncResult, number>;
  /** Duration of the last sync (seconds), and when it ended (ms since the epoch; 0: none yet). */
  lastDurationSeconds: number;
  lastEndedAt: number;
};

export function createRepoSyncWorker(
  deps: AppDeps,
  opts: { tickMs?: number } = {},
): RepoSyncWorker {
  const tickMs = opts.tickMs ?? deps.config.syncTickMs;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = true;
  const stats: SyncStats = {
    syncs: { synced: 0, error: 0, gone: 0, crashed: 0 },
    lastDurationSeconds: 0,
    lastEndedAt: 0,
  };

  async function syncOne(uuid: string): Promise<SyncResult> {
    try {
      const repo = await syncRepo(deps, uuid);
      if (!repo) return "gone";
      return repo.syncStatus === "Synced" ? "synced" : "error";
    } catch (err) {
      // syncRepo records a failing remote on the repo itself; it only throws when
      // the database does, and one repo's trouble must not stop the others.
      deps.log.error({ err, repo: uuid }, "repo sync crashed");
      return "crashed";
    }
  }

  async function tick(): Promise<void> {
    const due = await claimDueRepos(deps.database.db, BATCH);
    // Claiming moved their next_sync_at: the read model (src/read-model/) reloads them.
    for (const uuid of due) deps.events.emit("repo.updated", { repoUuid: uuid });
    for (const uuid of due) {
      if (stopped) break;
      const started = performance.now();
      const result = await syncOne(uuid);
      stats.syncs[result]++;
      stats.lastDurationSeconds = (performance.now() - started) / 1000;
      stats.lastEndedAt = Date.now();
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
    stats,
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
