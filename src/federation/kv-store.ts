import type { KvKey, KvStore, KvStoreListEntry, KvStoreSetOptions } from "@fedify/fedify";
import { and, eq, gt, isNull, lt, or, sql } from "drizzle-orm";
import type { DbLike } from "../db/database.ts";
import { federationKv } from "../db/schema.ts";

// Fedify's key–value store (caches of remote documents and keys, inbox idempotence)
// on the project's own database, so PGlite and PostgreSQL behave alike.
// A key is stored as the JSON text of its array; a prefix of an array is then a
// text prefix of `["a","b"` followed by `,` or `]`.

const live = () => or(isNull(federationKv.expiresAt), gt(federationKv.expiresAt, sql`now()`));

function expiry(options?: KvStoreSetOptions): Date | null {
  if (!options?.ttl) return null;
  return new Date(Date.now() + options.ttl.total("millisecond"));
}

/**
 * A value as the jsonb column takes it. Fedify stores null on purpose (a key that
 * could not be fetched is cached as null); drizzle would bind JS null as SQL NULL,
 * which the NOT NULL column refuses, so it goes in as JSON null.
 */
const jsonValue = (value: unknown) => (value === null ? sql`'null'::jsonb` : value);

function likeEscape(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

export class DrizzleKvStore implements KvStore {
  readonly #db: DbLike;

  constructor(db: DbLike) {
    this.#db = db;
  }

  async get<T = unknown>(key: KvKey): Promise<T | undefined> {
    const [row] = await this.#db
      .select({ value: federationKv.value })
      .from(federationKv)
      .where(and(eq(federationKv.key, JSON.stringify(key)), live()));
    return row ? (row.value as T) : undefined;
  }

  async set(key: KvKey, value: unknown, options?: KvStoreSetOptions): Promise<void> {
    const expiresAt = expiry(options);
    const json = jsonValue(value);
    await this.#db
      .insert(federationKv)
      .values({ key: JSON.stringify(key), value: json, expiresAt })
      .onConflictDoUpdate({ target: federationKv.key, set: { value: json, expiresAt } });
  }

  async delete(key: KvKey): Promise<void> {
    await this.#db.delete(federationKv).where(eq(federationKv.key, JSON.stringify(key)));
  }

  /** Compare-and-swap: `expectedValue` undefined means "absent (or expired)". */
  async cas(
    key: KvKey,
    expectedValue: unknown,
    newValue: unknown,
    options?: KvStoreSetOptions,
  ): Promise<boolean> {
    const k = JSON.stringify(key);
    const expiresAt = expiry(options);
    if (expectedValue === undefined) {
      // Absent, or present but expired (then it may be overwritten).
      const rows = await this.#db.execute(sql`
        insert into federation_kv (key, value, expires_at)
        values (${k}, ${JSON.stringify(newValue)}::jsonb, ${expiresAt?.toISOString() ?? null}::timestamptz)
        on conflict (key) do update set value = excluded.value, expires_at = excluded.expires_at
        where federation_kv.expires_at is not null and federation_kv.expires_at <= now()
        returning key`);
      return rowCount(rows) > 0;
    }
    const updated = await this.#db
      .update(federationKv)
      .set({ value: jsonValue(newValue), expiresAt })
      .where(
        and(
          eq(federationKv.key, k),
          live(),
          sql`${federationKv.value} = ${JSON.stringify(expectedValue)}::jsonb`,
        ),
      )
      .returning({ key: federationKv.key });
    return updated.length > 0;
  }

  async *list(prefix?: KvKey): AsyncIterable<KvStoreListEntry> {
    const where = prefix
      ? or(
          eq(federationKv.key, JSON.stringify(prefix)),
          sql`${federationKv.key} like ${`${likeEscape(JSON.stringify(prefix).slice(0, -1))},%`}`,
        )
      : undefined;
    const rows = await this.#db
      .select({ key: federationKv.key, value: federationKv.value })
      .from(federationKv)
      .where(and(where, live()))
      .orderBy(federationKv.key);
    for (const row of rows) yield { key: JSON.parse(row.key) as KvKey, value: row.value };
  }

  /** Removes expired entries (the reads above already ignore them). */
  async prune(): Promise<number> {
    const gone = await this.#db
      .delete(federationKv)
      .where(lt(federationKv.expiresAt, sql`now()`))
      .returning({ key: federationKv.key });
    return gone.length;
  }
}

/** Rows affected by a raw statement, for both drivers (postgres.js: an array; PGlite: {rows}). */
export function rowCount(result: unknown): number {
  if (Array.isArray(result)) return result.length;
  const r = result as { rows?: unknown[]; affectedRows?: number };
  return r.rows?.length ?? r.affectedRows ?? 0;
}

/** Rows of a raw statement, for both drivers. */
export function rowsOf<T>(result: unknown): T[] {
  if (Array.isArray(result)) return result as T[];
  return ((result as { rows?: T[] }).rows ?? []) as T[];
}
