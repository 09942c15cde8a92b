import { randomBytes } from "node:crypto";
import { readdir } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFixtureRepo } from "../helpers/git-fixtures.ts";
import { createUser, startTestInstance, type TestInstance } from "../helpers/instance.ts";

describe("repos: size limit", () => {
  let inst: TestInstance;
  let token: string;

  beforeAll(async () => {
    inst = await startTestInstance({ PEPEUNIT_MAX_REPO_SIZE_MB: "1" });
    token = (await createUser(inst.api, "admin")).token;
  });
  afterAll(async () => {
    await inst?.close();
  });

  it("refuses a repository over the limit and removes the partial clone", async () => {
    // Random bytes do not compress: the pack stays about as large as the data.
    const big = createFixtureRepo();
    big.commit("blobs", {
      "data/a.bin": randomBytes(1024 * 1024),
      "data/b.bin": randomBytes(1024 * 1024),
      "data/c.bin": randomBytes(1024 * 1024),
    });
    const res = await inst.api.post("/repos", { name: "big", url: big.url }, token);
    expect(res.status).toBe(422);
    expect(res.body.detail).toContain("larger than the limit of 1 MB");
    expect(await readdir(path.join(inst.dir, "repositories")).catch(() => [])).toEqual([]);
    expect((await inst.api.get("/repos", token)).body.count).toBe(0);
  });

  it("accepts a small repository under the same limit", async () => {
    const small = createFixtureRepo();
    const res = await inst.api.post("/repos", { name: "small", url: small.url }, token);
    expect(res.status).toBe(201);
    expect(await readdir(path.join(inst.dir, "repositories"))).toEqual([res.body.uuid]);
  });
});
