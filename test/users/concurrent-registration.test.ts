import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { captureLogs, startTestInstance, type TestInstance } from "../helpers/instance.ts";

// Registrations arriving together: on a fresh instance exactly one becomes the admin
// (issue 9 #4); one login registered six times at once is one account and five 409s,
// and the driver's error (which quotes the password hash and e-mail) is never logged (#9).

describe("parallel registrations", () => {
  let inst: TestInstance;
  const logs = captureLogs();

  beforeAll(async () => {
    inst = await startTestInstance({ PEPEUNIT_LOG_LEVEL: "info" }, { logStream: logs.stream });
  });
  afterAll(async () => {
    await inst?.close();
  });

  const register = (login: string, email = `${login}@example.test`) =>
    inst.api.post("/users", { login, email, password: `pw-${login}-secret` });

  it("makes exactly one admin of 8 parallel first registrations", async () => {
    const logins = Array.from({ length: 8 }, (_, i) => `first${i}`);
    const results = await Promise.all(logins.map((l) => register(l)));
    expect(results.map((r) => r.status)).toEqual(logins.map(() => 201));
    expect(results.filter((r) => r.body.role === "Admin")).toHaveLength(1);
  });

  it("answers one 201 and five 409 to six parallel registrations of one login, logging no hash or e-mail", async () => {
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) => register("twin", `twin${i}@example.test`)),
    );
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([201, 409, 409, 409, 409, 409]);
    for (const r of results.filter((x) => x.status === 409)) {
      expect(r.body.detail).toMatch(/login is already registered/);
    }
    // Same e-mail, different logins: one account again.
    const sameMail = await Promise.all(
      Array.from({ length: 4 }, (_, i) => register(`mail${i}`, "shared@example.test")),
    );
    expect(sameMail.map((r) => r.status).sort()).toEqual([201, 409, 409, 409]);

    const log = logs.text();
    expect(log).not.toMatch(/scrypt\$/);
    expect(log).not.toMatch(/@example\.test/);
    expect(log).not.toMatch(/unhandled error/);
  });
});
