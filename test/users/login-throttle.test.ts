import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.ts";
import { users } from "../../src/db/schema.ts";
import { createSemaphore } from "../../src/semaphore.ts";
import { ACCOUNT_POLICY, delayAfter } from "../../src/users/login-throttle.ts";
import { createUser, startTestInstance, type TestInstance } from "../helpers/instance.ts";

// Issue 9 #6: failed logins slow down guessing (per account and per client address,
// counted in the database), the scrypt cost is configurable (default 2^16) and
// hashes made with other parameters are redone at the next successful login.

// Each test fails from its own client address (X-Forwarded-For behind the trusted
// proxy), so one test's failures do not slow the next down through the address counter.
const VICTIM_ADDR = "198.51.100.1";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("login throttling", () => {
  let inst: TestInstance;
  /**
   * A second process on the same database (or the instance after a restart), trusting
   * no proxy and hashing at the default cost.
   */
  let sibling: TestInstance;

  beforeAll(async () => {
    inst = await startTestInstance({ PEPEUNIT_TRUSTED_PROXIES: "127.0.0.1, 10.0.0.0/8" });
    sibling = await startTestInstance({ PEPEUNIT_SCRYPT_LOG_N: undefined }, { shareWith: inst });
    await createUser(inst.api, "admin");
  });
  afterAll(async () => {
    await sibling?.close();
    await inst?.close();
  });

  const login = (
    api: TestInstance["api"],
    loginName: string,
    password: string,
    forwardedFor?: string,
  ) =>
    api.request("POST", "/users/auth", {
      body: { login: loginName, password },
      headers: forwardedFor ? { "x-forwarded-for": forwardedFor } : {},
    });

  it("doubles the wait after a few failures, also across processes, and a success resets it", async () => {
    await createUser(inst.api, "victim");
    const right = "pw-victim-secret";
    for (let i = 0; i < ACCOUNT_POLICY.freeFailures + 1; i++) {
      expect((await login(inst.api, "victim", "guess", VICTIM_ADDR)).status).toBe(401);
    }
    // Even the right password waits now; by e-mail too (one account, one counter).
    const blocked = await login(inst.api, "victim", right, VICTIM_ADDR);
    expect(blocked.status).toBe(429);
    expect(blocked.body.detail).toMatch(/try again/);
    expect(blocked.headers.get("retry-after")).toBe("1");
    expect((await login(inst.api, "victim@example.test", right, VICTIM_ADDR)).status).toBe(429);
    // Kept in the database: another process (or a restart) refuses as well.
    expect((await login(sibling.api, "victim", right)).status).toBe(429);

    await sleep(1100);
    expect((await login(inst.api, "victim", "guess", VICTIM_ADDR)).status).toBe(401);
    const longer = await login(inst.api, "victim", right, VICTIM_ADDR);
    expect(longer.status).toBe(429);
    expect(Number(longer.headers.get("retry-after"))).toBe(2);
    await sleep(2100);
    expect((await login(inst.api, "victim", right, VICTIM_ADDR)).status).toBe(200);
    // The success cleared the account's counter: the free failures are free again.
    for (let i = 0; i < ACCOUNT_POLICY.freeFailures; i++) {
      expect((await login(inst.api, "victim", "guess", VICTIM_ADDR)).status).toBe(401);
    }
    expect((await login(inst.api, "victim", right, VICTIM_ADDR)).status).toBe(200);
  });

  it("treats an unknown login like a known one", async () => {
    for (let i = 0; i < ACCOUNT_POLICY.freeFailures + 1; i++) {
      expect((await login(inst.api, "nobody-here", "guess", "198.51.100.2")).status).toBe(401);
    }
    expect((await login(inst.api, "nobody-here", "guess", "198.51.100.2")).status).toBe(429);
  });

  it("brakes guessing the old password through a (stolen) session as well", async () => {
    const { token } = await createUser(inst.api, "stolen");
    const change = (old: string) =>
      inst.api.request("POST", "/users/me/password", {
        token,
        body: { old_password: old, new_password: "whatever-new" },
        headers: { "x-forwarded-for": "198.51.100.3" },
      });
    for (let i = 0; i < ACCOUNT_POLICY.freeFailures + 1; i++) {
      expect((await change("guess")).status).toBe(403);
    }
    const braked = await change("pw-stolen-secret");
    expect(braked.status).toBe(429);
    expect(braked.headers.get("retry-after")).toBe("1");
  });

  it("counts per client address, from X-Forwarded-For only behind a trusted proxy", async () => {
    // Twenty-one different (unknown) logins from one address behind the trusted proxy.
    for (let i = 0; i < 21; i++) {
      expect((await login(inst.api, `spray${i}`, "guess", "203.0.113.7")).status).toBe(401);
    }
    expect((await login(inst.api, "spray-next", "guess", "203.0.113.7")).status).toBe(429);
    // A hop the proxy chain trusts (10.0.0.0/8) is skipped to find the client.
    expect((await login(inst.api, "spray-next", "guess", "203.0.113.7, 10.1.2.3")).status).toBe(
      429,
    );
    expect((await login(inst.api, "spray-next", "guess", "203.0.113.8")).status).toBe(401);
    // The sibling trusts no proxy: the header is the caller's word and counts for nothing.
    expect((await login(sibling.api, "spray-next2", "guess", "203.0.113.7")).status).toBe(401);
  });

  it("hashes at N = 2^16, r = 8 by default and redoes older hashes at the next login", async () => {
    const keys = Buffer.alloc(32).toString("base64");
    const defaults = loadConfig({
      PEPEUNIT_DATA_DIR: "/nonexistent/pepeunit",
      PEPEUNIT_SECRET_KEY: keys,
      PEPEUNIT_ENCRYPT_KEY: keys,
    });
    expect(defaults.scrypt).toEqual({ logN: 16, r: 8, p: 1 });
    const { uuid } = await createUser(inst.api, "old-hash");
    const stored = async () => {
      const [row] = await inst.deps.database.db
        .select({ hash: users.passwordHash })
        .from(users)
        .where(eq(users.uuid, uuid));
      return row?.hash ?? "";
    };
    expect(await stored()).toMatch(/^scrypt\$1024\$8\$1\$/);
    const again = { login: "old-hash", password: "pw-old-hash-secret" };
    expect((await sibling.api.post("/users/auth", again)).status).toBe(200);
    expect(await stored()).toMatch(/^scrypt\$65536\$8\$1\$/);
    expect((await sibling.api.post("/users/auth", again)).status).toBe(200);
    // The cheaper process still verifies it (and brings it back to its own cost).
    expect((await inst.api.post("/users/auth", again)).status).toBe(200);
    expect(await stored()).toMatch(/^scrypt\$1024\$/);
  });

  it("declares 429 in the OpenAPI document", async () => {
    const doc = await inst.api.get("/pepeunit/api/v1/openapi.json");
    expect(Object.keys(doc.body.paths["/users/auth"].post.responses)).toContain("429");
  });
});

describe("password hashing", () => {
  it("grows the wait exponentially up to 15 minutes", () => {
    expect(delayAfter(ACCOUNT_POLICY.freeFailures, ACCOUNT_POLICY)).toBe(0);
    expect(delayAfter(ACCOUNT_POLICY.freeFailures + 1, ACCOUNT_POLICY)).toBe(1);
    expect(delayAfter(ACCOUNT_POLICY.freeFailures + 4, ACCOUNT_POLICY)).toBe(8);
    expect(delayAfter(1000, ACCOUNT_POLICY)).toBe(15 * 60);
  });

  it("runs at most two hashes at once", async () => {
    const limit = createSemaphore(2);
    let running = 0;
    let most = 0;
    await Promise.all(
      Array.from({ length: 6 }, () =>
        limit.run(async () => {
          running++;
          most = Math.max(most, running);
          await sleep(5);
          running--;
        }),
      ),
    );
    expect(most).toBe(2);
  });
});
