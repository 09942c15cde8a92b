import { rm } from "node:fs/promises";
import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repos } from "../../src/db/schema.ts";
import { claimDueRepos } from "../../src/repos/repos.store.ts";
import { createRepoSyncWorker } from "../../src/repos/sync-worker.ts";
import { createFixtureRepo } from "../helpers/git-fixtures.ts";
import { createUser, startTestInstance, type TestInstance } from "../helpers/instance.ts";
import { createRepo } from "../helpers/repos.ts";

type Synced = { repoUuid: string; changedBranches: string[] };

/** Polls (no fixed sleep) until the check passes or the deadline is reached. */
async function eventually<T>(check: () => Promise<T | undefined>, what: string): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("repos: sync now", () => {
  let inst: TestInstance;
  let token: string;
  const events: Synced[] = [];

  beforeAll(async () => {
    inst = await startTestInstance();
    token = (await createUser(inst.api, "admin")).token;
    inst.deps.events.on("repo.synced", (e) => events.push(e));
  });
  afterAll(async () => {
    await inst?.close();
  });

  it("picks up new commits, branches and tags, and drops deleted ones", async () => {
    const fixture = createFixtureRepo();
    fixture.git("branch", "stable");
    fixture.git("branch", "old");
    fixture.git("tag", "gone");
    const repo = await createRepo(inst.api, token, fixture, { auto_sync: false });
    const stable = fixture.git("rev-parse", "stable");

    const head = fixture.commit("new work", { "new.txt": "new\n" });
    fixture.git("tag", "-a", "v2", "-m", "release 2");
    fixture.git("checkout", "-q", "-b", "feature");
    const feature = fixture.commit("feature", { "f.txt": "f\n" });
    fixture.git("checkout", "-q", "main");
    fixture.git("branch", "-D", "old");
    fixture.git("tag", "-d", "gone");

    const res = await inst.api.post(`/repos/${repo.uuid}/sync`, undefined, token);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ uuid: repo.uuid, sync_status: "Synced", sync_error: null });
    expect(Date.parse(res.body.last_synced_datetime)).toBeGreaterThanOrEqual(
      Date.parse(repo.last_synced_datetime),
    );

    const v = await inst.api.get(`/repos/${repo.uuid}/versions`, token);
    expect(v.body.branches).toEqual(
      expect.arrayContaining([
        { name: "main", commit: head },
        { name: "stable", commit: stable },
        { name: "feature", commit: feature },
      ]),
    );
    expect(v.body.branches).toHaveLength(3);
    expect(v.body.tags).toEqual([{ name: "v2", commit: head }]);

    const mine = events.filter((e) => e.repoUuid === repo.uuid);
    expect(mine).toHaveLength(1);
    expect(mine[0]?.changedBranches.sort()).toEqual(["feature", "main"]);

    // Nothing new: a sync still announces itself, with no changed branch.
    await inst.api.post(`/repos/${repo.uuid}/sync`, undefined, token);
    expect(events.filter((e) => e.repoUuid === repo.uuid).at(-1)?.changedBranches).toEqual([]);
  });

  it("records a failing sync on the repo and keeps serving", async () => {
    const fixture = createFixtureRepo();
    const repo = await createRepo(inst.api, token, fixture, { auto_sync: false });
    const before = events.length;
    await rm(fixture.dir, { recursive: true, force: true });

    const res = await inst.api.post(`/repos/${repo.uuid}/sync`, undefined, token);
    expect(res.status).toBe(200);
    expect(res.body.sync_status).toBe("Error");
    expect(res.body.sync_error).toMatch(
      /does not appear to be a git repository|not found|No such/i,
    );
    expect(events.length).toBe(before);

    const got = await inst.api.get(`/repos/${repo.uuid}`, token);
    expect(got.body).toMatchObject({ sync_status: "Error", sync_error: res.body.sync_error });
    // The clone from before is still there and still usable.
    const v = await inst.api.get(`/repos/${repo.uuid}/versions`, token);
    expect(v.status).toBe(200);
    expect(v.body.branches).toHaveLength(1);
    expect((await inst.api.get("/healthz")).status).toBe(200);
  });

  it("re-clones when the clone directory went missing", async () => {
    const fixture = createFixtureRepo();
    const repo = await createRepo(inst.api, token, fixture, { auto_sync: false });
    await inst.deps.git.remove(repo.uuid);
    expect((await inst.api.get(`/repos/${repo.uuid}/versions`, token)).status).toBe(409);
    const res = await inst.api.post(`/repos/${repo.uuid}/sync`, undefined, token);
    expect(res.body.sync_status).toBe("Synced");
    const v = await inst.api.get(`/repos/${repo.uuid}/versions`, token);
    expect(v.body.branches).toEqual([{ name: "main", commit: fixture.head() }]);
  });
});

