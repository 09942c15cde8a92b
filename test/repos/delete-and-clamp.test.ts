import { existsSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFixtureRepo, type FixtureRepo } from "../helpers/git-fixtures.ts";
import { createUser, startTestInstance, type TestInstance } from "../helpers/instance.ts";
import { createRepo } from "../helpers/repos.ts";

describe("repos: delete and the visibility of children", () => {
  let inst: TestInstance;
  let admin: { uuid: string; token: string };
  let alice: { uuid: string; token: string };
  let fixture: FixtureRepo;
  let unitCount = 0;

  beforeAll(async () => {
    inst = await startTestInstance();
    admin = await createUser(inst.api, "admin");
    alice = await createUser(inst.api, "alice");
    fixture = createFixtureRepo();
  });
  afterAll(async () => {
    await inst?.close();
  });

  async function createUnit(repoUuid: string, visibility?: string) {
    const res = await inst.api.post(
      "/units",
      { repo_uuid: repoUuid, name: `unit-${++unitCount}`, ...(visibility ? { visibility } : {}) },
      alice.token,
    );
    if (res.status !== 201)
      throw new Error(`create unit: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  }

  it("deletes a repo with its clone", async () => {
    const repo = await createRepo(inst.api, alice.token, fixture);
    const dir = path.join(inst.dir, "repositories", repo.uuid);
    expect(existsSync(dir)).toBe(true);
    const res = await inst.api.delete(`/repos/${repo.uuid}`, alice.token);
    expect(res.status).toBe(204);
    expect(existsSync(dir)).toBe(false);
    expect((await inst.api.get(`/repos/${repo.uuid}`, alice.token)).status).toBe(404);
    expect((await inst.api.delete(`/repos/${repo.uuid}`, alice.token)).status).toBe(404);
  });

  it("lets the admin delete anyone's repo", async () => {
    const repo = await createRepo(inst.api, alice.token, fixture, { visibility: "Private" });
    expect((await inst.api.delete(`/repos/${repo.uuid}`, admin.token)).status).toBe(204);
  });

  it("refuses to delete a repo while a unit uses it", async () => {
    const repo = await createRepo(inst.api, alice.token, fixture);
    const unit = await createUnit(repo.uuid);
    const res = await inst.api.delete(`/repos/${repo.uuid}`, alice.token);
    expect(res.status).toBe(409);
    expect(res.body.detail).toContain("units use this repo");
    expect(existsSync(path.join(inst.dir, "repositories", repo.uuid))).toBe(true);
    expect((await inst.api.get(`/repos/${repo.uuid}`, alice.token)).status).toBe(200);

    expect((await inst.api.delete(`/units/${unit.uuid}`, alice.token)).status).toBe(204);
    expect((await inst.api.delete(`/repos/${repo.uuid}`, alice.token)).status).toBe(204);
  });

  it("lowers units and their variables with the repo, and never raises them", async () => {
    const repo = await createRepo(inst.api, alice.token, fixture);
    const open = await createUnit(repo.uuid, "Public");
    const internal = await createUnit(repo.uuid, "Internal");
    expect(open.visibility).toBe("Public");

    const lowered = await inst.api.patch(
      `/repos/${repo.uuid}`,
      { visibility: "Internal" },
      alice.token,
    );
    expect(lowered.status).toBe(200);
    expect(lowered.body.visibility).toBe("Internal");
    const unitNow = async (uuid: string) =>
      (await inst.api.get(`/units/${uuid}`, alice.token)).body;
    const variables = async (uuid: string) => {
      const res = await inst.api.get(`/unit_nodes?unit_uuid=${uuid}`, alice.token);
      expect(res.status).toBe(200);
      return res.body.unit_nodes as Array<{ visibility: string }>;
    };
    expect((await unitNow(open.uuid)).visibility).toBe("Internal");
    expect((await unitNow(internal.uuid)).visibility).toBe("Internal");
    const openVars = await variables(open.uuid);
    expect(openVars.length).toBeGreaterThan(0);
    expect(openVars.every((n) => n.visibility === "Internal")).toBe(true);

    await inst.api.patch(`/repos/${repo.uuid}`, { visibility: "Private" }, alice.token);
    expect((await unitNow(open.uuid)).visibility).toBe("Private");
    expect((await unitNow(internal.uuid)).visibility).toBe("Private");
    expect((await variables(internal.uuid)).every((n) => n.visibility === "Private")).toBe(true);

    // Opening the repo again does not open what was closed with it.
    await inst.api.patch(`/repos/${repo.uuid}`, { visibility: "Public" }, alice.token);
    expect((await unitNow(open.uuid)).visibility).toBe("Private");
    expect((await variables(open.uuid)).every((n) => n.visibility === "Private")).toBe(true);
  });
});
