import { randomBytes } from "node:crypto";
import { Temporal } from "@js-temporal/polyfill";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Database } from "../../src/db/database.ts";
import { DrizzleKvStore } from "../../src/federation/kv-store.ts";
import { DrizzleMessageQueue } from "../../src/federation/message-queue.ts";
import { createTestDatabase } from "../helpers/database.ts";

// Conformance-style checks of Fedify's KvStore and MessageQueue contracts over the
// project's database; the suite runs on PGlite and PostgreSQL (vitest projects).

let database: Database;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database.close();
});

const key = randomBytes(32);
const log = pino({ level: "silent" });

function newQueue(extra: Partial<ConstructorParameters<typeof DrizzleMessageQueue>[0]> = {}) {
  return new DrizzleMessageQueue({ db: database.db, encryptKey: key, log, pollMs: 50, ...extra });
}

/** Listens until `count` messages were handled (or 10 s passed), then stops. */
async function collect(queue: DrizzleMessageQueue, count: number, handler?: (m: unknown) => void) {
  const got: unknown[] = [];
  const ctl = new AbortController();
  const done = queue.listen(
    async (m) => {
      handler?.(m);
      got.push(m);
      if (got.length >= count) ctl.abort();
    },
    { signal: ctl.signal },
  );
  const timeout = setTimeout(() => ctl.abort(), 10_000);
  await done;
  clearTimeout(timeout);
  return got;
}

describe("DrizzleKvStore", () => {
  it("gets, sets, overwrites and deletes by array key", async () => {
    const kv = new DrizzleKvStore(database.db);
    expect(await kv.get(["a", "1"])).toBeUndefined();
    await kv.set(["a", "1"], { x: 1 });
    await kv.set(["a", "2"], "two");
    expect(await kv.get(["a", "1"])).toEqual({ x: 1 });
    await kv.set(["a", "1"], [1, 2]);
    expect(await kv.get(["a", "1"])).toEqual([1, 2]);
    await kv.delete(["a", "1"]);
    expect(await kv.get(["a", "1"])).toBeUndefined();
    expect(await kv.get(["a", "2"])).toBe("two");
  });

  it("expires values after their ttl", async () => {
    const kv = new DrizzleKvStore(database.db);
    // Generous margins: on a busy machine the read right after the write can take a while.
    await kv.set(["ttl"], true, { ttl: Temporal.Duration.from({ milliseconds: 1500 }) });
    expect(await kv.get(["ttl"])).toBe(true);
    await new Promise((r) => setTimeout(r, 1700));
    expect(await kv.get(["ttl"])).toBeUndefined();
    expect(await kv.prune()).toBeGreaterThanOrEqual(1);
  });

  it("compare-and-swap succeeds only on the expected value", async () => {
    const kv = new DrizzleKvStore(database.db);
    expect(await kv.cas(["cas"], undefined, 1)).toBe(true);
    expect(await kv.cas(["cas"], undefined, 2)).toBe(false);
    expect(await kv.cas(["cas"], 5, 2)).toBe(false);
    expect(await kv.cas(["cas"], 1, { v: 2 })).toBe(true);
    expect(await kv.get(["cas"])).toEqual({ v: 2 });
  });

  it("lists by prefix of whole key elements only", async () => {
    const kv = new DrizzleKvStore(database.db);
    await kv.set(["p", "x"], 1);
    await kv.set(["p", "x", "y"], 2);
    await kv.set(["p", "xy"], 3);
    await kv.set(["p%", "x"], 4);
    const entries = [];
    for await (const e of kv.list(["p", "x"])) entries.push(e);
    expect(entries.map((e) => e.key).sort((a, b) => a.length - b.length)).toEqual([
      ["p", "x"],
      ["p", "x", "y"],
    ]);
    const all = [];
    for await (const e of kv.list(["p"])) all.push(e.value);
    expect(all.sort()).toEqual([1, 2, 3]);
  });
});

