import { readFileSync } from "node:fs";
import path from "node:path";
import { sql } from "drizzle-orm";
import { readMigrationFiles } from "drizzle-orm/migrator";
import { type Db, type DbLike, migrationsFolder } from "../db/database.ts";
import { rowsOf } from "../federation/kv-store.ts";

// The database in one logical format for PGlite (PostgreSQL 18) and PostgreSQL 15 alike:
// every row as the JSON PostgreSQL itself prints (row_to_json), and back through
// json_populate_recordset, so each column's own text form carries its type (bytea as
// \x hex, timestamps with their zone, bigint digits never through a JS number, jsonb
// as JSON). Tables go in foreign-key order, so a restore inserts parents first.

/** Rows per FETCH and per INSERT: bounded memory whatever the table size. */
const BATCH_ROWS = 5000;

export type SchemaVersion = { index: number; tag: string };

function journal(): Array<{ idx: number; tag: string }> {
  const file = path.join(migrationsFolder, "meta", "_journal.json");
  return (
    JSON.parse(readFileSync(file, "utf8")) as { entries: Array<{ idx: number; tag: string }> }
  ).entries;
}

/** The last migration the code knows: what a database this code opened is migrated to. */
export function codeSchemaVersion(): SchemaVersion {
  const entries = journal();
  const last = entries[entries.length - 1];
  if (!last) throw new Error("no migrations");
  return { index: last.idx, tag: last.tag };
}

/** Whether `v` names a migration of this code (same index, same tag). */
export function knownSchemaVersion(v: SchemaVersion): boolean {
  return journal().some((e) => e.idx === v.index && e.tag === v.tag);
}

export type TableDump = { name: string; rows: number };

/**
 * Reads every table inside one REPEATABLE READ, READ ONLY transaction (a consistent
 * snapshot while the instance keeps writing) and hands the rows out in batches of
 * JSON lines. `onTable` is called before a table's first batch.
 */
export async function dumpDatabase(
  db: Db,
  sink: {
    onTable(name: string, index: number, total: number): Promise<void> | void;
    onRows(name: string, lines: string[]): Promise<void>;
    onSequences(values: Record<string, string>): Promise<void>;
  },
): Promise<TableDump[]> {
  return db.transaction(
    async (tx) => {
      const tables = await tablesInOrder(tx);
      const done: TableDump[] = [];
      for (const [i, name] of tables.entries()) {
        await sink.onTable(name, i, tables.length);
        const ident = sql.identifier(name);
        await tx.execute(
          sql`declare backup_rows no scroll cursor for select row_to_json(t)::text as j from ${ident} t`,
        );
        let rows = 0;
        for (;;) {
          const batch = rowsOf<{ j: string }>(
            await tx.execute(sql.raw(`fetch ${BATCH_ROWS} from backup_rows`)),
          );
          if (!batch.length) break;
          rows += batch.length;
          await sink.onRows(
            name,
            batch.map((r) => r.j),
          );
          if (batch.length < BATCH_ROWS) break;
        }
        await tx.execute(sql`close backup_rows`);
        done.push({ name, rows });
      }
      const seqs = rowsOf<{ name: string; value: string | null }>(
        await tx.execute(sql`
          select sequencename as name, last_value::text as value
          from pg_sequences where schemaname = 'public'`),
      );
      const values: Record<string, string> = {};
      for (const s of seqs) if (s.value !== null) values[s.name] = s.value;
      await sink.onSequences(values);
      return done;
    },
    { isolationLevel: "repeatable read", accessMode: "read only" },
  );
}

/** The application's tables, parents before the tables whose foreign keys name them. */
async function tablesInOrder(db: DbLike): Promise<string[]> {
  const names = rowsOf<{ name: string }>(
    await db.execute(sql`
      select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and c.relkind in ('r', 'p') order by c.relname`),
  ).map((r) => r.name);
  const fks = rowsOf<{ child: string; parent: string }>(
    await db.execute(sql`
      select cl.relname as child, pr.relname as parent from pg_constraint k
      join pg_class cl on cl.oid = k.conrelid join pg_class pr on pr.oid = k.confrelid
      join pg_namespace n on n.oid = cl.relnamespace
      where k.contype = 'f' and n.nspname = 'public' and cl.oid <> pr.oid`),
  );
  const ordered: string[] = [];
  const placed = new Set<string>();
  const visiting = new Set<string>();
  const visit = (name: string) => {
    if (placed.has(name) || visiting.has(name)) return;
    visiting.add(name);
    for (const fk of fks) if (fk.child === name) visit(fk.parent);
    visiting.delete(name);
    placed.add(name);
    ordered.push(name);
  };
  for (const name of names) visit(name);
  return ordered;
}

