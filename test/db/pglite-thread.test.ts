import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDatabase, type Database } from "../../src/db/database.ts";
import { uniqueViolation } from "../../src/db/pg-errors.ts";
import { federationKv } from "../../src/db/schema.ts";
import { rowsOf } from "../../src/federation/kv-store.ts";
import { testDbKind } from "../helpers/database.ts";

// PGlite in a worker thread (src/db/pglite-worker.ts): transactions stay whole, errors
// keep their PostgreSQL fields, results equal the in-process driver's, and a long
// statement leaves the main event loop free. PGlite only: on PostgreSQL there is no thread.

const pglite = testDbKind() === "pglite";

const count = async (database: Database) =>
  Number(
    rowsOf<{ n: number }>(await database.db.execute(sql`select count(*)::int as n from items`))[0]
      ?.n,
  );

describe.skipIf(!pglite)(
  `PGlite in a worker thread${pglite ? "" : " (skipped: PGlite only)"}`,
  () => {
    let database: Database;
    beforeAll(async () => {
      database = await createDatabase({});
      await database.db.execute(sql`create table items (id int primary key, v text)`);
    });
    afterAll(async () => {
      await database?.close();
    });

    it("commits a transaction's statements together, and rolls them all back on a throw", async () => {
      await database.db.execute(sql`delete from items`);
      await database.db.transaction(async (tx) => {
        await tx.execute(sql`insert into items values (1, 'a')`);
        await tx.execute(sql`insert into items values (2, 'b')`);
      });
      expect(await count(database)).toBe(2);
      await expect(
        database.db.transaction(async (tx) => {
          await tx.execute(sql`insert into items values (3, 'c')`);
          throw new Error("changed my mind");
        }),
      ).rejects.toThrow("changed my mind");
      expect(await count(database)).toBe(2);
    });

    it("keeps a statement from outside out of an open transaction: it runs after", async () => {
      await database.db.execute(sql`delete from items`);
      let outside: Promise<unknown> | undefined;
      let outsideDone = false;
      await expect(
        database.db.transaction(async (tx) => {
          await tx.execute(sql`insert into items values (1, 'in')`);
          outside = database.db.execute(sql`insert into items values (2, 'out')`).then(() => {
            outsideDone = true;
          });
          await new Promise((resolve) => setTimeout(resolve, 100));
          // Still waiting: it did not slip into this transaction…
          expect(outsideDone).toBe(false);
          const seen = rowsOf<{ id: number }>(await tx.execute(sql`select id from items`));
          expect(seen.map((r) => r.id)).toEqual([1]);
          throw new Error("roll back");
        }),
      ).rejects.toThrow("roll back");
      await outside;
      // …so the rollback did not take it along.
      const rows = rowsOf<{ id: number }>(await database.db.execute(sql`select id from items`));
      expect(rows.map((r) => r.id)).toEqual([2]);
    });

    it("runs concurrent transactions one after the other", async () => {
      await database.db.execute(sql`delete from items`);
      const order: string[] = [];
      const run = (id: number) =>
        database.db.transaction(async (tx) => {
          order.push(`begin ${id}`);
          await tx.execute(sql`insert into items values (${id}, 'x')`);
          await new Promise((resolve) => setTimeout(resolve, 20));
          await tx.execute(sql`update items set v = 'y' where id = ${id}`);
          order.push(`end ${id}`);
        });
      await Promise.all([run(1), run(2), run(3)]);
      expect(order).toEqual(["begin 1", "end 1", "begin 2", "end 2", "begin 3", "end 3"]);
      expect(await count(database)).toBe(3);
    });

    it("rolls back a nested transaction (a savepoint) alone", async () => {
      await database.db.execute(sql`delete from items`);
      await database.db.transaction(async (tx) => {
        await tx.execute(sql`insert into items values (1, 'outer')`);
        await expect(
          tx.transaction(async (inner) => {
            await inner.execute(sql`insert into items values (2, 'inner')`);
            throw new Error("inner fails");
          }),
        ).rejects.toThrow("inner fails");
      });
      const rows = rowsOf<{ id: number }>(await database.db.execute(sql`select id from items`));
      expect(rows.map((r) => r.id)).toEqual([1]);
    });

    it("reports a unique violation with its SQLSTATE and constraint, in and out of transactions", async () => {
      await database.db.execute(sql`delete from items`);
      await database.db.execute(sql`insert into items values (1, 'a')`);
      const outside = await database.db.execute(sql`insert into items values (1, 'b')`).then(
        () => null,
        (err: unknown) => err,
      );
      expect(uniqueViolation(outside)).toBe("items_pkey");
      const inside = await database.db
        .transaction(async (tx) => {
          await tx.execute(sql`insert into items values (1, 'c')`);
        })
        .then(
          () => null,
          (err: unknown) => err,
        );
      expect(uniqueViolation(inside)).toBe("items_pkey");
      expect(await count(database)).toBe(1);
    });

    it("answers the same values as PGlite on the main thread", async () => {
      const local = await createDatabase({ pgliteThread: false });
      try {
        const query = sql`select '2026-01-02 03:04:05.678+00'::timestamptz as at,
          '2026-01-02'::date as day, '1 day 02:00'::interval as span,
          '{"a":[1,"x",null]}'::jsonb as doc, 9007199254740993::int8 as big, 12::int4 as small,
          1.5::numeric as num, '\\x00ff'::bytea as bytes, array['2026-01-02'::date] as days,
          null::text as nothing, ${new Date("2026-01-02T03:04:05.678Z")}::timestamptz as param`;
        const [thread, main] = [await database.db.execute(query), await local.db.execute(query)];
        expect(rowsOf(thread)).toEqual(rowsOf(main));
        // And through drizzle's query builder: jsonb as objects, timestamps as Dates.
        const row = {
          key: '["k"]',
          value: { n: 1, list: ["a", null], nested: { b: true } },
          expiresAt: new Date("2026-03-04T05:06:07.089Z"),
        };
        for (const d of [database, local]) {
          await d.db.delete(federationKv);
          await d.db.insert(federationKv).values(row);
        }
        const [fromThread] = await database.db.select().from(federationKv);
        expect(fromThread).toEqual(row);
        expect(fromThread?.expiresAt).toBeInstanceOf(Date);
        expect(await local.db.select().from(federationKv)).toEqual([fromThread]);
      } finally {
        await local.close();
      }
    });

    it("answers raw rows as bytes across the thread, small and large", async () => {
      const [small] = await database.rawRows(sql`select 'é'::text, null::text, ${42}::int + 1`);
      expect(small?.map((c) => c?.toString() ?? null)).toEqual(["é", null, "43"]);
      const [large] = await database.rawRows(
        sql`select string_agg(repeat('x', 100), ',') from generate_series(1, 20000)`,
      );
      expect(large?.[0]?.length).toBe(20000 * 101 - 1);
      expect(large?.[0]?.subarray(0, 3).toString()).toBe("xxx");
      await expect(database.rawRows(sql`select 1/0`)).rejects.toThrow(/division by zero/);
    });

    it("leaves the main event loop free while a long statement runs", async () => {
      let ticks = 0;
      let last = performance.now();
      let longestGap = 0;
      const timer = setInterval(() => {
        const now = performance.now();
        longestGap = Math.max(longestGap, now - last);
        last = now;
        ticks++;
      }, 5);
      const started = performance.now();
      try {
        await database.db.execute(sql`select pg_sleep(0.3)`);
      } finally {
        clearInterval(timer);
      }
      const took = performance.now() - started;
      expect(took).toBeGreaterThanOrEqual(290);
      // On PGlite's main thread the loop would stand still for the whole 300 ms.
      expect(ticks).toBeGreaterThan(10);
      expect(longestGap).toBeLessThan(150);
    });

    it("keeps what was committed across a close and a reopen of its directory", async () => {
      const dir = await mkdtemp(path.join(tmpdir(), "pepeunit-pglite-thread-"));
      try {
        const first = await createDatabase({ pgliteDir: path.join(dir, "pglite") });
        await first.db.execute(sql`create table kept (v text)`);
        await first.db.transaction(async (tx) => {
          await tx.execute(sql`insert into kept values ('committed')`);
        });
        await first.close();
        await expect(first.db.execute(sql`select 1`)).rejects.toThrow();
        const again = await createDatabase({ pgliteDir: path.join(dir, "pglite") });
        try {
          const rows = rowsOf<{ v: string }>(await again.db.execute(sql`select v from kept`));
          expect(rows).toEqual([{ v: "committed" }]);
        } finally {
          await again.close();
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  },
);
