import { createHash, randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { open, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import tar from "tar-stream";
import { type Config, secretsFileText } from "../config.ts";
import type { Database } from "../db/database.ts";
import { writeGateFor } from "../git/write-gate.ts";
import {
  FORMAT,
  FORMAT_VERSION,
  instanceVersion,
  MANIFEST,
  type Manifest,
  type Progress,
  REPOS_PREFIX,
  SECRETS,
  SEQUENCES,
} from "./backup-format.ts";
import { codeSchemaVersion, dumpDatabase } from "./db-dump.ts";

/** A JSON-lines file of the archive is cut at about this size (held in memory once). */
const CHUNK_BYTES = 8 * 1024 * 1024;

export type BackupSource = {
  config: Pick<Config, "secretKey" | "encryptKey" | "repositoriesDir">;
  database: Database;
};

export type BackupResult = { file: string; size: number; createdAt: string };

/**
 * Writes one backup archive to `outFile`: first under a hidden temporary name in the
 * same directory (mode 0600), renamed only once complete and synced, so an interrupted
 * backup never leaves a file that looks like a backup.
 */
export async function writeBackup(
  src: BackupSource,
  outFile: string,
  progress: Progress = () => {},
  signal?: AbortSignal,
): Promise<BackupResult> {
  const target = path.resolve(outFile);
  const temp = path.join(
    path.dirname(target),
    `.${path.basename(target)}.${randomBytes(4).toString("hex")}.incomplete`,
  );
  const createdAt = new Date().toISOString();
  const pack = tar.pack();
  const handle = await open(temp, "wx", 0o600);
  const written = pipeline(
    pack,
    createGzip({ level: 6 }),
    createWriteStream("", { fd: handle, flush: true }),
  );
  // A failure of the file side ends the pack too (so adding entries stops).
  written.catch((err: unknown) => pack.destroy(err as Error));
  try {
    const files: Manifest["files"] = {};
    const add = (name: string, body: Buffer, mtime?: Date) => {
      signal?.throwIfAborted();
      files[name] = { size: body.length, sha256: createHash("sha256").update(body).digest("hex") };
      return new Promise<void>((resolve, reject) =>
        pack.entry(
          { name, size: body.length, mode: 0o600, mtime: mtime ?? new Date(createdAt) },
          body,
          (err) => (err ? reject(err) : resolve()),
        ),
      );
    };
    const tables = await dumpTables(src.database, add, progress);
    progress("secrets", 0.9);
    // The keys in force (from <dataDir>/.env or the environment): what the data needs.
    await add(
      SECRETS,
      Buffer.from(
        secretsFileText("Pepeunit instance secrets, from a backup", {
          secret: Buffer.from(src.config.secretKey).toString("base64"),
          encrypt: Buffer.from(src.config.encryptKey).toString("base64"),
        }),
      ),
    );
    progress("repositories", 0.92);
    const addDir = (name: string) =>
      new Promise<void>((resolve, reject) => {
        signal?.throwIfAborted();
        pack.entry({ name, type: "directory", mode: 0o700 }, (err) =>
          err ? reject(err) : resolve(),
        );
      });
    await writeGateFor(path.resolve(src.config.repositoriesDir)).exclusive(() =>
      addTree(src.config.repositoriesDir, REPOS_PREFIX, add, addDir),
    );
    const manifest: Manifest = {
      format: FORMAT,
      format_version: FORMAT_VERSION,
      instance_version: instanceVersion(),
      schema: codeSchemaVersion(),
      database_kind: src.database.kind,
      created_at: createdAt,
      tables,
      files,
    };
    const body = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
    await new Promise<void>((resolve, reject) =>
      pack.entry({ name: MANIFEST, size: body.length, mode: 0o600 }, body, (err) =>
        err ? reject(err) : resolve(),
      ),
    );
    signal?.throwIfAborted();
    pack.finalize();
    await written;
    await rename(temp, target);
    progress("done", 1);
    return { file: target, size: (await stat(target)).size, createdAt };
  } catch (err) {
    pack.destroy(err as Error);
    await written.catch(() => undefined);
    await rm(temp, { force: true });
    throw err;
  }
}

async function dumpTables(
  database: Database,
  add: (name: string, body: Buffer) => Promise<void>,
  progress: Progress,
): Promise<Manifest["tables"]> {
  const tables: Manifest["tables"] = [];
  let current: Manifest["tables"][number] | undefined;
  let prefix = "";
  let pending: string[] = [];
  let pendingBytes = 0;
  const flush = async () => {
    if (!current || !pending.length) return;
    const name = `db/${prefix}.${String(current.files.length).padStart(4, "0")}.jsonl`;
    current.files.push(name);
    const body = Buffer.from(`${pending.join("\n")}\n`);
    pending = [];
    pendingBytes = 0;
    await add(name, body);
  };
  const counts = await dumpDatabase(database.db, {
    async onTable(name, index, total) {
      await flush();
      current = { name, rows: 0, files: [] };
      tables.push(current);
      prefix = `${String(index).padStart(3, "0")}-${name}`;
      progress(`database: ${name}`, (index / total) * 0.9);
    },
    async onRows(_name, lines) {
      for (const line of lines) {
        pending.push(line);
        pendingBytes += line.length + 1;
        if (pendingBytes >= CHUNK_BYTES) await flush();
      }
    },
    async onSequences(values) {
      await flush();
      await add(SEQUENCES, Buffer.from(JSON.stringify(values)));
    },
  });
  for (const t of tables) t.rows = counts.find((c) => c.name === t.name)?.rows ?? 0;
  return tables;
}

/**
 * Adds every directory and regular file under `dir` (missing: nothing) as
 * `<prefix><relative path>`; empty directories too (git needs refs/ to see a repository).
 */
async function addTree(
  dir: string,
  prefix: string,
  add: (name: string, body: Buffer, mtime?: Date) => Promise<void>,
  addDir: (name: string) => Promise<void>,
): Promise<void> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(
    (err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return [];
      throw err;
    },
  );
  for (const e of entries.sort((a, b) =>
    path.join(a.parentPath, a.name).localeCompare(path.join(b.parentPath, b.name)),
  )) {
    const full = path.join(e.parentPath, e.name);
    const rel = path.relative(dir, full).split(path.sep).join("/");
    if (e.isDirectory()) await addDir(`${prefix}${rel}/`);
    if (!e.isFile()) continue;
    const info = await stat(full);
    await add(`${prefix}${rel}`, await readFile(full), info.mtime);
  }
}
