import { Writable } from "node:stream";
import { sql } from "drizzle-orm";
import { Hono } from "hono";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Database } from "../../src/db/database.ts";
import { errorHandler } from "../../src/http/errors.ts";
import { createTestDatabase } from "../helpers/database.ts";

// An unexpected error is logged for the operator without what it carries: a
// failed query's parameters (password hashes, tokens, bodies) and the query string.

describe("error log", () => {
  let database: Database;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database?.close();
  });

  it("logs a failed query's message, code and stack, never its parameters", async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const app = new Hono();
    app.onError(errorHandler(pino({ level: "error" }, sink)));
    app.post("/boom", async (c) => {
      const body = await c.req.json();
      // A real driver error, wrapped by drizzle with the parameters it was given.
      await database.db.execute(
        sql`select * from no_such_table where secret = ${body.password} and t = ${"tok-param-secret"}`,
      );
      return c.json({});
    });
    const res = await app.request("/boom?token=query-secret", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ password: "body-secret-hunter2" }),
    });
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ detail: "internal server error" });
    expect(lines).toHaveLength(1);
    const logged = lines[0] as string;
    for (const secret of ["body-secret-hunter2", "tok-param-secret", "query-secret"]) {
      expect(logged).not.toContain(secret);
    }
    const entry = JSON.parse(logged);
    expect(entry.path).toBe("/boom");
    expect(entry.error.message).toMatch(/no_such_table/);
    expect(entry.error.stack).toMatch(/\n\s+at /);
    expect(entry.error.cause.code).toBe("42P01"); // undefined_table, from the driver
  });
});
