import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { getTableName, is } from "drizzle-orm";
import { PgTable } from "drizzle-orm/pg-core";
import tar from "tar-stream";
import { parseDotEnv, secretsFileText } from "../config.ts";
import { createDatabase, type Database } from "../db/database.ts";
import * as schema from "../db/schema.ts";
import {
  BackupError,
  MANIFEST,
  type Manifest,
  ManifestSchema,
  type Progress,
  REPOS_PREFIX,
  SECRETS,
  SEQUENCES,
} from "./backup-format.ts";
import {
  applyMigrations,
  codeSchemaVersion,
  databaseInUse,
  knownSchemaVersion,
  loadRows,
  loadSequences,
  wipeDatabase,
} from "./db-dump.ts";

// Restore: refuse early (target not empty, newer schema, corrupted archive), stage
// everything beside its destination, load the database in one transaction, and only
// then move the clones and the secrets in. A refusal or failure leaves the target as
// it was.

const LOAD_BATCH = 5000;

/** The tables of this code's schema: any other in the target is someone else's. */
const KNOWN_TABLES = Object.values(schema)
  .filter((t) => is(t, PgTable))
  .map((t) => getTableName(t as PgTable));

export type RestoreTarget = {
  dataDir: string;
  repositoriesDir: string;
  /** postgres:// → that database; absent → PGlite in <dataDir>/pglite. */
  databaseUrl: string | undefined;
  /** PEPEUNIT_SECRET_KEY / PEPEUNIT_ENCRYPT_KEY given as variables (they must match). */
  givenSecret: string | undefined;
  givenEncrypt: string | undefined;
};

export type RestoreResult = { manifest: Manifest; databaseKind: "pglite" | "postgres" };

export async function restoreBackup(
  file: string,
  target: RestoreTarget,
  opts: { force?: boolean; progress?: Progress } = {},
): Promise<RestoreResult> {
  const progress = opts.progress ?? (() => {});
  const force = Boolean(opts.force);
  await stat(file).catch(() => {
    throw new BackupError(`no such backup file: ${file}`);
  });
  const dataDir = path.resolve(target.dataDir);
  const reposDir = path.resolve(target.repositoriesDir);
  const pgliteDir = path.join(dataDir, "pglite");
  const envFile = path.join(dataDir, ".env");

  progress("checking the target", 0);
  const nonEmpty: string[] = [];
  if (await hasEntries(reposDir)) nonEmpty.push(`${reposDir} is not empty`);
  if (!target.databaseUrl && (await hasEntries(pgliteDir))) {
    const why = await pgliteInUse(pgliteDir);
    if (why) nonEmpty.push(`the database in ${pgliteDir}: ${why}`);
  }
  let pg: Database | undefined;
  if (target.databaseUrl) {
    pg = await createDatabase({ url: target.databaseUrl, migrate: false, maxConnections: 1 });
    const why = await databaseInUse(pg.db, KNOWN_TABLES);
    if (why) nonEmpty.push(`the database (DATABASE_URL): ${why}`);
  }
  const rand = randomBytes(4).toString("hex");
  const staging = path.join(dataDir, `.restore-${rand}`);
  const reposStaging = path.join(
    path.dirname(reposDir),
    `.${path.basename(reposDir)}.restore-${rand}`,
  );
  try {
    if (nonEmpty.length && !force) {
      throw new BackupError(
        `the target is not empty (${nonEmpty.join("; ")}): restore into an empty data dir and database, or pass --force to replace them`,
      );
    }
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    await mkdir(staging, { mode: 0o700 });
    await mkdir(reposStaging, { mode: 0o700 });

    progress("reading the archive", 0.05);
    const manifest = await extract(file, staging, reposStaging);
    const secrets = parseDotEnv(await readFile(path.join(staging, SECRETS), "utf8"));
    checkSecrets(secrets, target);
    if (!force) {
      const existing = await readFile(envFile, "utf8").catch(() => undefined);
      if (existing !== undefined) {
        const e = parseDotEnv(existing);
        if (
          e.PEPEUNIT_SECRET_KEY !== secrets.PEPEUNIT_SECRET_KEY ||
          e.PEPEUNIT_ENCRYPT_KEY !== secrets.PEPEUNIT_ENCRYPT_KEY
        ) {
          throw new BackupError(
            `${envFile} holds other instance secrets than the backup: restore into an empty data dir, or pass --force to replace them`,
          );
        }
      }
    }

    // The database: one transaction, from an empty schema to the code's.
    let db: Database;
    if (pg) db = pg;
    else db = await createDatabase({ pgliteDir: path.join(staging, "pglite"), migrate: false });
    try {
      await db.db.transaction(async (tx) => {
        await wipeDatabase(tx);
        await applyMigrations(tx, 0, manifest.schema.index);
        const total = manifest.tables.reduce((n, t) => n + t.rows, 0) || 1;
        let done = 0;
        for (const table of manifest.tables) {
          progress(`database: ${table.name}`, 0.3 + (done / total) * 0.6);
          for (const name of table.files) {
            const lines = (await readFile(path.join(staging, name), "utf8")).split("\n");
            lines.pop(); // the file ends with a newline
            for (let i = 0; i < lines.length; i += LOAD_BATCH) {
              await loadRows(tx, table.name, lines.slice(i, i + LOAD_BATCH));
            }
            done += lines.length;
          }
        }
        await loadSequences(
          tx,
          JSON.parse(await readFile(path.join(staging, SEQUENCES), "utf8")) as Record<
            string,
            string
          >,
        );
        // A backup of an older schema: its rows are in; the newer migrations bring them up.
        await applyMigrations(tx, manifest.schema.index + 1);
      });
    } finally {
      await db.close();
      if (db === pg) pg = undefined;
    }

    progress("moving the files in", 0.95);
    if (!target.databaseUrl) {
      await rm(pgliteDir, { recursive: true, force: true });
      await rename(path.join(staging, "pglite"), pgliteDir);
    }
    await rm(reposDir, { recursive: true, force: true });
    await rename(reposStaging, reposDir);
    const envTemp = path.join(staging, ".env");
    await writeFile(
      envTemp,
      secretsFileText("Restored by Pepeunit from a backup", {
        secret: secrets.PEPEUNIT_SECRET_KEY as string,
        encrypt: secrets.PEPEUNIT_ENCRYPT_KEY as string,
      }),
      { mode: 0o600 },
    );
    await rename(envTemp, envFile);
    progress("done", 1);
    return { manifest, databaseKind: target.databaseUrl ? "postgres" : "pglite" };
  } finally {
    if (pg) await pg.close().catch(() => undefined);
    await rm(staging, { recursive: true, force: true });
    await rm(reposStaging, { recursive: true, force: true });
  }
}

