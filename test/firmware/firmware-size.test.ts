import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { units } from "../../src/db/schema.ts";
import { API_PREFIX } from "../../src/http/app.ts";
import { createFixtureRepo, type FixtureRepo } from "../helpers/git-fixtures.ts";
import { createUser, startTestInstance, type TestInstance } from "../helpers/instance.ts";
import { createRepo } from "../helpers/repos.ts";
import { parseTar } from "./archive-readers.ts";

// A file of zeros packs to almost nothing, so the clone limit lets it in; the firmware
// limit (unpacked size of the trimmed tree) keeps it from ever being built in memory.

const MB = 1024 * 1024;

describe("firmware size limit (PEPEUNIT_MAX_FIRMWARE_SIZE_MB)", () => {
  let inst: TestInstance;
  let owner: { uuid: string; token: string };
  let fixture: FixtureRepo;
  let repoUuid: string;
  let small: string;
  let big: string;
  let unitUuid: string;

  async function download(kind: string, uuid: string) {
    const res = await fetch(`${inst.httpUrl}${API_PREFIX}/units/firmware/${kind}/${uuid}`, {
      headers: { "x-auth-token": owner.token },
    });
    return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
  }

  beforeAll(async () => {
    inst = await startTestInstance({ PEPEUNIT_MAX_FIRMWARE_SIZE_MB: "1" });
    owner = await createUser(inst.api, "fwsize");
    fixture = createFixtureRepo();
    small = fixture.head();
    big = fixture.commit("zeros", { "data/zeros.bin": Buffer.alloc(2 * MB) });
    const repo = await createRepo(inst.api, owner.token, fixture);
    repoUuid = repo.uuid;
    const unit = await inst.api.post(
      "/units",
      { repo_uuid: repoUuid, name: "fw-size", follow_repo: false, branch: "main", commit: small },
      owner.token,
    );
    expect(unit.status).toBe(201);
    unitUuid = unit.body.uuid;
  });
  afterAll(async () => {
    await inst?.close();
  });

  it("refuses a version over the limit when a unit is moved onto it", async () => {
    const res = await inst.api.patch(
      `/units/${unitUuid}`,
      { follow_repo: false, branch: "main", commit: big },
      owner.token,
    );
    expect(res.status).toBe(422);
    expect(res.body.detail).toContain(`version ${big.slice(0, 8)} is 2.0 MB unpacked`);
    expect(res.body.detail).toContain("limit of 1.0 MB (PEPEUNIT_MAX_FIRMWARE_SIZE_MB)");
  });

  it("refuses to build an archive over the limit, before reading the tree", async () => {
    // No API moves a unit onto such a version (the limit may have been lowered since).
    await inst.deps.database.db.update(units).set({ commit: big }).where(eq(units.uuid, unitUuid));
    for (const kind of ["tgz", "tar", "zip"]) {
      const res = await download(kind, unitUuid);
      expect(res.status, kind).toBe(422);
      expect(JSON.parse(res.body.toString()).detail, kind).toContain(
        "PEPEUNIT_MAX_FIRMWARE_SIZE_MB",
      );
    }
    await inst.deps.database.db
      .update(units)
      .set({ commit: small })
      .where(eq(units.uuid, unitUuid));
  });

  it("counts only what goes to the device: a .pepeignore'd file is not firmware", async () => {
    const ignored = fixture.commit("ignore the zeros", { ".pepeignore": "data/\n" });
    await inst.api.post(`/repos/${repoUuid}/sync`, undefined, owner.token);
    const res = await inst.api.patch(
      `/units/${unitUuid}`,
      { follow_repo: false, branch: "main", commit: ignored },
      owner.token,
    );
    expect(res.status).toBe(200);
    const tar = await download("tar", unitUuid);
    expect(tar.status).toBe(200);
    expect(tar.headers.get("content-length")).toBe(String(tar.body.length));
    expect(parseTar(tar.body).headers.map((h) => h.name)).not.toContain("./data/zeros.bin");
  });
});
