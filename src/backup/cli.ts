import { existsSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { ConfigError, loadConfig, loadRestoreConfig } from "../config.ts";
import { createDatabase } from "../db/database.ts";
import { restrictNewFiles } from "../private-dirs.ts";
import { BackupError, backupFileName, type Progress } from "./backup-format.ts";
import { answers, requestBackup, socketPath } from "./backup-socket.ts";
import { writeBackup } from "./backup-writer.ts";
import { restoreBackup } from "./restore.ts";

// `npm run backup -- [--out FILE]` and `npm run restore -- FILE [--force]`, with the
// instance's own environment (.env variables, PEPEUNIT_DATA_DIR, DATABASE_URL).
// A refusal (target not empty, newer schema, corrupted archive...) exits 2.

restrictNewFiles();
const [command, ...rest] = process.argv.slice(2);

try {
  if (command === "backup") await backup(rest);
  else if (command === "restore") await restore(rest);
  else throw new BackupError("usage: cli.ts backup [--out FILE] | restore FILE [--force]");
  process.exit(0);
} catch (err) {
  if (err instanceof BackupError || err instanceof ConfigError) {
    process.stderr.write(`\n${err.message}\n`);
    process.exit(2);
  }
  throw err;
}

async function backup(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { out: { type: "string" } } });
  // Not loadConfig yet: in a wrong dir it would make a new .env (new keys) to back up.
  const peek = loadRestoreConfig().config;
  const out = path.resolve(
    values.out ?? path.join(peek.backupDir ?? process.cwd(), backupFileName(new Date())),
  );
  const progress = reporter("backup");
  const socket = socketPath(peek.dataDir);
  let result: { file: string; size: number };
  if (await answers(socket)) {
    // The running instance makes the snapshot (it owns PGlite and the sync lock).
    progress("asking the running instance", 0);
    result = await requestBackup(socket, out, progress);
  } else {
    if (!peek.databaseUrl && !existsSync(path.join(peek.dataDir, "pglite"))) {
      throw new BackupError(
        `no instance answers on ${socket} and there is no database in ${peek.dataDir}/pglite: run the backup with the instance's environment (PEPEUNIT_DATA_DIR, DATABASE_URL)`,
      );
    }
    const config = loadConfig();
    progress("no instance running: opening the data directly", 0);
    const database = await createDatabase({
      url: config.databaseUrl,
      pgliteDir: `${config.dataDir}/pglite`,
      pgliteThread: config.pgliteThread,
    });
    // Ctrl-C or a stop: the temporary file goes, nothing that looks like a backup stays.
    const abort = new AbortController();
    const stop = () => abort.abort(new BackupError("backup interrupted: nothing written"));
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    try {
      result = await writeBackup({ config, database }, out, progress, abort.signal);
    } finally {
      await database.close();
    }
  }
  progress.end(`backup written: ${result.file} (${formatSize(result.size)})`);
}

async function restore(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { force: { type: "boolean", default: false } },
  });
  const [file] = positionals;
  if (!file || positionals.length > 1)
    throw new BackupError("usage: npm run restore -- FILE [--force]");
  const { config, givenSecret, givenEncrypt } = loadRestoreConfig();
  if (await answers(socketPath(config.dataDir))) {
    throw new BackupError(
      `an instance is running on ${config.dataDir}: stop it before restoring into its data`,
    );
  }
  const progress = reporter("restore");
  const { manifest, databaseKind } = await restoreBackup(
    path.resolve(file),
    {
      dataDir: config.dataDir,
      repositoriesDir: config.repositoriesDir,
      databaseUrl: config.databaseUrl,
      givenSecret,
      givenEncrypt,
    },
    { force: values.force, progress },
  );
  const rows = manifest.tables.reduce((n, t) => n + t.rows, 0);
  progress.end(
    `restored: ${rows} rows of ${manifest.tables.length} tables (${manifest.database_kind} → ${databaseKind}), made ${manifest.created_at} by Pepeunit ${manifest.instance_version}`,
  );
}

/** A progress bar on a terminal; a plain line per step otherwise (logs, CI). */
function reporter(what: string): Progress & { end(line: string): void } {
  const tty = process.stderr.isTTY;
  let last = "";
  const fn = (step: string, fraction: number) => {
    if (tty) {
      const width = 30;
      const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width);
      const bar = `[${"#".repeat(filled)}${".".repeat(width - filled)}] ${String(Math.round(fraction * 100)).padStart(3)}%`;
      process.stderr.write(`\r\x1b[K${what} ${bar} ${step}`);
    } else if (step !== last) {
      process.stderr.write(`${what}: ${step}\n`);
    }
    last = step;
  };
  return Object.assign(fn, {
    end(line: string) {
      if (tty) process.stderr.write("\r\x1b[K");
      process.stdout.write(`${line}\n`);
    },
  });
}

function formatSize(bytes: number): string {
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