async function hasEntries(dir: string): Promise<boolean> {
  const entries = await readdir(dir).catch(() => []);
  return entries.length > 0;
}

async function pgliteInUse(dir: string): Promise<string | null> {
  const db = await createDatabase({ pgliteDir: dir, migrate: false });
  try {
    return await databaseInUse(db.db, KNOWN_TABLES);
  } finally {
    await db.close();
  }
}

function checkSecrets(secrets: Record<string, string>, target: RestoreTarget): void {
  if (!secrets.PEPEUNIT_SECRET_KEY || !secrets.PEPEUNIT_ENCRYPT_KEY) {
    throw new BackupError("corrupted archive: the instance secrets are missing");
  }
  for (const [given, name] of [
    [target.givenSecret, "PEPEUNIT_SECRET_KEY"],
    [target.givenEncrypt, "PEPEUNIT_ENCRYPT_KEY"],
  ] as const) {
    if (given && given !== secrets[name]) {
      throw new BackupError(
        `${name} is set in the environment to another value than the backup's: unset it (the restored data dir's .env carries it) or set it to the backup's value`,
      );
    }
  }
}

/**
 * Unpacks the archive into the staging dirs while hashing every entry, then checks the
 * manifest: present, of a known format and schema, and every checksum and size right.
 */
async function extract(file: string, staging: string, reposStaging: string): Promise<Manifest> {
  const seen = new Map<string, { size: number; sha256: string }>();
  let manifestText: string | undefined;
  const ex = tar.extract();
  const feeding = pipeline(createReadStream(file), createGunzip(), ex);
  feeding.catch(() => undefined); // reported through the iteration below
  try {
    for await (const entry of ex) {
      const name = entry.header.name;
      if (
        entry.header.type === "directory" &&
        name.startsWith(REPOS_PREFIX) &&
        safeName(name.replace(/\/$/, ""))
      ) {
        await mkdir(path.join(reposStaging, name.slice(REPOS_PREFIX.length)), {
          recursive: true,
          mode: 0o700,
        });
        entry.resume();
        continue;
      }
      if (entry.header.type !== "file" || !safeName(name)) {
        throw new BackupError(`corrupted archive: unexpected entry ${JSON.stringify(name)}`);
      }
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      const body = Buffer.concat(chunks);
      if (name === MANIFEST) {
        manifestText = body.toString("utf8");
        continue;
      }
      seen.set(name, {
        size: body.length,
        sha256: createHash("sha256").update(body).digest("hex"),
      });
      const dest = name.startsWith(REPOS_PREFIX)
        ? path.join(reposStaging, name.slice(REPOS_PREFIX.length))
        : path.join(staging, name);
      await mkdir(path.dirname(dest), { recursive: true, mode: 0o700 });
      await writeFile(dest, body, { mode: 0o600 });
    }
    await feeding;
  } catch (err) {
    if (err instanceof BackupError) throw err;
    throw new BackupError(`corrupted archive: ${(err as Error).message}`);
  }
  if (manifestText === undefined) {
    throw new BackupError("corrupted archive: no manifest (an incomplete or foreign file)");
  }
  let manifest: Manifest;
  try {
    manifest = ManifestSchema.parse(JSON.parse(manifestText));
  } catch {
    throw new BackupError("corrupted archive: the manifest is unreadable");
  }
  const code = codeSchemaVersion();
  if (manifest.schema.index > code.index) {
    throw new BackupError(
      `the backup is of a newer schema (${manifest.schema.tag}) than this code knows (${code.tag}): upgrade Pepeunit (${manifest.instance_version} or later) before restoring`,
    );
  }
  if (!knownSchemaVersion(manifest.schema)) {
    throw new BackupError(`the backup's schema ${manifest.schema.tag} is unknown to this code`);
  }
  for (const [name, want] of Object.entries(manifest.files)) {
    const got = seen.get(name);
    if (!got || got.size !== want.size || got.sha256 !== want.sha256) {
      throw new BackupError(`corrupted archive: ${name} does not match its checksum`);
    }
  }
  for (const name of seen.keys()) {
    if (!manifest.files[name])
      throw new BackupError(`corrupted archive: ${name} is not in the manifest`);
  }
  return manifest;
}

function safeName(name: string): boolean {
  return (
    !name.startsWith("/") &&
    !name.split("/").some((p) => p === ".." || p === "") &&
    (name.startsWith("db/") ||
      name.startsWith(REPOS_PREFIX) ||
      name === SECRETS ||
      name === MANIFEST)
  );
}
