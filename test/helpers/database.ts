import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { createDatabase, type Database } from "../../src/db/database.ts";

export type TestDbKind = "pglite" | "postgres";

export function testDbKind(): TestDbKind {
  const kind = process.env.PEPEUNIT_TEST_DB ?? "pglite";
  if (kind !== "pglite" && kind !== "postgres") throw new Error(`PEPEUNIT_TEST_DB=${kind}?`);
  return kind;
}

const adminUrl = () => process.env.DATABASE_URL_TEST ?? "postgres://postgres@127.0.0.1:5432/test";

/** A new, empty PostgreSQL database (e.g. for a child process's DATABASE_URL); drop() removes it. */
export async function createPostgresDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `pepeunit_t_${randomBytes(6).toString("hex")}`;
  const admin = postgres(adminUrl(), { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl());
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const a = postgres(adminUrl(), { max: 1, onnotice: () => {} });
      try {
        await a.unsafe(`drop database if exists ${name} with (force)`);
      } finally {
        await a.end();
      }
    },
  };
}

/**
 * A fresh, migrated database for one test instance: in-memory PGlite, or a new
 * PostgreSQL database dropped again by close(). Never skips: an unreachable
 * PostgreSQL is an error.
 */
export async function createTestDatabase(): Promise<Database> {
  if (testDbKind() === "pglite") return createDatabase({});
  const created = await createPostgresDatabase();
  const db = await createDatabase({ url: created.url, maxConnections: 5 });
  return {
    ...db,
    async close() {
      await db.close();
      await created.drop();
    },
  };
}
