import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { units } from "../../src/db/schema.ts";
import { createFixtureRepo, DEFAULT_SCHEMA_EXAMPLE } from "../helpers/git-fixtures.ts";
import { createUser, startTestInstance, type TestInstance } from "../helpers/instance.ts";
import { createRepo } from "../helpers/repos.ts";
import { createUnit, unitToken } from "../helpers/units.ts";

const GENERATED = [
  "PU_DOMAIN",
  "PU_HTTP_TYPE",
  "PU_APP_PREFIX",
  "PU_API_ACTUAL_PREFIX",
  "PU_MQTT_HOST",
  "PU_MQTT_PORT",
  "PU_MQTT_PING_INTERVAL",
  "PU_MQTT_KEEPALIVE",
  "PU_AUTH_TOKEN",
  "PU_SECRET_KEY",
  "PU_ENCRYPT_KEY",
  "PU_STATE_SEND_INTERVAL",
  "PU_MIN_LOG_LEVEL",
  "PU_MAX_LOG_LENGTH",
  "PU_COMMIT_VERSION",
];
const BASE64_32 = /^[A-Za-z0-9+/]{43}=$/;

function payloadOf(jwt: string): string {
  const part = jwt.split(".")[1] ?? "";
  return Buffer.from(part, "base64url").toString("utf8");
}

