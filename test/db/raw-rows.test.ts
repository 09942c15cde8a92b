import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Database } from "../../src/db/database.ts";
import { createTestDatabase } from "../helpers/database.ts";

// Database.rawRows answers columns as the bytes the database sent: the history pages
// go to the client without a string in between, on both databases alike.
describe("raw rows", () => {
  let database: Database;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database.close();
  });

  it("answers every row's columns as undecoded bytes, NULL as null", async () => {
    const rows = await database.rawRows(
      sql`select n::text as n, case when n = 2 then null else 'é' || n end as t
          from generate_series(1, 3) n order by n`,
    );
    expect(rows.map((r) => r.map((c) => c?.toString("utf8") ?? null))).toEqual([
      ["1", "é1"],
      ["2", null],
      ["3", "é3"],
    ]);
  });

  it("binds parameters of every kind drizzle passes", async () => {
    const at = new Date("2026-01-02T03:04:05.678Z");
    const [row] = await database.rawRows(
      sql`select ${"a'b"}::text, ${42}::int + 1, (${at}::timestamptz = '2026-01-02T03:04:05.678Z'::timestamptz)::text, ${null}::text`,
    );
    expect(row?.map((c) => c?.toString() ?? null)).toEqual(["a'b", "43", "true", null]);
  });

  it("answers a page larger than one protocol chunk whole", async () => {
    const [row] = await database.rawRows(
      sql`select string_agg(repeat('x', 100), ',') from generate_series(1, 20000)`,
    );
    expect(row?.[0]?.length).toBe(20000 * 101 - 1);
  });

  it("rejects a failing query with the database's message, and goes on working", async () => {
    await expect(database.rawRows(sql`select 1/0`)).rejects.toThrow(/division by zero/);
    const [row] = await database.rawRows(sql`select 'ok'`);
    expect(row?.[0]?.toString()).toBe("ok");
  });
});
