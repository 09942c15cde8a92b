import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFixtureRepo, type FixtureRepo } from "../helpers/git-fixtures.ts";
import { createUser, startTestInstance, type TestInstance } from "../helpers/instance.ts";
import { createRepo } from "../helpers/repos.ts";

type User = { uuid: string; token: string };
const names = (body: { repos: Array<{ name: string }> }) => body.repos.map((r) => r.name).sort();

describe("repos: who sees what", () => {
  let inst: TestInstance;
  let admin: User;
  let alice: User;
  let bob: User;
  let fixture: FixtureRepo;
  const repo: Record<"pub" | "int" | "priv", { uuid: string }> = {} as never;

  beforeAll(async () => {
    inst = await startTestInstance();
    admin = await createUser(inst.api, "admin");
    alice = await createUser(inst.api, "alice");
    bob = await createUser(inst.api, "bob");
    fixture = createFixtureRepo();
    repo.pub = await createRepo(inst.api, alice.token, fixture, { name: "Alice Public" });
    repo.int = await createRepo(inst.api, alice.token, fixture, {
      name: "Alice Internal",
      visibility: "Internal",
    });
    repo.priv = await createRepo(inst.api, alice.token, fixture, {
      name: "Alice Private",
      visibility: "Private",
    });
  });
  afterAll(async () => {
    await inst?.close();
  });

  it("shows anonymous callers only Public repos", async () => {
    const list = await inst.api.get("/repos");
    expect(list.status).toBe(200);
    expect(names(list.body)).toEqual(["Alice Public"]);
    expect(list.body.count).toBe(1);
    expect((await inst.api.get(`/repos/${repo.pub.uuid}`)).status).toBe(200);
    expect((await inst.api.get(`/repos/${repo.pub.uuid}/versions`)).status).toBe(200);
    for (const hidden of [repo.int, repo.priv]) {
      const res = await inst.api.get(`/repos/${hidden.uuid}`);
      expect(res.status).toBe(404);
      expect(res.body.detail).toBe("repo not found");
      expect((await inst.api.get(`/repos/${hidden.uuid}/versions`)).status).toBe(404);
    }
  });

  it("shows other users Internal repos but never someone's Private one", async () => {
    const list = await inst.api.get("/repos", bob.token);
    expect(names(list.body)).toEqual(["Alice Internal", "Alice Public"]);
    expect((await inst.api.get(`/repos/${repo.int.uuid}`, bob.token)).status).toBe(200);
    // Every route answers like the repo does not exist: same status, same text.
    const missing = await inst.api.get(`/repos/${crypto.randomUUID()}`, bob.token);
    const priv = await inst.api.get(`/repos/${repo.priv.uuid}`, bob.token);
    expect(priv.status).toBe(404);
    expect(priv.body).toEqual(missing.body);
    expect((await inst.api.get(`/repos/${repo.priv.uuid}/versions`, bob.token)).status).toBe(404);
    expect(
      (await inst.api.patch(`/repos/${repo.priv.uuid}`, { name: "x" }, bob.token)).status,
    ).toBe(404);
    expect(
      (await inst.api.post(`/repos/${repo.priv.uuid}/sync`, undefined, bob.token)).status,
    ).toBe(404);
    expect((await inst.api.delete(`/repos/${repo.priv.uuid}`, bob.token)).status).toBe(404);
    // Visible but not theirs: a 403, not a 404.
    expect((await inst.api.patch(`/repos/${repo.int.uuid}`, { name: "x" }, bob.token)).status).toBe(
      403,
    );
  });

  it("shows the creator and the admin everything", async () => {
    const all = ["Alice Internal", "Alice Private", "Alice Public"];
    expect(names((await inst.api.get("/repos", alice.token)).body)).toEqual(all);
    expect(names((await inst.api.get("/repos", admin.token)).body)).toEqual(all);
    expect((await inst.api.get(`/repos/${repo.priv.uuid}`, admin.token)).status).toBe(200);
    expect((await inst.api.get(`/repos/${repo.priv.uuid}/versions`, admin.token)).status).toBe(200);
  });

  it("shows a user their own Private repo next to others' open ones", async () => {
    await createRepo(inst.api, bob.token, fixture, { name: "Bob Private", visibility: "Private" });
    expect(names((await inst.api.get("/repos", bob.token)).body)).toEqual([
      "Alice Internal",
      "Alice Public",
      "Bob Private",
    ]);
    expect(names((await inst.api.get("/repos", alice.token)).body)).not.toContain("Bob Private");
  });

  it("filters by visibility, creator and name, and pages", async () => {
    const internal = await inst.api.get("/repos?visibility=Internal", bob.token);
    expect(names(internal.body)).toEqual(["Alice Internal"]);
    const privateForBob = await inst.api.get("/repos?visibility=Private", bob.token);
    expect(names(privateForBob.body)).toEqual(["Bob Private"]);
    const byAlice = await inst.api.get(`/repos?creator_uuid=${alice.uuid}`, bob.token);
    expect(names(byAlice.body)).toEqual(["Alice Internal", "Alice Public"]);
    const search = await inst.api.get("/repos?search=PUBL", admin.token);
    expect(names(search.body)).toEqual(["Alice Public"]);
    // LIKE wildcards in the search are literal characters.
    expect((await inst.api.get("/repos?search=%25", admin.token)).body.count).toBe(0);
    expect((await inst.api.get("/repos?search=_", admin.token)).body.count).toBe(0);

    const page1 = await inst.api.get("/repos?limit=2&offset=0", admin.token);
    const page2 = await inst.api.get("/repos?limit=2&offset=2", admin.token);
    expect(page1.body.count).toBe(4);
    expect(page1.body.repos).toHaveLength(2);
    expect(page2.body.repos).toHaveLength(2);
    expect(new Set([...names(page1.body), ...names(page2.body)]).size).toBe(4);
    expect((await inst.api.get("/repos?limit=501", admin.token)).status).toBe(422);
    expect((await inst.api.get("/repos?visibility=Secret", admin.token)).status).toBe(422);
  });
});
