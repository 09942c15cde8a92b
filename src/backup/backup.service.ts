import { mkdir, readdir, rm, stat } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "pino";
import type { Config } from "../config.ts";
import type { Database } from "../db/database.ts";
import { BACKUP_NAME_RE, BackupError, backupFileName, type Progress } from "./backup-format.ts";
import { type BackupResult, writeBackup } from "./backup-writer.ts";

// The backups a running instance makes: scheduled ones (PEPEUNIT_BACKUP_EVERY_H into
// PEPEUNIT_BACKUP_DIR, the oldest beyond PEPEUNIT_BACKUP_KEEP removed), the admin's
// "back up now", and the CLI's request over the local socket (src/backup/backup-socket.ts).
// One at a time: a second request while one runs is refused (BackupBusyError).

export class BackupBusyError extends Error {
  constructor() {
    super("a backup is already running");
  }
}

export type BackupEntry = {
  name: string;
  createdAt: string;
  size: number | null;
  result: "ok" | "failed" | "running";
  error: string | null;
};

export type BackupService = {
  /** Starts the schedule (when configured). */
  start(): void;
  /** Stops the schedule and waits for a backup in progress. */
  stop(): Promise<void>;
  /**
   * Makes one backup now: to `out`, or a new file in the backup dir (then rotated).
   * Rejects at once with BackupBusyError while another runs.
   */
  run(opts?: { out?: string; progress?: Progress; signal?: AbortSignal }): Promise<BackupResult>;
  running(): boolean;
  /** The backups of the backup dir, newest first, with this process's failures and the running one. */
  list(): Promise<BackupEntry[]>;
};

type Deps = {
  config: Pick<
    Config,
    "secretKey" | "encryptKey" | "repositoriesDir" | "backupDir" | "backupEveryMs" | "backupKeep"
  >;
  database: Database;
  log: Logger;
};

const MAX_TIMER_MS = 2 ** 31 - 1;

export function createBackupService(deps: Deps): BackupService {
  const dir = deps.config.backupDir;
  let current: { entry: BackupEntry; done: Promise<unknown> } | undefined;
  const failures: BackupEntry[] = [];
  let timer: NodeJS.Timeout | undefined;
  let stopped = true;
  /** Aborted by stop(): a shutdown does not wait for a long backup (its file is not kept). */
  let halt = new AbortController();

  async function files(): Promise<BackupEntry[]> {
    if (!dir) return [];
    const names = (await readdir(dir).catch(() => [] as string[])).filter((n) =>
      BACKUP_NAME_RE.test(n),
    );
    const out: BackupEntry[] = [];
    for (const name of names) {
      const s = await stat(path.join(dir, name)).catch(() => null);
      if (s)
        out.push({
          name,
          createdAt: s.mtime.toISOString(),
          size: s.size,
          result: "ok",
          error: null,
        });
    }
    return out;
  }

  async function rotate(): Promise<void> {
    if (!dir) return;
    const kept = (await files()).sort((a, b) => b.name.localeCompare(a.name));
    for (const old of kept.slice(deps.config.backupKeep)) {
      await rm(path.join(dir, old.name), { force: true });
      deps.log.info({ backup: old.name }, "old backup removed");
    }
  }

  function run(opts: { out?: string; progress?: Progress; signal?: AbortSignal } = {}) {
    if (current) return Promise.reject(new BackupBusyError());
    if (!opts.out && !dir) {
      return Promise.reject(
        new BackupError("no backup directory: set PEPEUNIT_BACKUP_DIR (or give the file to write)"),
      );
    }
    const at = new Date();
    const out = opts.out ?? path.join(dir as string, backupFileName(at));
    const entry: BackupEntry = {
      name: path.basename(out),
      createdAt: at.toISOString(),
      size: null,
      result: "running",
      error: null,
    };
    const done = (async () => {
      await mkdir(path.dirname(out), { recursive: true, mode: 0o700 });
      const signal = opts.signal ? AbortSignal.any([opts.signal, halt.signal]) : halt.signal;
      return writeBackup(deps, out, opts.progress, signal);
    })().then(
      async (result) => {
        deps.log.info({ backup: result.file, size: result.size }, "backup written");
        if (!opts.out) await rotate();
        return result;
      },
      (err: unknown) => {
        if (stopped && halt.signal.aborted) {
          deps.log.info({ backup: out }, "backup left unfinished: the instance is stopping");
          throw err;
        }
        const reason = err instanceof Error ? err.message : String(err);
        deps.log.error({ err, backup: out }, "backup failed");
        failures.unshift({ ...entry, result: "failed", error: reason });
        failures.splice(deps.config.backupKeep);
        throw err;
      },
    );
    current = { entry, done };
    const clear = () => {
      current = undefined;
    };
    done.then(clear, clear);
    return done;
  }

  function schedule(delayMs: number): void {
    if (stopped || !dir || !deps.config.backupEveryMs) return;
    // setTimeout takes at most 2^31-1 ms (~24.8 days); a longer interval waits in steps.
    if (delayMs > MAX_TIMER_MS) {
      timer = setTimeout(() => schedule(delayMs - MAX_TIMER_MS), MAX_TIMER_MS);
      timer.unref();
      return;
    }
    timer = setTimeout(() => {
      run()
        .catch(() => undefined) // logged and listed by run()
        .finally(() => schedule(deps.config.backupEveryMs));
    }, delayMs);
    timer.unref();
  }

  return {
    start() {
      if (!stopped) return;
      stopped = false;
      halt = new AbortController();
      if (!dir || !deps.config.backupEveryMs) return;
      // The next one is due one interval after the newest (a restart does not reset it).
      void files().then((list) => {
        const newest = Math.max(0, ...list.map((f) => Date.parse(f.createdAt)));
        const every = deps.config.backupEveryMs;
        schedule(newest ? Math.max(0, newest + every - Date.now()) : every);
      });
    },
    async stop() {
      stopped = true;
      halt.abort(new Error("the instance is stopping"));
      clearTimeout(timer);
      await current?.done.catch(() => undefined);
    },
    run,
    running: () => Boolean(current),
    async list() {
      const all = [...(current ? [current.entry] : []), ...failures, ...(await files())];
      return all.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
    },
  };
}
