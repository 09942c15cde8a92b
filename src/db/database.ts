import { execFile } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { PGlite } from "@electric-sql/pglite";
import { type Query, type SQL, sql } from "drizzle-orm";
import { type PgDatabase, PgDialect, type PgQueryResultHKT } from "drizzle-orm/pg-core";
import { projectPath } from "../project-root.ts";
import { paramText } from "./param-text.ts";
import { openPgliteInstance } from "./pglite-open.ts";
import { pgliteRawRows } from "./pglite-raw-rows.ts";
import * as schema from "./schema.ts";

/** The drizzle handle every feature uses; PGlite and postgres.js both satisfy it. */
export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;
/** A handle or an open transaction: functions taking this run inside or outside one. */
export type DbLike = Pick<
  Db,
  "select" | "selectDistinct" | "insert" | "update" | "delete" | "execute" | "transaction"
>;

export type Database = {
  db: Db;
  kind: "pglite" | "postgres";
  /**
   * The rows of a query as each column's bytes (null for SQL NULL), undecoded, for
   * answers that go to the client as they are: a large text column decoded to a string
   * and encoded back is two copies on the JS heap per read. Outside any transaction.
   */
  rawRows: (query: SQL) => Promise<(Buffer | null)[][]>;
  ping(): Promise<void>;
  close(): Promise<void>;
};

export const migrationsFolder = projectPath("migrations");

export type DatabaseOptions = {
  /** postgres:// URL; absent → embedded PGlite. */
  url?: string | undefined;
  /** PGlite data directory; absent → in memory (tests). */
  pgliteDir?: string | undefined;
  /** Pool size for postgres.js. */
  maxConnections?: number;
  /** false: open as is (a restore applies the migrations inside its own transaction). */
  migrate?: boolean;
  /** PGlite's shared_buffers in MB (its page cache inside the WebAssembly heap); default 8. */
  pgliteSharedBuffersMb?: number | undefined;
  /**
   * PGlite runs in a worker thread (default): its WebAssembly executes each statement
   * synchronously, and on the main thread that is milliseconds of a blocked event loop
   * per query (MQTT, HTTP and timers wait). false: in this thread, as before.
   */
  pgliteThread?: boolean | undefined;
};

/** Opens the database and applies pending migrations before anything else uses it. */
export async function createDatabase(opts: DatabaseOptions): Promise<Database> {
  if (opts.url) {
    const { default: postgres } = await import("postgres");
    const { drizzle } = await import("drizzle-orm/postgres-js");
    const { migrate } = await import("drizzle-orm/postgres-js/migrator");
    const client = postgres(opts.url, {
      max: opts.maxConnections ?? 10,
      onnotice: () => {},
    });
    const db = drizzle(client, { schema });
    if (opts.migrate !== false) {
      // The processes of a cluster start together: one migrates, the others wait for it
      // (a session lock on one reserved connection; the key is arbitrary but fixed).
      const lockConnection = await client.reserve();
      try {
        await lockConnection`select pg_advisory_lock(7240137411)`;
        await migrate(db, { migrationsFolder });
      } finally {
        await lockConnection`select pg_advisory_unlock(7240137411)`.catch(() => {});
        lockConnection.release();
      }
    }
    return databaseOf({
      db: db as unknown as Db,
      kind: "postgres",
      rawRows: async (q) => {
        const rows = await client.unsafe(q.sql, q.params.map(paramText)).raw();
        return rows as unknown as (Buffer | null)[][];
      },
      close: () => client.end({ timeout: 5 }),
    });
  }
  // The database files are the instance's alone (see src/private-dirs.ts).
  if (opts.pgliteDir) mkdirSync(path.dirname(opts.pgliteDir), { recursive: true, mode: 0o700 });
  // A new cluster is made in a process of its own: initdb and the first migrations
  // leave ~300 MB in the WebAssembly heaps and the allocator that a process never
  // gives back, and an instance is often measured (and lives) right after its first start.
  if (
    opts.pgliteDir &&
    opts.migrate !== false &&
    !existsSync(path.join(opts.pgliteDir, "PG_VERSION"))
  ) {
    await createPgliteCluster(opts.pgliteDir, opts.pgliteSharedBuffersMb);
  }
  if (opts.pgliteThread === false) return openPglite(opts);
  const { openPgliteWorker } = await import("./pglite-worker.ts");
  return openPgliteWorker(opts);
}

// .ts when the server runs from src/ (type stripping), .js when from its build.
const clusterScript = fileURLToPath(
  new URL(`./pglite-cluster${path.extname(import.meta.url)}`, import.meta.url),
);

function createPgliteCluster(dir: string, sharedBuffersMb: number | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [clusterScript, dir, String(sharedBuffersMb ?? "")],
      (err, _stdout, stderr) => {
        if (err)
          reject(
            new Error(`creating the PGlite database in ${dir} failed: ${stderr || err.message}`),
          );
        else resolve();
      },
    );
  });
}

/** Applies pending migrations through a PGlite client (in this thread or the thread's). */
export async function migratePglite(client: PGlite): Promise<void> {
  const { drizzle } = await import("drizzle-orm/pglite");
  const { migrate } = await import("drizzle-orm/pglite/migrator");
  await migrate(drizzle({ client }), { migrationsFolder });
}

/**
 * Opens (and migrates) PGlite in this process, its queries run on this thread: for the
 * short-lived cluster-creating process, and with `pgliteThread: false`.
 */
export async function openPglite(opts: DatabaseOptions): Promise<Database> {
  const { protocol } = await import("@electric-sql/pglite");
  const { drizzle } = await import("drizzle-orm/pglite");
  const client = await openPgliteInstance(opts);
  if (opts.migrate !== false) await migratePglite(client);
  return databaseOf({
    db: drizzle({ client, schema }) as unknown as Db,
    kind: "pglite",
    rawRows: (q) => pgliteRawRows(client, protocol.serialize, q),
    close: () => client.close(),
  });
}

/**
 * A Database around its drizzle handle; `rawRows` is given the query as SQL text and
 * parameters, as each driver sends it.
 */
export function databaseOf(parts: {
  db: Db;
  kind: Database["kind"];
  rawRows: (query: Query) => Promise<(Buffer | null)[][]>;
  close: () => Promise<void>;
}): Database {
  const dialect = new PgDialect();
  return {
    db: parts.db,
    kind: parts.kind,
    rawRows: (query) => parts.rawRows(dialect.sqlToQuery(query)),
    ping: async () => {
      await parts.db.execute(sql`select 1`);
    },
    close: parts.close,
  };
}