describe("repos: sync worker", () => {
  let inst: TestInstance;
  let token: string;
  const events: Synced[] = [];

  beforeAll(async () => {
    inst = await startTestInstance({ PEPEUNIT_SYNC_TICK_S: "0.2" });
    token = (await createUser(inst.api, "admin")).token;
    inst.deps.events.on("repo.synced", (e) => events.push(e));
  });
  afterAll(async () => {
    await inst?.close();
  });

  /** Stands in for the passing of sync_interval_s (60 s at least): the repo is due now. */
  const makeDue = (uuid: string) =>
    inst.deps.database.db
      .update(repos)
      .set({ nextSyncAt: sql`now() - interval '1 second'` })
      .where(eq(repos.uuid, uuid));

  it("fetches a due repo on its own, without /sync", async () => {
    const fixture = createFixtureRepo();
    const repo = await createRepo(inst.api, token, fixture, { sync_interval_s: 60 });
    const head = fixture.commit("pushed later", { "later.txt": "later\n" });
    fixture.git("tag", "v-later");
    await makeDue(repo.uuid);

    const branches = await eventually(async () => {
      const v = await inst.api.get(`/repos/${repo.uuid}/versions`, token);
      return v.body.branches[0]?.commit === head ? v.body : undefined;
    }, "the worker to fetch the new commit");
    expect(branches.tags).toEqual([{ name: "v-later", commit: head }]);
    const after = await eventually(async () => {
      const r = await inst.api.get(`/repos/${repo.uuid}`, token);
      return r.body.sync_status === "Synced" ? r.body : undefined;
    }, "the sync to be recorded");
    // Scheduled again one interval after this sync.
    expect(
      Date.parse(after.next_sync_datetime) - Date.parse(after.last_synced_datetime),
    ).toBeGreaterThanOrEqual(59_000);
    expect(events.filter((e) => e.repoUuid === repo.uuid)).toEqual([
      { repoUuid: repo.uuid, changedBranches: ["main"] },
    ]);
  });

  it("leaves repos without auto_sync alone", async () => {
    const manual = createFixtureRepo();
    const auto = createFixtureRepo();
    const manualRepo = await createRepo(inst.api, token, manual, { auto_sync: false });
    const autoRepo = await createRepo(inst.api, token, auto);
    const manualHead = manual.head();
    manual.commit("not fetched", { "x.txt": "x\n" });
    await makeDue(manualRepo.uuid);
    await makeDue(autoRepo.uuid);
    // The auto repo being synced proves a tick ran after both were due.
    await eventually(
      async () => events.find((e) => e.repoUuid === autoRepo.uuid),
      "the auto_sync repo to sync",
    );
    const v = await inst.api.get(`/repos/${manualRepo.uuid}/versions`, token);
    expect(v.body.branches).toEqual([{ name: "main", commit: manualHead }]);
    expect(events.some((e) => e.repoUuid === manualRepo.uuid)).toBe(false);
  });

  it("records a failing remote as an Error and goes on", async () => {
    const fixture = createFixtureRepo();
    const repo = await createRepo(inst.api, token, fixture);
    await rm(fixture.dir, { recursive: true, force: true });
    await makeDue(repo.uuid);
    const failed = await eventually(async () => {
      const r = await inst.api.get(`/repos/${repo.uuid}`, token);
      return r.body.sync_status === "Error" ? r.body : undefined;
    }, "the failure to be recorded");
    expect(failed.sync_error).toEqual(expect.any(String));
    expect(failed.sync_error.length).toBeGreaterThan(0);
    expect((await inst.api.get("/healthz")).status).toBe(200);

    // The worker still works for the next repo.
    const healthy = createFixtureRepo();
    const next = await createRepo(inst.api, token, healthy);
    await makeDue(next.uuid);
    await eventually(async () => events.find((e) => e.repoUuid === next.uuid), "the next sync");
  });

  it("never hands one due repo to two claimers", async () => {
    const fixture = createFixtureRepo();
    const repo = await createRepo(inst.api, token, fixture, { auto_sync: false });
    // Claimed directly (the worker skips auto_sync false repos, so it cannot take it first).
    await inst.deps.database.db
      .update(repos)
      .set({ autoSync: true, nextSyncAt: sql`now() - interval '1 second'` })
      .where(eq(repos.uuid, repo.uuid));
    const extra = [
      createRepoSyncWorker(inst.deps, { tickMs: 10 }),
      createRepoSyncWorker(inst.deps, { tickMs: 10 }),
    ];
    const claims = await Promise.all([
      claimDueRepos(inst.deps.database.db, 10),
      claimDueRepos(inst.deps.database.db, 10),
      claimDueRepos(inst.deps.database.db, 10),
    ]);
    const taken = claims.flat().filter((u) => u === repo.uuid);
    // The instance's own worker may have claimed it first; never more than one claimer.
    expect(taken.length).toBeLessThanOrEqual(1);
    // And the claim moved the next sync a whole interval ahead.
    const [row] = await inst.deps.database.db
      .select({ next: repos.nextSyncAt })
      .from(repos)
      .where(eq(repos.uuid, repo.uuid));
    expect((row?.next?.getTime() ?? 0) - Date.now()).toBeGreaterThan(3600_000);

    // Several workers running at once still sync it once.
    await inst.deps.database.db
      .update(repos)
      .set({ nextSyncAt: sql`now() - interval '1 second'` })
      .where(eq(repos.uuid, repo.uuid));
    for (const w of extra) w.start();
    await eventually(async () => events.find((e) => e.repoUuid === repo.uuid), "a sync");
    await Promise.all(extra.map((w) => w.stop()));
    expect(events.filter((e) => e.repoUuid === repo.uuid)).toHaveLength(1);
  });
});
