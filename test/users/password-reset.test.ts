import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  captureLogs,
  createUser,
  startTestInstance,
  type TestInstance,
} from "../helpers/instance.ts";
import { type SmtpSink, startSmtpSink } from "../helpers/smtp-sink.ts";

// Forgotten passwords: a one-time link (30 minutes) by mail or from the admin console
// to the web UI's reset form; the request answers alike whether the account exists.

const LINK_RE = /http:\/\/pepe\.example\.test\/#\/reset\/([A-Za-z0-9_.-]+)/;

/** The reset token in a raw mail (quoted-printable soft breaks and =3D undone). */
function tokenOf(mail: string): string {
  const unfolded = mail.replace(/=\r?\n/g, "").replace(/=3D/g, "=");
  const token = LINK_RE.exec(unfolded)?.[1];
  if (!token) throw new Error(`no reset link in: ${mail}`);
  return token;
}

describe("password reset", () => {
  let inst: TestInstance;
  let smtp: SmtpSink;
  let admin: { uuid: string; token: string };
  let bob: { uuid: string; token: string };

  beforeAll(async () => {
    smtp = await startSmtpSink();
    inst = await startTestInstance({
      PEPEUNIT_SMTP_URL: smtp.url,
      PEPEUNIT_DOMAIN: "pepe.example.test",
    });
    admin = await createUser(inst.api, "admin");
    bob = await createUser(inst.api, "bob");
  });
  afterAll(async () => {
    await inst?.close();
    await smtp?.close();
  });

  const confirm = (token: string, newPassword: string) =>
    inst.api.post("/users/password_reset/confirm", { token, new_password: newPassword });
  const logIn = (password: string) => inst.api.post("/users/auth", { login: "bob", password });

  it("answers an unknown account exactly like a known one, and mails only the known one", async () => {
    const unknown = await inst.api.post("/users/password_reset", { login: "ghost" });
    const unknownMail = await inst.api.post("/users/password_reset", {
      login: "ghost@example.test",
    });
    const known = await inst.api.post("/users/password_reset", { login: "bob@example.test" });
    expect(known.status).toBe(202);
    expect(unknown.status).toBe(known.status);
    expect(unknownMail.status).toBe(known.status);
    expect(unknown.body).toEqual(known.body);
    const mail = await smtp.next();
    expect(mail).toContain("bob@example.test");
    expect(smtp.messages).toEqual([]);
    tokenOf(mail);
  });

  it("sets a new password once from the mailed link, ending every session", async () => {
    await inst.api.post("/users/password_reset", { login: "bob" });
    const token = tokenOf(await smtp.next());
    expect((await confirm("garbage", "brand-new-pass")).status).toBe(422);
    expect((await confirm(token, "short")).status).toBe(422);
    const done = await confirm(token, "brand-new-pass");
    expect(done.status).toBe(200);
    expect((await inst.api.get("/users/me", bob.token)).status).toBe(401);
    expect((await logIn("pw-bob-secret")).status).toBe(401);
    expect((await logIn("brand-new-pass")).status).toBe(200);
    const twice = await confirm(token, "another-new-pass");
    expect(twice.status).toBe(422);
    expect(twice.body.detail).toMatch(/reset link/);
    expect((await logIn("brand-new-pass")).status).toBe(200);
  });

  it("lets only the admin make a link, which expires after 30 minutes", async () => {
    const path = `/users/${bob.uuid}/password_reset_link`;
    const bobToken = (await logIn("brand-new-pass")).body.token;
    expect((await inst.api.post(path, undefined, bobToken)).status).toBe(403);
    expect((await inst.api.post(path)).status).toBe(401);
    expect(
      (
        await inst.api.post(
          "/users/00000000-0000-4000-8000-000000000000/password_reset_link",
          undefined,
          admin.token,
        )
      ).status,
    ).toBe(404);
    const made = await inst.api.post(path, undefined, admin.token);
    expect(made.status).toBe(200);
    const token = LINK_RE.exec(made.body.link)?.[1] ?? "";
    expect(token).not.toBe("");

    // The server runs in this process: its clock moves on with the test's.
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      vi.setSystemTime(Date.now() + 31 * 60_000);
      expect((await confirm(token, "too-late-pass")).status).toBe(422);
    } finally {
      vi.useRealTimers();
    }
    expect((await confirm(token, "in-time-pass")).status).toBe(200);
    expect((await logIn("in-time-pass")).status).toBe(200);
  });
});

describe("password reset without SMTP", () => {
  let inst: TestInstance;
  const logs = captureLogs();
  beforeAll(async () => {
    inst = await startTestInstance({ PEPEUNIT_LOG_LEVEL: "warn" }, { logStream: logs.stream });
    await createUser(inst.api, "carol");
  });
  afterAll(async () => {
    await inst?.close();
  });

  it("answers the same and warns in the log, naming nobody", async () => {
    const known = await inst.api.post("/users/password_reset", { login: "carol" });
    const unknown = await inst.api.post("/users/password_reset", { login: "nobody" });
    expect(known.status).toBe(202);
    expect(unknown.status).toBe(202);
    expect(known.body).toEqual(unknown.body);
    const log = logs.text();
    expect(log).toMatch(/no SMTP server/);
    expect(log).not.toMatch(/carol/);
  });
});
