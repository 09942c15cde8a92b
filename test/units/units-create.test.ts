import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createFixtureRepo,
  DEFAULT_ENV_EXAMPLE,
  DEFAULT_SCHEMA_EXAMPLE,
  type FixtureRepo,
} from "../helpers/git-fixtures.ts";
import { createUser, startTestInstance, type TestInstance } from "../helpers/instance.ts";
import { createRepo } from "../helpers/repos.ts";
import { createUnit, nodeOf } from "../helpers/units.ts";

describe("unit creation", () => {
  let inst: TestInstance;
  let admin: { uuid: string; token: string };
  let bob: { uuid: string; token: string };
  let fixture: FixtureRepo;
  let repo: { uuid: string };
  let firstCommit: string;
  let secondCommit: string;

  beforeAll(async () => {
    inst = await startTestInstance();
    admin = await createUser(inst.api, "admin");
    bob = await createUser(inst.api, "bob");
    fixture = createFixtureRepo();
    firstCommit = fixture.head();
    fixture.git("tag", "v1.0.0");
    secondCommit = fixture.commit("second", { "main.py": "print('v2')\n" });
    // A branch that forks off the first commit: its head is not on main.
    fixture.git("checkout", "-q", "-b", "side", firstCommit);
    fixture.commit("side work", { "side.py": "x = 1\n" });
    fixture.git("checkout", "-q", "main");
    repo = await createRepo(inst.api, bob.token, fixture);
  });
  afterAll(async () => {
    await inst?.close();
  });

  it("creates a unit following the repo's default branch, with one variable per topic", async () => {
    const res = await inst.api.post(
      "/units",
      { repo_uuid: repo.uuid, name: "greenhouse-1", visibility: "Public" },
      bob.token,
    );
    expect(res.status).toBe(201);
    const u = res.body;
    expect(u).toMatchObject({
      name: "greenhouse-1",
      visibility: "Public",
      repo_uuid: repo.uuid,
      creator_uuid: bob.uuid,
      follow_repo: true,
      branch: "main",
      tag: null,
      commit: secondCommit,
      last_state: null,
      last_seen_datetime: null,
      current_commit: null,
      update_status: null,
      update_error: null,
    });
    expect(new Date(u.create_datetime).toISOString()).toBe(u.create_datetime);
    const names = u.unit_nodes
      .map((n: { type: string; topic_name: string }) => `${n.type}:${n.topic_name}`)
      .sort();
    expect(names).toEqual(
      [
        ...DEFAULT_SCHEMA_EXAMPLE.input_topic.map((t) => `Input:${t}`),
        ...DEFAULT_SCHEMA_EXAMPLE.output_topic.map((t) => `Output:${t}`),
      ].sort(),
    );
    const relay = nodeOf(u, "Input", "relay");
    expect(relay).toMatchObject({
      visibility: "Public",
      is_rewritable_input: false,
      unit_uuid: u.uuid,
      topic: `localhost:8080/${relay.uuid}`,
    });
    const out = nodeOf(u, "Output", "output/pepeunit");
    expect(out.topic).toBe(`localhost:8080/${out.uuid}/pepeunit`);

    const got = await inst.api.get(`/units/${u.uuid}`);
    expect(got.status).toBe(200);
    expect(got.body.unit_nodes).toHaveLength(4);
  });

  it("creates a unit pinned to branch + tag and to branch + commit", async () => {
    const byTag = await createUnit(inst.api, bob.token, repo.uuid, {
      follow_repo: false,
      branch: "main",
      tag: "v1.0.0",
    });
    expect(byTag).toMatchObject({
      follow_repo: false,
      branch: "main",
      tag: "v1.0.0",
      commit: firstCommit,
    });
    const byCommit = await createUnit(inst.api, bob.token, repo.uuid, {
      follow_repo: false,
      branch: "main",
      commit: firstCommit.slice(0, 10),
    });
    expect(byCommit).toMatchObject({
      follow_repo: false,
      branch: "main",
      tag: null,
      commit: firstCommit,
    });
    const target = await inst.api.get(`/units/get_target_version/${byTag.uuid}`, bob.token);
    expect(target.status).toBe(200);
    expect(target.body).toEqual({ commit: firstCommit, tag: "v1.0.0" });
  });

  it("refuses versions that do not resolve, with a clear 422", async () => {
    const cases: Array<[object, RegExp]> = [
      [{ follow_repo: false }, /branch and a commit or a tag/],
      [{ follow_repo: false, branch: "main" }, /branch and a commit or a tag/],
      [{ follow_repo: false, branch: "nope", commit: firstCommit }, /branch nope does not exist/],
      [{ follow_repo: false, branch: "main", tag: "v9" }, /tag v9 does not exist/],
      [{ follow_repo: false, branch: "main", commit: "deadbeefdeadbeef" }, /does not exist/],
      [
        { follow_repo: false, branch: "main", commit: fixture.git("rev-parse", "side") },
        /is not on branch main/,
      ],
      [
        { follow_repo: false, branch: "main", tag: "v1.0.0", commit: secondCommit },
        /does not point at/,
      ],
      [{ follow_repo: true, branch: "main" }, /follow_repo/],
    ];
    for (const [body, detail] of cases) {
      const res = await inst.api.post(
        "/units",
        { repo_uuid: repo.uuid, name: "bad-version", ...body },
        bob.token,
      );
      expect(res.status, JSON.stringify(body)).toBe(422);
      expect(String(res.body.detail), JSON.stringify(body)).toMatch(detail);
    }
  });

  it("refuses a repo without default branch, an invalid template and a bad name", async () => {
    const bare = await inst.api.post(
      "/repos",
      { name: "no-default", url: createFixtureRepo().url, visibility: "Public" },
      bob.token,
    );
    expect(bare.status).toBe(201);
    const noDefault = await inst.api.post(
      "/units",
      { repo_uuid: bare.body.uuid, name: "nd" },
      bob.token,
    );
    expect(noDefault.status).toBe(422);
    expect(noDefault.body.detail).toMatch(/default_branch/);

    const broken = createFixtureRepo({
      "env_example.json": JSON.stringify(DEFAULT_ENV_EXAMPLE),
      "schema_example.json": JSON.stringify({
        input_base_topic: [],
        output_base_topic: [],
        input_topic: "x",
      }),
    });
    const brokenRepo = await createRepo(inst.api, bob.token, broken);
    const badTemplate = await inst.api.post(
      "/units",
      { repo_uuid: brokenRepo.uuid, name: "bt" },
      bob.token,
    );
    expect(badTemplate.status).toBe(422);
    expect(badTemplate.body.detail).toMatch(/schema_example\.json/);

    for (const name of ["", "has space", "x".repeat(65), "sl/ash"]) {
      const res = await inst.api.post("/units", { repo_uuid: repo.uuid, name }, bob.token);
      expect(res.status, name).toBe(422);
    }
  });

  it("refuses a unit more open than its repo and defaults to the repo's visibility", async () => {
    const internalRepo = await createRepo(inst.api, bob.token, fixture, { visibility: "Internal" });
    const tooOpen = await inst.api.post(
      "/units",
      { repo_uuid: internalRepo.uuid, name: "too-open", visibility: "Public" },
      bob.token,
    );
    expect(tooOpen.status).toBe(422);
    expect(tooOpen.body.detail).toMatch(/more open than its repo/);
    const dflt = await createUnit(inst.api, bob.token, internalRepo.uuid, {
      visibility: undefined,
    });
    expect(dflt.visibility).toBe("Internal");
    expect(dflt.unit_nodes.every((n: { visibility: string }) => n.visibility === "Internal")).toBe(
      true,
    );
  });

  it("answers 409 on a duplicate name", async () => {
    await createUnit(inst.api, bob.token, repo.uuid, { name: "twin" });
    const dup = await inst.api.post("/units", { repo_uuid: repo.uuid, name: "twin" }, admin.token);
    expect(dup.status).toBe(409);
    expect(dup.body.detail).toBe("this unit name is not available");
    // Two creations racing past the name check: the unique index decides, still a 409.
    const raced = await Promise.all(
      [bob, admin].map((u) =>
        inst.api.post("/units", { repo_uuid: repo.uuid, name: "racer" }, u.token),
      ),
    );
    expect(raced.map((r) => r.status).sort()).toEqual([201, 409]);
  });

  it("needs a user who can see the repo", async () => {
    const anon = await inst.api.post("/units", { repo_uuid: repo.uuid, name: "anon" });
    expect(anon.status).toBe(401);
    const privateRepo = await createRepo(inst.api, bob.token, fixture, { visibility: "Private" });
    const carol = await createUser(inst.api, "carol");
    const hidden = await inst.api.post(
      "/units",
      { repo_uuid: privateRepo.uuid, name: "hidden" },
      carol.token,
    );
    expect(hidden.status).toBe(404);
    const own = await createUnit(inst.api, bob.token, privateRepo.uuid, { visibility: "Private" });
    expect(own.visibility).toBe("Private");
    const byAdmin = await createUnit(inst.api, admin.token, privateRepo.uuid, {
      visibility: "Private",
    });
    expect(byAdmin.creator_uuid).toBe(admin.uuid);
  });
});