describe("unit env.json", () => {
  let inst: TestInstance;
  let bob: { uuid: string; token: string };
  let carol: { uuid: string; token: string };
  let repoUuid: string;
  let aliasRepoUuid: string;

  beforeAll(async () => {
    inst = await startTestInstance({ PEPEUNIT_STATE_SEND_INTERVAL_S: "45" });
    await createUser(inst.api, "admin");
    bob = await createUser(inst.api, "bob");
    carol = await createUser(inst.api, "carol");
    repoUuid = (await createRepo(inst.api, bob.token, createFixtureRepo())).uuid;
    const aliasFixture = createFixtureRepo({
      "env_example.json": JSON.stringify({
        WIFI_SSID: "",
        WIFI_PASS: "",
        PEPEUNIT_URL: "",
        PEPEUNIT_TOKEN: "",
        SYNC_ENCRYPT_KEY: "",
        SECRET_KEY: "",
        PU_MQTT_PORT: 1,
        CUSTOM_LIMIT: 10,
      }),
      "schema_example.json": JSON.stringify(DEFAULT_SCHEMA_EXAMPLE),
    });
    aliasRepoUuid = (await createRepo(inst.api, bob.token, aliasFixture)).uuid;
  });
  afterAll(async () => {
    await inst?.close();
  });

  it("has exactly the generated keys plus env_example's, with the device types", async () => {
    const unit = await createUnit(inst.api, bob.token, repoUuid);
    const res = await inst.api.get(`/units/env/${unit.uuid}`, bob.token);
    expect(res.status).toBe(200);
    const env = res.body;
    expect(Object.keys(env).sort()).toEqual(
      [...GENERATED, "PUC_WIFI_SSID", "PUC_WIFI_PASS", "PEPEUNIT_URL"].sort(),
    );
    expect(env).toMatchObject({
      PU_DOMAIN: "localhost:8080",
      PU_HTTP_TYPE: "http",
      PU_APP_PREFIX: "/pepeunit",
      PU_API_ACTUAL_PREFIX: "/api/v1",
      PU_MQTT_HOST: "localhost",
      PU_MQTT_PORT: inst.deps.config.mqttPort,
      PU_MQTT_PING_INTERVAL: 20,
      PU_MQTT_KEEPALIVE: 60,
      PU_STATE_SEND_INTERVAL: 45,
      PU_MIN_LOG_LEVEL: "Debug",
      PU_MAX_LOG_LENGTH: 64,
      PU_COMMIT_VERSION: unit.commit,
      PEPEUNIT_URL: "http://localhost:8080",
      PUC_WIFI_SSID: "",
    });
    expect(Number.isInteger(env.PU_MQTT_PORT)).toBe(true);
    expect(env.PU_COMMIT_VERSION).toMatch(/^[0-9a-f]{40}$/);
    expect(env.PU_SECRET_KEY).toMatch(BASE64_32);
    expect(env.PU_ENCRYPT_KEY).toMatch(BASE64_32);
    expect(env.PU_SECRET_KEY).not.toBe(env.PU_ENCRYPT_KEY);
    expect(Buffer.from(env.PU_ENCRYPT_KEY, "base64")).toHaveLength(32);
    // The MicroPython client searches the decoded payload for `"uuid":"`: exact compact JSON.
    expect(payloadOf(env.PU_AUTH_TOKEN)).toBe(`{"uuid":"${unit.uuid}","type":"Unit"}`);
    // No seed alias that env_example.json does not list.
    for (const k of ["PEPEUNIT_TOKEN", "SYNC_ENCRYPT_KEY", "SECRET_KEY"])
      expect(env).not.toHaveProperty(k);

    const again = await inst.api.get(`/units/env/${unit.uuid}`, bob.token);
    expect(again.body).toEqual(env);
  });

  it("fills the seed aliases listed in env_example.json and keeps its other defaults", async () => {
    const unit = await createUnit(inst.api, bob.token, aliasRepoUuid);
    const env = (await inst.api.get(`/units/env/${unit.uuid}`, bob.token)).body;
    expect(env.PEPEUNIT_URL).toBe("http://localhost:8080");
    expect(env.PEPEUNIT_TOKEN).toBe(env.PU_AUTH_TOKEN);
    expect(env.SYNC_ENCRYPT_KEY).toBe(env.PU_ENCRYPT_KEY);
    expect(env.SECRET_KEY).toBe(env.PU_SECRET_KEY);
    expect(env.CUSTOM_LIMIT).toBe(10);
    expect(env.WIFI_SSID).toBe("");
    // Generated keys win over env_example defaults.
    expect(env.PU_MQTT_PORT).toBe(inst.deps.config.mqttPort);
    expect(env.PU_MQTT_PORT).not.toBe(1);
  });

  it("keeps user edits and refuses unknown, instance-owned and mistyped keys", async () => {
    const unit = await createUnit(inst.api, bob.token, repoUuid);
    const before = (await inst.api.get(`/units/env/${unit.uuid}`, bob.token)).body;
    const edit = await inst.api.patch(
      `/units/env/${unit.uuid}`,
      {
        PUC_WIFI_SSID: "home",
        PUC_WIFI_PASS: "secret",
        PU_MQTT_PORT: 8883,
        PU_MIN_LOG_LEVEL: "Info",
      },
      bob.token,
    );
    expect(edit.status).toBe(200);
    expect(edit.body).toEqual({
      ...before,
      PUC_WIFI_SSID: "home",
      PUC_WIFI_PASS: "secret",
      PU_MQTT_PORT: 8883,
      PU_MIN_LOG_LEVEL: "Info",
    });
    const read = await inst.api.get(`/units/env/${unit.uuid}`, bob.token);
    expect(read.body).toEqual(edit.body);

    for (const key of [
      "PU_AUTH_TOKEN",
      "PU_COMMIT_VERSION",
      "PU_DOMAIN",
      "PU_SECRET_KEY",
      "PEPEUNIT_URL",
    ]) {
      const res = await inst.api.patch(`/units/env/${unit.uuid}`, { [key]: "x" }, bob.token);
      expect(res.status, key).toBe(422);
      expect(res.body.detail, key).toMatch(/managed by the instance/);
    }
    const unknown = await inst.api.patch(`/units/env/${unit.uuid}`, { WHATEVER: "1" }, bob.token);
    expect(unknown.status).toBe(422);
    expect(unknown.body.detail).toMatch(/WHATEVER/);
    const badPort = await inst.api.patch(
      `/units/env/${unit.uuid}`,
      { PU_MQTT_PORT: "1883" },
      bob.token,
    );
    expect(badPort.status).toBe(422);
    const badLevel = await inst.api.patch(
      `/units/env/${unit.uuid}`,
      { PU_MIN_LOG_LEVEL: "Loud" },
      bob.token,
    );
    expect(badLevel.status).toBe(422);
    const nested = await inst.api.patch(
      `/units/env/${unit.uuid}`,
      { PUC_WIFI_SSID: { a: 1 } },
      bob.token,
    );
    expect(nested.status).toBe(422);
    expect((await inst.api.get(`/units/env/${unit.uuid}`, bob.token)).body).toEqual(edit.body);

    // Another user: the unit is Public, but its env is its creator's.
    expect((await inst.api.get(`/units/env/${unit.uuid}`, carol.token)).status).toBe(404);
    expect(
      (await inst.api.patch(`/units/env/${unit.uuid}`, { PUC_WIFI_SSID: "x" }, carol.token)).status,
    ).toBe(403);
    expect((await inst.api.get(`/units/env/${unit.uuid}`)).status).toBe(404);
  });

  it("stores the env encrypted", async () => {
    const unit = await createUnit(inst.api, bob.token, repoUuid);
    await inst.api.patch(
      `/units/env/${unit.uuid}`,
      { PUC_WIFI_PASS: "very-secret-wifi" },
      bob.token,
    );
    const env = (await inst.api.get(`/units/env/${unit.uuid}`, bob.token)).body;
    const [row] = await inst.deps.database.db
      .select({ envEnc: units.envEnc })
      .from(units)
      .where(eq(units.uuid, unit.uuid));
    expect(row?.envEnc).toMatch(/^[A-Za-z0-9+/]+={0,2}\.[A-Za-z0-9+/]+={0,2}$/);
    for (const plain of ["very-secret-wifi", env.PU_AUTH_TOKEN, env.PU_ENCRYPT_KEY, "PU_DOMAIN"]) {
      expect(row?.envEnc).not.toContain(plain);
    }
  });

  it("rotates the unit token: the old one is refused at once, the new one works", async () => {
    const unit = await createUnit(inst.api, bob.token, repoUuid);
    await inst.api.patch(`/units/env/${unit.uuid}`, { PUC_WIFI_SSID: "kept" }, bob.token);
    const before = (await inst.api.get(`/units/env/${unit.uuid}`, bob.token)).body;
    const oldToken = before.PU_AUTH_TOKEN;
    expect((await inst.api.get(`/units/env/${unit.uuid}`, oldToken)).status).toBe(200);

    expect(
      (await inst.api.post(`/units/${unit.uuid}/rotate_token`, undefined, carol.token)).status,
    ).toBe(403);
    expect(
      (await inst.api.post(`/units/${unit.uuid}/rotate_token`, undefined, oldToken)).status,
    ).toBe(403);
    const rotated = await inst.api.post(`/units/${unit.uuid}/rotate_token`, undefined, bob.token);
    expect(rotated.status).toBe(200);
    const newToken = rotated.body.token;
    expect(newToken).not.toBe(oldToken);
    expect(payloadOf(newToken)).toBe(`{"uuid":"${unit.uuid}","type":"Unit"}`);

    expect((await inst.api.get(`/units/env/${unit.uuid}`, oldToken)).status).toBe(401);
    expect((await inst.api.get(`/units/get_current_schema/${unit.uuid}`, oldToken)).status).toBe(
      401,
    );
    const after = await inst.api.get(`/units/env/${unit.uuid}`, newToken);
    expect(after.status).toBe(200);
    expect(after.body).toEqual({ ...before, PU_AUTH_TOKEN: newToken });
  });

  it("refuses user-only endpoints to a unit token and a deleted unit's token everywhere", async () => {
    const unit = await createUnit(inst.api, bob.token, repoUuid);
    const token = await unitToken(inst.api, bob.token, unit.uuid);
    expect((await inst.api.patch(`/units/${unit.uuid}`, { name: "renamed" }, token)).status).toBe(
      403,
    );
    expect(
      (await inst.api.patch(`/units/env/${unit.uuid}`, { PUC_WIFI_SSID: "x" }, token)).status,
    ).toBe(403);
    expect((await inst.api.delete(`/units/${unit.uuid}`, token)).status).toBe(403);
    expect(
      (await inst.api.post("/units", { repo_uuid: repoUuid, name: "by-unit" }, token)).status,
    ).toBe(403);
    // The unit's token header may also come as a Bearer.
    const bearer = await inst.api.request("GET", `/units/env/${unit.uuid}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(bearer.status).toBe(200);

    expect((await inst.api.delete(`/units/${unit.uuid}`, bob.token)).status).toBe(204);
    expect((await inst.api.get(`/units/env/${unit.uuid}`, token)).status).toBe(401);
    expect((await inst.api.get("/units", token)).status).toBe(401);
    expect((await inst.api.get(`/units/${unit.uuid}`, bob.token)).status).toBe(404);
  });
});
