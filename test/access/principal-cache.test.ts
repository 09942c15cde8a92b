import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Principal } from "../../src/access/principal.ts";
import { cachePrincipals } from "../../src/access/resolve-principal.ts";
import { createEventBus } from "../../src/events.ts";

// src/access/resolve-principal.ts, cachePrincipals: a token is remembered for its TTL
// after its last lookup, and no longer.

const unit = (uuid: string): Principal => ({ kind: "unit", uuid, creatorUuid: "owner" });

describe("principal cache", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  function cacheWith(ttlMs = 5_000) {
    const lookups: string[] = [];
    const events = createEventBus();
    const resolve = cachePrincipals(
      async (token) => {
        lookups.push(token);
        return token.startsWith("good") ? unit(token.slice(5)) : null;
      },
      events,
      { ttlMs },
    );
    return { resolve, lookups, events };
  }

  it("answers a token again from memory within its TTL, and asks again after", async () => {
    const { resolve, lookups } = cacheWith();
    expect(await resolve("good-a")).toEqual(unit("a"));
    await vi.advanceTimersByTimeAsync(4_000);
    expect(await resolve("good-a")).toEqual(unit("a"));
    expect(lookups).toEqual(["good-a"]);
    await vi.advanceTimersByTimeAsync(1_500);
    await resolve("good-a");
    expect(lookups).toEqual(["good-a", "good-a"]);
  });

  it("lets go of every token once its TTL passed, with no lookup to prompt it", async () => {
    const { resolve } = cacheWith();
    await resolve("good-a");
    await vi.advanceTimersByTimeAsync(2_000);
    await resolve("good-b");
    await resolve("bad-c"); // refused tokens are never kept
    expect(resolve.size).toBe(2);
    await vi.advanceTimersByTimeAsync(3_100);
    expect(resolve.size).toBe(1); // a's TTL ended, b has 2 s left
    await vi.advanceTimersByTimeAsync(2_000);
    expect(resolve.size).toBe(0);
  });

  it("drops a unit's token at once when the unit is deleted", async () => {
    const { resolve, lookups, events } = cacheWith();
    await resolve("good-a");
    events.emit("unit.deleted", { unitUuid: "a" } as never);
    expect(resolve.size).toBe(0);
    await resolve("good-a");
    expect(lookups).toEqual(["good-a", "good-a"]);
  });
});
