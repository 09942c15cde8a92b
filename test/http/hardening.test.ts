import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFixtureRepo } from "../helpers/git-fixtures.ts";
import { createUser, startTestInstance, type TestInstance } from "../helpers/instance.ts";
import { createRepo } from "../helpers/repos.ts";
import { streamUntilAnswered } from "./streaming.ts";

// Request bodies are capped before authentication, control characters in input
// are a 422 (not a 500 from the database), and every answer carries the
// security headers.

describe("HTTP hardening", () => {
  let inst: TestInstance;
  let owner: { uuid: string; token: string };
  beforeAll(async () => {
    inst = await startTestInstance({ PEPEUNIT_MAX_BODY_KB: "64" });
    owner = await createUser(inst.api, "owner");
  });
  afterAll(async () => {
    await inst?.close();
  });
  const authUrl = () => `${inst.httpUrl}/pepeunit/api/v1/users/auth`;
  const json = { "content-type": "application/json" };

  it("refuses a declared Content-Length over the limit at once, before reading the body", async () => {
    // The body never comes: a server that waited for it would not answer.
    const out = await streamUntilAnswered(authUrl(), json, { declaredLength: 200 * 1024 * 1024 });
    expect(out.status).toBe(413);
    expect(JSON.parse(out.body).detail).toMatch(/too large/);
    expect(out.bytesSent).toBeLessThan(out.bytesOffered);
  });

  it("stops reading a chunked body as soon as it passes the limit", async () => {
    const out = await streamUntilAnswered(authUrl(), json);
    expect(out.status).toBe(413);
    expect(JSON.parse(out.body).detail).toMatch(/too large/);
    expect(out.bytesSent).toBeLessThan(out.bytesOffered);
    // Before authentication: a token does not change the answer.
    const withToken = await streamUntilAnswered(
      `${inst.httpUrl}/pepeunit/api/v1/repos`,
      { ...json, "x-auth-token": owner.token },
      { offerBytes: 4 * 1024 * 1024 },
    );
    expect(withToken.status).toBe(413);
    expect((await inst.api.get("/healthz")).status).toBe(200);
  });

  it("lets a client that is still sending its too-large body read the 413", async () => {
    // Kept alive, the server would drain the rest briefly and then reset the socket,
    // and fetch lost the answer ("other side closed") about one time in three.
    for (let i = 0; i < 20; i++) {
      const res = await fetch(authUrl(), {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "x".repeat(1_100_000 + i * 20_000),
      });
      expect([res.status, (await res.json()).detail]).toEqual([413, "request body too large"]);
    }
  });

  it("takes a body under the limit", async () => {
    const res = await inst.api.post("/users/auth", {
      login: "owner",
      password: "pw-owner-secret",
      pad: "x".repeat(32 * 1024),
    });
    expect(res.status).toBe(200);
  });

  it("answers NUL and other control characters with 422, never 500", async () => {
    const repo = await createRepo(inst.api, owner.token, createFixtureRepo());
    const cases = [
      await inst.api.post("/users/auth", { login: "a\u0000", password: "x" }),
      await inst.api.post("/users", { login: "b\u0001c", email: "b@example.test", password: "pw" }),
      await inst.api.get("/repos?search=%00"),
      await inst.api.get("/units?search=%00", owner.token),
      await inst.api.get("/units?search=a%1Bb", owner.token),
      await inst.api.patch(`/repos/${repo.uuid}`, { name: "evil\u0000name" }, owner.token),
      await inst.api.post("/repos", { name: "x\u0000", url: "file:///nowhere" }, owner.token),
    ];
    for (const res of cases) {
      expect(res.status, JSON.stringify(res.body)).toBe(422);
      expect(res.body.detail).toBeDefined();
    }
    // Tab, line feed and carriage return are text, not control input.
    const tabbed = await inst.api.get("/repos?search=a%09b");
    expect(tabbed.status).toBe(200);
  });

  it("sends the security headers on API answers, errors and the docs", async () => {
    for (const path of [
      "/pepeunit/api/v1/openapi.json",
      "/pepeunit/api/v1/nope",
      "/pepeunit/docs",
    ]) {
      const res = await fetch(`${inst.httpUrl}${path}`);
      const csp = res.headers.get("content-security-policy") ?? "";
      expect(csp, path).toMatch(/frame-ancestors 'none'/);
      expect(csp, path).toMatch(/script-src 'self'(;|$)/);
      expect(res.headers.get("x-content-type-options"), path).toBe("nosniff");
      expect(res.headers.get("referrer-policy"), path).toBe("no-referrer");
    }
  });

  it("serves Swagger UI from the installed package, never from another host", async () => {
    const res = await fetch(`${inst.httpUrl}/pepeunit/docs`);
    expect(res.status).toBe(200);
    const html = await res.text();
    const refs = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] as string);
    expect(refs.length).toBeGreaterThan(2);
    for (const ref of refs) expect(ref, ref).toMatch(/^\/pepeunit\/docs\/assets\//);
    expect(html).not.toMatch(/https?:\/\//);
    for (const ref of refs) {
      const asset = await fetch(`${inst.httpUrl}${ref}`);
      expect(asset.status, ref).toBe(200);
      expect((await asset.arrayBuffer()).byteLength, ref).toBeGreaterThan(100);
    }
    const bundle = await fetch(`${inst.httpUrl}/pepeunit/docs/assets/swagger-ui-bundle.js`);
    expect(bundle.headers.get("content-type")).toMatch(/javascript/);
    expect(await bundle.text()).toMatch(/SwaggerUIBundle/);
    expect((await fetch(`${inst.httpUrl}/pepeunit/docs/assets/..%2Fpackage.json`)).status).toBe(
      404,
    );
  });
});