describe("DrizzleMessageQueue", () => {
  it("delivers enqueued messages and reports depth", async () => {
    const q = newQueue();
    await q.enqueue({ n: 1 });
    await q.enqueueMany([{ n: 2 }, { n: 3 }]);
    expect((await q.getDepth()).queued).toBe(3);
    const got = await collect(q, 3);
    expect(got).toHaveLength(3);
    expect((await q.getDepth()).queued).toBe(0);
  });

  it("holds delayed messages until their time", async () => {
    const q = newQueue();
    const enqueuedAt = Date.now();
    await q.enqueue({ late: true }, { delay: Temporal.Duration.from({ milliseconds: 300 }) });
    expect((await q.getDepth()).delayed).toBe(1);
    let at = 0;
    await collect(q, 1, () => {
      at = Date.now();
    });
    expect(at - enqueuedAt).toBeGreaterThanOrEqual(250);
  });

  it("keeps order per ordering key across failures and retries", async () => {
    const q = newQueue({ retryBaseMs: 30, retryMaxMs: 60, concurrency: 4 });
    for (let i = 0; i < 10; i++) await q.enqueue({ k: "a", i }, { orderingKey: "a" });
    for (let i = 0; i < 10; i++) await q.enqueue({ k: "b", i }, { orderingKey: "b" });
    const failures = new Map<number, number>([
      [3, 2],
      [7, 1],
    ]);
    const seen: Record<string, number[]> = { a: [], b: [] };
    const ctl = new AbortController();
    const done = q.listen(
      async (raw) => {
        const m = raw as { k: string; i: number };
        // Message a/3 fails twice and a/7 once: b must not wait for them, a must.
        if (m.k === "a" && (failures.get(m.i) ?? 0) > 0) {
          failures.set(m.i, (failures.get(m.i) ?? 0) - 1);
          throw new Error("peer down");
        }
        seen[m.k]?.push(m.i);
        if ((seen.a?.length ?? 0) + (seen.b?.length ?? 0) === 20) ctl.abort();
      },
      { signal: ctl.signal },
    );
    setTimeout(() => ctl.abort(), 10_000).unref();
    await done;
    expect(seen.a).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(seen.b).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it("survives a restart: a new queue on the same database delivers what was left", async () => {
    const first = newQueue();
    await first.enqueue({ kept: 1 }, { orderingKey: "r" });
    await first.enqueue({ kept: 2 }, { orderingKey: "r" });
    const second = newQueue();
    expect(await collect(second, 2)).toEqual([{ kept: 1 }, { kept: 2 }]);
  });

  it("drops or holds messages as its gate says", async () => {
    let mode: "drop" | "hold" | "run" = "hold";
    const q = newQueue({ gate: (m) => ((m as { blocked?: boolean }).blocked ? "drop" : mode) });
    await q.enqueue({ blocked: true });
    await q.enqueue({ ok: 1 });
    const ctl = new AbortController();
    const got: unknown[] = [];
    const done = q.listen(async (m) => void got.push(m), { signal: ctl.signal });
    await new Promise((r) => setTimeout(r, 300));
    expect(got).toEqual([]);
    expect((await q.getDepth()).queued).toBe(1); // the blocked one is gone, the other held
    mode = "run";
    await new Promise((r) => setTimeout(r, 1500));
    ctl.abort();
    await done;
    expect(got).toEqual([{ ok: 1 }]);
  });

  it("stores messages encrypted", async () => {
    const q = newQueue();
    await q.enqueue({ secret: "private-key-material" });
    const rows = await database.db.execute(
      (await import("drizzle-orm")).sql`select message from federation_queue`,
    );
    expect(JSON.stringify(rows)).not.toContain("private-key-material");
    await collect(q, 1);
  });

  it("stores the messages storePlain picks as JSON, and reads both kinds back", async () => {
    const q = newQueue({ storePlain: (m) => (m as { plain?: boolean }).plain === true });
    await q.enqueue({ plain: true, value: "21.5" }, { orderingKey: "p" });
    await q.enqueue({ secret: "private-key-material" }, { orderingKey: "p" });
    const rows = await database.db.execute(
      (await import("drizzle-orm")).sql`select message from federation_queue order by id`,
    );
    expect(JSON.stringify(rows)).toContain("21.5");
    expect(JSON.stringify(rows)).not.toContain("private-key-material");
    expect(await collect(q, 2)).toEqual([
      { plain: true, value: "21.5" },
      { secret: "private-key-material" },
    ]);
  });
});
