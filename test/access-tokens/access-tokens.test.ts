import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { accessTokens } from "../../src/db/schema.ts";
import {
  connectClient,
  makeUnit,
  makeWorld,
  refusedCode,
  type World,
  type WorldUnit,
} from "../broker/mqtt-helpers.ts";
import { createUser, startTestInstance, type TestInstance } from "../helpers/instance.ts";

// Issue 10 §3: personal access tokens. A read token reads metadata and history only;
// a write token acts as its user but never manages the account; both are refused at
// once when deleted, and with every other token of the user at a block, a password
// change or the account's deletion. Never accepted on MQTT.

describe("personal access tokens", () => {
  let inst: TestInstance;
  let world: World;
  let unit: WorldUnit;

  beforeAll(async () => {
    inst = await startTestInstance();
    world = await makeWorld(inst);
    unit = await makeUnit(inst, world.bob.token, world.repoUuid);
  });
  afterAll(async () => {
    await inst?.close();
  });

  const issue = async (session: string, scope: "read" | "write", extra: object = {}) => {
    const res = await inst.api.post(
      "/users/me/tokens",
      { name: `t-${scope}`, scope, ...extra },
      session,
    );
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body as { uuid: string; token: string; name: string; scope: string };
  };

  /** A request with the token as `Authorization: Bearer` instead of x-auth-token. */
  const bearer = async (path: string, token: string) =>
    (
      await fetch(`${inst.httpUrl}/pepeunit/api/v1${path}`, {
        headers: { authorization: `Bearer ${token}` },
      })
    ).status;

  it("shows the secret once; the list never does", async () => {
    const created = await issue(world.bob.token, "read", { expires_in_days: 30 });
    expect(created.token).toMatch(/^pu_pat_[A-Za-z0-9_-]{43}$/);
    expect(created).toMatchObject({
      name: "t-read",
      scope: "read",
      created_at: expect.any(String),
    });
    const list = await inst.api.get("/users/me/tokens", world.bob.token);
    expect(list.status).toBe(200);
    const mine = list.body.tokens.find((t: { uuid: string }) => t.uuid === created.uuid);
    expect(mine).toMatchObject({ name: "t-read", scope: "read", expires_at: expect.any(String) });
    expect(JSON.stringify(list.body)).not.toContain(created.token);
    expect(Object.keys(mine)).not.toContain("token");
    // Last use shows once the token was used.
    expect(mine.last_used_at).toBeNull();
    expect((await inst.api.get("/units", created.token)).status).toBe(200);
    const after = await inst.api.get("/users/me/tokens", world.bob.token);
    const used = after.body.tokens.find((t: { uuid: string }) => t.uuid === created.uuid);
    expect(used.last_used_at).toEqual(expect.any(String));
  });

  it("a read token reads metadata and history, nothing secret, and changes nothing", async () => {
    const { token } = await issue(world.bob.token, "read");
    const node = unit.nodeUuid("Output", "temperature");
    const readable = [
      "/users/me",
      "/units",
      `/units/${unit.uuid}`,
      "/unit_nodes",
      `/unit_nodes/${node}`,
      "/unit_node_edges",
      "/repos",
      `/repos/${world.repoUuid}`,
      `/unit_nodes/get_data_pipe_data?uuid=${node}`,
    ];
    for (const path of readable) {
      expect([path, (await inst.api.get(path, token)).status]).toEqual([path, 200]);
      expect([path, await bearer(path, token)]).toEqual([path, 200]);
    }
    const secret = [
      `/units/env/${unit.uuid}`,
      `/units/firmware/tgz/${unit.uuid}`,
      `/units/firmware/tar/${unit.uuid}`,
      `/units/firmware/zip/${unit.uuid}`,
      `/units/get_state_storage/${unit.uuid}`,
      `/units/${unit.uuid}/logs`,
      "/users/me/tokens",
      "/users",
      "/admin/settings",
      "/openapi.json",
    ];
    for (const path of secret) {
      const res = await inst.api.get(path, token);
      expect([path, res.status]).toEqual([path, 403]);
      expect(res.body.detail).toEqual(expect.any(String));
      expect([path, await bearer(path, token)]).toEqual([path, 403]);
    }
    // The same routes answer the session (the refusal is the token's scope, not the route).
    expect((await inst.api.get(`/units/env/${unit.uuid}`, world.bob.token)).status).toBe(200);
    const writes: Array<[string, string, unknown]> = [
      ["PATCH", `/units/${unit.uuid}`, { name: "renamed" }],
      ["POST", "/units", { repo_uuid: world.repoUuid, name: "nope", visibility: "Public" }],
      ["DELETE", `/units/${unit.uuid}`, undefined],
      ["POST", "/users/me/tokens", { name: "x", scope: "write" }],
      [
        "POST",
        "/users/me/password",
        { old_password: "pw-bob-secret", new_password: "x".repeat(12) },
      ],
      ["POST", "/users/logout", undefined],
      ["PATCH", "/admin/settings", { registration_mode: "Closed" }],
    ];
    for (const [method, path, body] of writes) {
      const res = await fetch(`${inst.httpUrl}/pepeunit/api/v1${path}`, {
        method,
        headers: { "x-auth-token": token, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      expect([method, path, res.status]).toEqual([method, path, 403]);
      expect((await res.json()).detail).toEqual(expect.any(String));
    }
    expect((await inst.api.get(`/units/${unit.uuid}`, token)).body.name).toBe(unit.json.name);
  });

  it("a write token acts as the user but never manages the account", async () => {
    const { token, uuid } = await issue(world.bob.token, "write");
    const renamed = await inst.api.patch(`/units/${unit.uuid}`, { name: "via-write-token" }, token);
    expect(renamed.status).toBe(200);
    expect(renamed.body.name).toBe("via-write-token");
    expect((await inst.api.get(`/units/env/${unit.uuid}`, token)).status).toBe(200);
    const refused: Array<[string, string, unknown]> = [
      ["GET", "/users/me/tokens", undefined],
      ["POST", "/users/me/tokens", { name: "x", scope: "read" }],
      ["DELETE", `/users/me/tokens/${uuid}`, undefined],
      [
        "POST",
        "/users/me/password",
        { old_password: "pw-bob-secret", new_password: "x".repeat(12) },
      ],
      ["POST", "/users/logout", undefined],
      ["DELETE", `/users/${world.bob.uuid}`, undefined],
      ["GET", "/admin/settings", undefined],
    ];
    for (const [method, path, body] of refused) {
      const res = await fetch(`${inst.httpUrl}/pepeunit/api/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      expect([method, path, res.status]).toEqual([method, path, 403]);
    }
    // An admin's write token does not reach the admin routes either.
    const adminToken = await issue(world.admin.token, "write");
    expect((await inst.api.get("/admin/settings", adminToken.token)).status).toBe(403);
    for (const path of ["/admin/federation", "/users"])
      expect([path, (await inst.api.get(path, adminToken.token)).status]).toEqual([path, 403]);
    for (const action of ["block", "password_reset_link"]) {
      const res = await inst.api.post(
        `/users/${world.bob.uuid}/${action}`,
        undefined,
        adminToken.token,
      );
      expect([action, res.status]).toEqual([action, 403]);
    }
    expect((await inst.api.get("/admin/settings", world.admin.token)).status).toBe(200);
    expect((await inst.api.get("/users/me", token)).status).toBe(200);
  });

  it("is refused at once when deleted, and never accepted on MQTT", async () => {
    const read = await issue(world.bob.token, "read");
    const other = await issue(world.bob.token, "read");
    expect((await inst.api.get("/units", read.token)).status).toBe(200); // cached now
    expect(await refusedCode(inst.mqttUrl, read.token)).not.toBe(0);
    const live = await connectClient(inst.mqttUrl, world.bob.token);
    await live.endAsync();

    const del = await inst.api.delete(`/users/me/tokens/${read.uuid}`, world.bob.token);
    expect(del.status).toBe(204);
    expect((await inst.api.get("/units", read.token)).status).toBe(401);
    expect(await bearer("/units", read.token)).toBe(401);
    expect((await inst.api.delete(`/users/me/tokens/${read.uuid}`, world.bob.token)).status).toBe(
      404,
    );
    // Only that one: the user's other token still works.
    expect((await inst.api.get("/units", other.token)).status).toBe(200);
    // Another user cannot delete bob's token.
    const carol = await createUser(inst.api, "carol");
    expect((await inst.api.delete(`/users/me/tokens/${other.uuid}`, carol.token)).status).toBe(404);
    const list = await inst.api.get("/users/me/tokens", world.bob.token);
    expect(list.body.tokens.map((t: { uuid: string }) => t.uuid)).not.toContain(read.uuid);
  });

  it("an expired token is refused (and leaves the list)", async () => {
    const dave = await createUser(inst.api, "dave");
    const t = await issue(dave.token, "read", { expires_in_days: 1 });
    // Expired before its first use (so the principal cache has not seen it).
    await inst.deps.database.db
      .update(accessTokens)
      .set({ expiresAt: new Date(Date.now() - 60_000) })
      .where(eq(accessTokens.uuid, t.uuid));
    expect((await inst.api.get("/units", t.token)).status).toBe(401);
    expect((await inst.api.get("/users/me/tokens", dave.token)).body.tokens).toEqual([]);
  });

  it("a block, a password change or the account's deletion revokes every token", async () => {
    const erin = await createUser(inst.api, "erin");
    const blockedRead = await issue(erin.token, "read");
    const blockedWrite = await issue(erin.token, "write");
    expect((await inst.api.get("/units", blockedRead.token)).status).toBe(200);
    const block = await inst.api.post(`/users/${erin.uuid}/block`, undefined, world.admin.token);
    expect(block.status).toBe(200);
    expect((await inst.api.get("/units", blockedRead.token)).status).toBe(401);
    expect((await inst.api.get("/units", blockedWrite.token)).status).toBe(401);
    // Revoked for good: unblocking does not bring them back.
    expect(
      (await inst.api.post(`/users/${erin.uuid}/unblock`, undefined, world.admin.token)).status,
    ).toBe(200);
    expect((await inst.api.get("/units", blockedRead.token)).status).toBe(401);
    const relog = await inst.api.post("/users/auth", { login: "erin", password: "pw-erin-secret" });
    const session = relog.body.token as string;
    expect((await inst.api.get("/users/me/tokens", session)).body.tokens).toEqual([]);

    const beforePassword = await issue(session, "write");
    expect((await inst.api.get("/users/me", beforePassword.token)).status).toBe(200);
    const changed = await inst.api.post(
      "/users/me/password",
      { old_password: "pw-erin-secret", new_password: "pw-erin-second" },
      session,
    );
    expect(changed.status).toBe(200);
    expect((await inst.api.get("/users/me", beforePassword.token)).status).toBe(401);
    const newSession = changed.body.token as string;
    expect((await inst.api.get("/users/me/tokens", newSession)).body.tokens).toEqual([]);

    const beforeDelete = await issue(newSession, "read");
    expect((await inst.api.get("/users/me", beforeDelete.token)).status).toBe(200);
    expect((await inst.api.delete(`/users/${erin.uuid}`, newSession)).status).toBe(204);
    expect((await inst.api.get("/users/me", beforeDelete.token)).status).toBe(401);
  });

  it("checks its input and needs a session", async () => {
    const bad = await inst.api.post(
      "/users/me/tokens",
      { name: "", scope: "admin" },
      world.bob.token,
    );
    expect(bad.status).toBe(422);
    expect((await inst.api.post("/users/me/tokens", { name: "x", scope: "read" })).status).toBe(
      401,
    );
    expect((await inst.api.get("/users/me/tokens")).status).toBe(401);
    expect((await inst.api.get("/users/me", "pu_pat_forged")).status).toBe(401);
  });

  it("declares the scope refusal on every operation", async () => {
    const doc = await inst.api.get("/openapi.json");
    for (const [path, ops] of Object.entries(doc.body.paths as Record<string, object>)) {
      for (const [method, op] of Object.entries(ops as Record<string, { responses: object }>)) {
        expect([method, path, Object.keys(op.responses)]).toEqual([
          method,
          path,
          expect.arrayContaining(["401", "403"]),
        ]);
      }
    }
  });
});
