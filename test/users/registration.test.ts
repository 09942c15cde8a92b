import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createUser, startTestInstance, type TestInstance } from "../helpers/instance.ts";
import { type SmtpSink, startSmtpSink } from "../helpers/smtp-sink.ts";

const register = (inst: TestInstance, login: string) =>
  inst.api.post("/users", {
    login,
    email: `${login}@example.test`,
    password: `pw-${login}-secret`,
  });
const auth = (inst: TestInstance, login: string) =>
  inst.api.post("/users/auth", { login, password: `pw-${login}-secret` });

describe("registration modes", () => {
  let inst: TestInstance;
  let smtp: SmtpSink;
  let admin: { uuid: string; token: string };

  beforeAll(async () => {
    smtp = await startSmtpSink();
    inst = await startTestInstance({
      PEPEUNIT_SMTP_URL: smtp.url,
      PEPEUNIT_DOMAIN: "pepe.example.test",
    });
    admin = await createUser(inst.api, "root");
  });
  afterAll(async () => {
    await inst?.close();
    await smtp?.close();
  });

  const setMode = (mode: string) =>
    inst.api.patch("/admin/settings", { registration_mode: mode }, admin.token);

  it("only the admin reads and changes settings", async () => {
    const bob = await createUser(inst.api, "bob");
    expect((await inst.api.get("/admin/settings", bob.token)).status).toBe(403);
    expect((await inst.api.get("/admin/settings")).status).toBe(401);
    const s = await inst.api.get("/admin/settings", admin.token);
    expect(s.body).toEqual({ registration_mode: "Open", mail_configured: true });
    expect((await setMode("Sometimes")).status).toBe(422);
  });

  it("e-mail verification: a real mail with a link that activates the account", async () => {
    expect((await setMode("EmailVerification")).status).toBe(200);
    const reg = await register(inst, "carol");
    expect(reg.status).toBe(201);
    expect(reg.body.status).toBe("PendingEmail");
    expect((await auth(inst, "carol")).status).toBe(403);
    const mail = await smtp.next();
    expect(mail).toContain("carol@example.test");
    const unfolded = mail.replace(/=\r?\n/g, "").replace(/=3D/g, "=");
    const link =
      /https?:\/\/pepe\.example\.test(\/pepeunit\/api\/v1\/users\/verify_email\?token=[^\s"]+)/.exec(
        unfolded,
      );
    expect(link).not.toBeNull();
    const path = link?.[1]?.replace("/pepeunit/api/v1", "") ?? "";
    expect((await inst.api.get("/users/verify_email?token=garbage")).status).toBe(422);
    const verified = await inst.api.get(path);
    expect(verified.status).toBe(200);
    expect((await auth(inst, "carol")).status).toBe(200);
  });

  it("manual approval: the admin verifies the account", async () => {
    await setMode("ManualApproval");
    const reg = await register(inst, "dave");
    expect(reg.body.status).toBe("PendingApproval");
    const denied = await auth(inst, "dave");
    expect(denied.status).toBe(403);
    expect(denied.body.detail).toMatch(/approval/);
    const pending = await inst.api.get("/users?status=PendingApproval", admin.token);
    expect(pending.body.users.map((u: { login: string }) => u.login)).toContain("dave");
    expect(
      (await inst.api.post(`/users/${reg.body.uuid}/verify`, undefined, admin.token)).status,
    ).toBe(200);
    expect((await auth(inst, "dave")).status).toBe(200);
  });

  it("closed: nobody registers", async () => {
    await setMode("Closed");
    const reg = await register(inst, "erin");
    expect(reg.status).toBe(403);
    expect(reg.body.detail).toMatch(/closed/);
    await setMode("Open");
    expect((await register(inst, "erin")).status).toBe(201);
  });

  it("refuses duplicate logins and e-mails, case-insensitively", async () => {
    const dup = await inst.api.post("/users", {
      login: "ROOT",
      email: "x@example.test",
      password: "longenough",
    });
    expect(dup.status).toBe(409);
    const dupMail = await inst.api.post("/users", {
      login: "rooty",
      email: "Root@Example.test",
      password: "longenough",
    });
    expect(dupMail.status).toBe(409);
  });
});

describe("accounts", () => {
  let inst: TestInstance;
  let admin: string;
  beforeAll(async () => {
    inst = await startTestInstance();
    admin = (await createUser(inst.api, "admin")).token;
  });
  afterAll(async () => {
    await inst?.close();
  });

  it("logs in by e-mail too, refuses wrong passwords", async () => {
    const byMail = await inst.api.post("/users/auth", {
      login: "admin@example.test",
      password: "pw-admin-secret",
    });
    expect(byMail.status).toBe(200);
    const wrong = await inst.api.post("/users/auth", { login: "admin", password: "nope-nope" });
    expect(wrong.status).toBe(401);
    expect(wrong.body.detail).toBeDefined();
  });

  it("changing the password revokes older tokens", async () => {
    const u = await createUser(inst.api, "frank");
    const bad = await inst.api.post(
      "/users/me/password",
      { old_password: "wrong", new_password: "new-secret-1" },
      u.token,
    );
    expect(bad.status).toBe(403);
    const ok = await inst.api.post(
      "/users/me/password",
      { old_password: "pw-frank-secret", new_password: "new-secret-1" },
      u.token,
    );
    expect(ok.status).toBe(200);
    expect((await inst.api.get("/users/me", u.token)).status).toBe(401);
    expect((await inst.api.get("/users/me", ok.body.token)).status).toBe(200);
    expect(
      (await inst.api.post("/users/auth", { login: "frank", password: "new-secret-1" })).status,
    ).toBe(200);
  });

  it("blocking revokes tokens and refuses login; unblocking restores", async () => {
    const g = await createUser(inst.api, "grace");
    expect((await inst.api.post(`/users/${g.uuid}/block`, undefined, g.token)).status).toBe(403);
    expect((await inst.api.post(`/users/${g.uuid}/block`, undefined, admin)).status).toBe(200);
    expect((await inst.api.get("/users/me", g.token)).status).toBe(401);
    expect(
      (await inst.api.post("/users/auth", { login: "grace", password: "pw-grace-secret" })).status,
    ).toBe(403);
    expect((await inst.api.post(`/users/${g.uuid}/unblock`, undefined, admin)).status).toBe(200);
    expect(
      (await inst.api.post("/users/auth", { login: "grace", password: "pw-grace-secret" })).status,
    ).toBe(200);
  });

  it("a user deletes themselves; others cannot; the admin can; tokens die with the user", async () => {
    const h = await createUser(inst.api, "heidi");
    const i = await createUser(inst.api, "ivan");
    expect((await inst.api.delete(`/users/${i.uuid}`, h.token)).status).toBe(404);
    expect((await inst.api.delete(`/users/${h.uuid}`, h.token)).status).toBe(204);
    expect((await inst.api.get("/users/me", h.token)).status).toBe(401);
    expect((await inst.api.delete(`/users/${i.uuid}`, admin)).status).toBe(204);
    expect(
      (await inst.api.post("/users/auth", { login: "ivan", password: "pw-ivan-secret" })).status,
    ).toBe(401);
    const me = (await inst.api.get("/users/me", admin)).body;
    expect((await inst.api.delete(`/users/${me.uuid}`, admin)).status).toBe(409);
  });

  it("refuses garbage tokens with 401 and anonymous callers of /me", async () => {
    expect((await inst.api.get("/users/me", "not-a-jwt")).status).toBe(401);
    expect((await inst.api.get("/users/me")).status).toBe(401);
    const bearer = await inst.api.request("GET", "/users/me", {
      headers: { authorization: "Bearer nope" },
    });
    expect(bearer.status).toBe(401);
  });
});
