import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createUser, startTestInstance, type TestInstance } from "../helpers/instance.ts";

describe("users", () => {
  let inst: TestInstance;
  beforeAll(async () => {
    inst = await startTestInstance();
  });
  afterAll(async () => {
    await inst?.close();
  });

  it("makes the first user admin and the next a plain user", async () => {
    const admin = await createUser(inst.api, "admin1");
    const me = await inst.api.get("/users/me", admin.token);
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ login: "admin1", role: "Admin", status: "Active" });
    const bob = await createUser(inst.api, "bob");
    const bobMe = await inst.api.get("/users/me", bob.token);
    expect(bobMe.body.role).toBe("User");
  });

  it("answers health and bad input with {detail}", async () => {
    const h = await inst.api.get("/healthz");
    expect(h.status).toBe(200);
    // One process holds every once-only role and is the whole cluster list.
    expect(h.body.node).toBe(inst.deps.config.nodeName);
    expect([...h.body.roles].sort()).toEqual(
      ["alerts", "backups", "federation-queue", "history", "ota", "sync"].sort(),
    );
    expect(h.body.cluster).toEqual([
      { node: inst.deps.config.nodeName, roles: h.body.roles, last_seen: expect.any(String) },
    ]);
    const bad = await inst.api.post("/users", { login: "x", email: "nope", password: "1" });
    expect(bad.status).toBe(422);
    expect(bad.body.detail).toBeDefined();
    const malformed = await inst.api.request("POST", "/users", {
      body: "{not json",
      headers: { "content-type": "application/json" },
    });
    expect(malformed.status).toBeGreaterThanOrEqual(400);
    expect(malformed.status).toBeLessThan(500);
    expect(malformed.body.detail).toBeDefined();
  });
});
