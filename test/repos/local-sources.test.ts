import { mkdtempSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFixtureRepo } from "../helpers/git-fixtures.ts";
import { createUser, startTestInstance, type TestInstance } from "../helpers/instance.ts";
import { createRepo } from "../helpers/repos.ts";

// With PEPEUNIT_GIT_ALLOW_LOCAL, file:// reaches what the process can read: that must
// never include the instance's own clones (other users' private repos) or its data.

describe("repos: local sources stay outside the instance's own directories", () => {
  let inst: TestInstance;
  let rooted: TestInstance;
  let roots: string;

  beforeAll(async () => {
    roots = mkdtempSync(path.join(tmpdir(), "pepeunit-roots-"));
    inst = await startTestInstance();
    rooted = await startTestInstance({ PEPEUNIT_GIT_LOCAL_ROOTS: `/nonexistent-root, ${roots}` });
  });
  afterAll(async () => {
    await inst?.close();
    await rooted?.close();
  });

  it("refuses another user's private clone, directly or through a symlink", async () => {
    const alice = await createUser(inst.api, "alice");
    const mallory = await createUser(inst.api, "mallory");
    const secret = await createRepo(inst.api, alice.token, createFixtureRepo(), {
      visibility: "Private",
      is_private: true,
      credentials: { username: "u", password: "p" },
    });
    const clone = path.join(inst.dir, "repositories", secret.uuid);
    const link = path.join(mkdtempSync(path.join(tmpdir(), "pepeunit-link-")), "repo");
    symlinkSync(clone, link);
    for (const url of [
      `file://${clone}`,
      `file://${link}`,
      `file://${path.join(inst.dir, "data")}`,
      `file://${path.join(inst.dir, "data", "standard-repos", "x")}`,
    ]) {
      const res = await inst.api.post("/repos", { name: "steal", url }, mallory.token);
      expect(res.status, url).toBe(422);
      expect(res.body.detail, url).toContain("own data or repositories directory");
    }
    // Other local repositories still clone.
    const own = await inst.api.post(
      "/repos",
      { name: "mine", url: createFixtureRepo().url },
      mallory.token,
    );
    expect(own.status).toBe(201);
    const list = await inst.api.get("/repos", mallory.token);
    expect(list.body.repos.map((r: { name: string }) => r.name)).not.toContain("steal");
  });

  it("narrows file:// to PEPEUNIT_GIT_LOCAL_ROOTS when given", async () => {
    const user = await createUser(rooted.api, "rooted");
    const outside = createFixtureRepo();
    const refused = await rooted.api.post("/repos", { name: "o", url: outside.url }, user.token);
    expect(refused.status).toBe(422);
    expect(refused.body.detail).toContain("PEPEUNIT_GIT_LOCAL_ROOTS");
    const inside = path.join(roots, "inside");
    outside.git("clone", "-q", outside.dir, inside);
    const ok = await rooted.api.post("/repos", { name: "i", url: `file://${inside}` }, user.token);
    expect(ok.status).toBe(201);
  });
});
