import { existsSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFixtureRepo, type FixtureRepo } from "../helpers/git-fixtures.ts";
import { createUser, startTestInstance, type TestInstance } from "../helpers/instance.ts";
import { createRepo } from "../helpers/repos.ts";

describe("repos: create, read, versions, update", () => {
  let inst: TestInstance;
  let admin: { uuid: string; token: string };
  let alice: { uuid: string; token: string };
  let fixture: FixtureRepo;

  beforeAll(async () => {
    inst = await startTestInstance();
    admin = await createUser(inst.api, "admin");
    alice = await createUser(inst.api, "alice");
    fixture = createFixtureRepo();
    fixture.git("checkout", "-q", "-b", "dev");
    fixture.commit("dev work", { "dev.txt": "dev\n" });
    fixture.git("checkout", "-q", "main");
    fixture.git("tag", "v1.0.0-light");
    fixture.git("tag", "-a", "v1.0.0", "-m", "release 1.0.0");
  });
  afterAll(async () => {
    await inst?.close();
  });

  it("clones a repo on create and lists every branch and tag with its commit", async () => {
    const res = await inst.api.post(
      "/repos",
      { name: "Thermometer", url: fixture.url },
      alice.token,
    );
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      name: "Thermometer",
      url: fixture.url,
      is_private: false,
      has_credentials: false,
      visibility: "Public",
      sync_interval_s: 86400,
      auto_sync: true,
      default_branch: null,
      sync_status: "Synced",
      sync_error: null,
      creator_uuid: alice.uuid,
    });
    expect(res.body.credentials).toBeUndefined();
    expect(res.body.last_synced_datetime).toEqual(expect.any(String));
    expect(Date.parse(res.body.next_sync_datetime)).toBeGreaterThan(
      Date.parse(res.body.last_synced_datetime),
    );
    // A bare mirror: HEAD at the top level, no working tree.
    expect(existsSync(path.join(inst.dir, "repositories", res.body.uuid, "HEAD"))).toBe(true);

    const versions = await inst.api.get(`/repos/${res.body.uuid}/versions`, alice.token);
    expect(versions.status).toBe(200);
    const mainHead = fixture.git("rev-parse", "main");
    const devHead = fixture.git("rev-parse", "dev");
    expect(versions.body.branches).toEqual(
      expect.arrayContaining([
        { name: "main", commit: mainHead },
        { name: "dev", commit: devHead },
      ]),
    );
    expect(versions.body.branches).toHaveLength(2);
    // The annotated tag is reported with the commit it points at, not the tag object.
    expect(versions.body.tags).toEqual(
      expect.arrayContaining([
        { name: "v1.0.0", commit: mainHead },
        { name: "v1.0.0-light", commit: mainHead },
      ]),
    );
    expect(fixture.git("rev-parse", "v1.0.0")).not.toBe(mainHead);

    const got = await inst.api.get(`/repos/${res.body.uuid}`);
    expect(got.status).toBe(200);
    expect(got.body).toEqual(res.body);
  });

  it("sets a default branch that exists and refuses one that does not", async () => {
    const repo = await createRepo(inst.api, alice.token, fixture);
    expect(repo.default_branch).toBe("main");
    const dev = await inst.api.patch(`/repos/${repo.uuid}`, { default_branch: "dev" }, alice.token);
    expect(dev.status).toBe(200);
    expect(dev.body.default_branch).toBe("dev");
    const bad = await inst.api.patch(
      `/repos/${repo.uuid}`,
      { default_branch: "nope" },
      alice.token,
    );
    expect(bad.status).toBe(422);
    expect(bad.body.detail).toContain("nope");
    // A tag is not a branch.
    const tag = await inst.api.patch(
      `/repos/${repo.uuid}`,
      { default_branch: "v1.0.0" },
      alice.token,
    );
    expect(tag.status).toBe(422);
    const after = await inst.api.get(`/repos/${repo.uuid}`, alice.token);
    expect(after.body.default_branch).toBe("dev");
  });

  it("renames, reschedules, and never changes the clone URL", async () => {
    const repo = await createRepo(inst.api, alice.token, fixture);
    const renamed = await inst.api.patch(
      `/repos/${repo.uuid}`,
      { name: "Renamed", sync_interval_s: 3600, auto_sync: false },
      alice.token,
    );
    expect(renamed.status).toBe(200);
    expect(renamed.body).toMatchObject({
      name: "Renamed",
      sync_interval_s: 3600,
      auto_sync: false,
    });
    expect(
      Date.parse(renamed.body.next_sync_datetime) - Date.parse(renamed.body.last_synced_datetime),
    ).toBe(3600_000);

    const other = createFixtureRepo();
    const url = await inst.api.patch(`/repos/${repo.uuid}`, { url: other.url }, alice.token);
    expect(url.status).toBe(422);
    expect(url.body.detail).toContain("clone URL can never change");
    const same = await inst.api.patch(`/repos/${repo.uuid}`, { url: repo.url }, alice.token);
    expect(same.status).toBe(422);
    expect((await inst.api.get(`/repos/${repo.uuid}`, alice.token)).body.url).toBe(fixture.url);

    const tooShort = await inst.api.patch(
      `/repos/${repo.uuid}`,
      { sync_interval_s: 10 },
      alice.token,
    );
    expect(tooShort.status).toBe(422);
    const emptyName = await inst.api.patch(`/repos/${repo.uuid}`, { name: "" }, alice.token);
    expect(emptyName.status).toBe(422);
  });

  it("lets only the creator or an admin change a repo", async () => {
    const bob = await createUser(inst.api, "bob");
    const repo = await createRepo(inst.api, alice.token, fixture);
    const byBob = await inst.api.patch(`/repos/${repo.uuid}`, { name: "mine" }, bob.token);
    expect(byBob.status).toBe(403);
    const byAnon = await inst.api.patch(`/repos/${repo.uuid}`, { name: "mine" });
    expect(byAnon.status).toBe(401);
    const byAdmin = await inst.api.patch(`/repos/${repo.uuid}`, { name: "admin's" }, admin.token);
    expect(byAdmin.status).toBe(200);
    expect(byAdmin.body.name).toBe("admin's");
    expect((await inst.api.post(`/repos/${repo.uuid}/sync`, undefined, bob.token)).status).toBe(
      403,
    );
    expect((await inst.api.delete(`/repos/${repo.uuid}`, bob.token)).status).toBe(403);
  });

  it("validates the create body", async () => {
    const noName = await inst.api.post("/repos", { url: fixture.url }, alice.token);
    expect(noName.status).toBe(422);
    const longName = await inst.api.post(
      "/repos",
      { name: "x".repeat(101), url: fixture.url },
      alice.token,
    );
    expect(longName.status).toBe(422);
    const shortInterval = await inst.api.post(
      "/repos",
      { name: "r", url: fixture.url, sync_interval_s: 59 },
      alice.token,
    );
    expect(shortInterval.status).toBe(422);
    const anon = await inst.api.post("/repos", { name: "r", url: fixture.url });
    expect(anon.status).toBe(401);
    const privNoCreds = await inst.api.post(
      "/repos",
      { name: "r", url: fixture.url, is_private: true },
      alice.token,
    );
    expect(privNoCreds.status).toBe(422);
    expect(privNoCreds.body.detail).toContain("credentials");
    const credsNotPrivate = await inst.api.post(
      "/repos",
      { name: "r", url: fixture.url, credentials: { username: "u", password: "p" } },
      alice.token,
    );
    expect(credsNotPrivate.status).toBe(422);
    const missing = await inst.api.post(
      "/repos",
      { name: "r", url: `${fixture.url}-does-not-exist` },
      alice.token,
    );
    expect(missing.status).toBe(422);
    expect(missing.body.detail).toMatch(/clone failed/);
  });
});