/**
 * Applies the code's migrations up to and including `upTo` (every one when absent)
 * inside the caller's transaction, recording them as drizzle's migrator does, so the
 * instance's own start later sees them applied. Returns nothing: a failure throws and
 * the caller's transaction rolls back.
 */
export async function applyMigrations(tx: DbLike, from: number, upTo?: number): Promise<void> {
  const migrations = readMigrationFiles({ migrationsFolder });
  await tx.execute(sql`create schema if not exists drizzle`);
  await tx.execute(sql`
    create table if not exists drizzle.__drizzle_migrations (
      id serial primary key, hash text not null, created_at bigint)`);
  for (const [idx, m] of migrations.entries()) {
    if (idx < from || (upTo !== undefined && idx > upTo)) continue;
    for (const statement of m.sql) {
      if (statement.trim()) await tx.execute(sql.raw(statement));
    }
    await tx.execute(
      sql`insert into drizzle.__drizzle_migrations (hash, created_at) values (${m.hash}, ${m.folderMillis})`,
    );
  }
}

/** Inserts one batch of a table's JSON lines (the columns the lines carry). */
export async function loadRows(tx: DbLike, table: string, lines: string[]): Promise<void> {
  if (!lines.length || !lines[0]) return;
  const insertable = await insertableColumns(tx, table);
  const keys = Object.keys(JSON.parse(lines[0]) as object).filter((k) => insertable.has(k));
  const cols = sql.join(
    keys.map((k) => sql.identifier(k)),
    sql`, `,
  );
  const ident = sql.identifier(table);
  await tx.execute(sql`
    insert into ${ident} (${cols}) overriding system value
    select ${cols} from json_populate_recordset(null::${ident}, ${`[${lines.join(",")}]`}::json)`);
}

const columnCache = new WeakMap<object, Map<string, Set<string>>>();

async function insertableColumns(tx: DbLike, table: string): Promise<Set<string>> {
  let byTable = columnCache.get(tx);
  if (!byTable) {
    byTable = new Map();
    columnCache.set(tx, byTable);
  }
  let cols = byTable.get(table);
  if (!cols) {
    cols = new Set(
      rowsOf<{ name: string }>(
        await tx.execute(sql`
          select column_name as name from information_schema.columns
          where table_schema = 'public' and table_name = ${table} and is_generated = 'NEVER'`),
      ).map((r) => r.name),
    );
    byTable.set(table, cols);
  }
  return cols;
}

/** Sets every sequence the backup had a value for (ids continue after the restored rows). */
export async function loadSequences(tx: DbLike, values: Record<string, string>): Promise<void> {
  for (const [name, value] of Object.entries(values)) {
    await tx.execute(sql`select setval(${`public.${quoteIdent(name)}`}, ${value}::bigint, true)`);
  }
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * Why the database is not an empty target (a restore refuses it without --force), or
 * null: rows a person made (users, repos), or tables Pepeunit does not know (another
 * application's: a restore would drop them). A fresh instance's own rows do not count.
 */
export async function databaseInUse(db: DbLike, known: readonly string[]): Promise<string | null> {
  const tables = rowsOf<{ name: string }>(
    await db.execute(sql`
      select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and c.relkind in ('r', 'p', 'v', 'm', 'f')`),
  ).map((r) => r.name);
  const foreign = tables.filter((t) => !known.includes(t));
  if (foreign.length)
    return `it has tables Pepeunit does not know (${foreign.slice(0, 5).join(", ")})`;
  if (!tables.includes("users") || !tables.includes("repos")) return null;
  const [row] = rowsOf<{ any: boolean }>(
    await db.execute(sql`select exists(select 1 from users) or exists(select 1 from repos) as any`),
  );
  return row?.any ? "it holds users or repos" : null;
}

/** Empties the database for a forced restore (inside the restore's transaction). */
export async function wipeDatabase(tx: DbLike): Promise<void> {
  await tx.execute(sql`drop schema if exists drizzle cascade`);
  await tx.execute(sql`drop schema if exists public cascade`);
  await tx.execute(sql`create schema public`);
}
