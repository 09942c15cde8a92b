import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectClient } from "../broker/mqtt-helpers.ts";
import { createUser, startTestInstance, type TestInstance } from "../helpers/instance.ts";

// Issue 9 #12: POST /users/logout revokes the calling token (by its jti) at once,
// on REST and MQTT, and only that token.

describe("logout", () => {
  let inst: TestInstance;
  beforeAll(async () => {
    inst = await startTestInstance();
    await createUser(inst.api, "admin");
  });
  afterAll(async () => {
    await inst?.close();
  });

  const logIn = async (login: string) => {
    const res = await inst.api.post("/users/auth", { login, password: `pw-${login}-secret` });
    expect(res.status).toBe(200);
    return res.body.token as string;
  };

  it("revokes the calling token only, closing its MQTT session", async () => {
    const first = (await createUser(inst.api, "leaver")).token;
    const second = await logIn("leaver");
    expect(decodeJwt(first).jti).toEqual(expect.any(String));
    expect(decodeJwt(first).jti).not.toBe(decodeJwt(second).jti);
    // Resolved (and cached) before the logout.
    expect((await inst.api.get("/users/me", first)).status).toBe(200);
    const live = await connectClient(inst.mqttUrl, first);

    expect((await inst.api.post("/users/logout", undefined, first)).status).toBe(204);
    expect((await inst.api.get("/users/me", first)).status).toBe(401);
    expect((await inst.api.post("/users/logout", undefined, first)).status).toBe(401);
    await live.closed;
    expect((await inst.api.get("/users/me", second)).status).toBe(200);
    const again = await connectClient(inst.mqttUrl, second);
    expect(again.connected).toBe(true);
    await again.endAsync();
  });

  it("needs a token", async () => {
    expect((await inst.api.post("/users/logout")).status).toBe(401);
  });
});
