import { describe, expect, it } from "vitest";
import {
  branchHead,
  commitChoices,
  createUnitPayload,
  emptyUnitForm,
  unitVisibilities,
  validateUnitForm,
  versionFormFrom,
  versionPayload,
} from "../../web/src/lib/forms/unit-form.ts";

// The unit form: follow the repo, or pin a branch + tag/commit picked from
// the repo's real versions; and the payload POST /units receives.

const versions = {
  branches: [
    { name: "main", commit: "a".repeat(40) },
    { name: "dev", commit: "b".repeat(40) },
  ],
  tags: [
    { name: "v1", commit: "c".repeat(40) },
    { name: "v1-again", commit: "a".repeat(40) },
  ],
};
const repo = { visibility: "Internal" as const, default_branch: "main" };

describe("unit form", () => {
  it("never offers a visibility more open than the repo's", () => {
    expect(unitVisibilities("Public")).toEqual(["Public", "Internal", "Private"]);
    expect(unitVisibilities("Internal")).toEqual(["Internal", "Private"]);
    expect(unitVisibilities("Private")).toEqual(["Private"]);
    const v = { ...emptyUnitForm(repo), name: "u1", visibility: "Public" as const };
    expect(validateUnitForm(v, repo).visibility).toMatch(/more open/);
  });

  it("follows the repo by default and shows its branch head", () => {
    const v = emptyUnitForm(repo);
    expect(v).toMatchObject({ follow_repo: true, branch: "main", visibility: "Internal" });
    expect(branchHead(versions, "main")).toBe("a".repeat(40));
    expect(validateUnitForm({ ...v, name: "ok-name" }, repo)).toEqual({});
    expect(
      validateUnitForm({ ...v, name: "ok" }, { ...repo, default_branch: null }).follow_repo,
    ).toMatch(/default branch/);
    expect(createUnitPayload("r-uuid", { ...v, name: " greenhouse-1 " })).toEqual({
      repo_uuid: "r-uuid",
      name: "greenhouse-1",
      visibility: "Internal",
      follow_repo: true,
    });
  });

  it("checks the name like the API does", () => {
    const v = emptyUnitForm(repo);
    for (const bad of ["", "has space", "x".repeat(65), "ünï"])
      expect(validateUnitForm({ ...v, name: bad }, repo).name).toBeDefined();
    for (const good of ["a", "greenhouse_1.b-2"])
      expect(validateUnitForm({ ...v, name: good }, repo).name).toBeUndefined();
  });

  it("pins a branch with a tag or a commit from the real versions", () => {
    expect(commitChoices(versions, "dev")).toEqual([
      { name: "dev (head)", commit: "b".repeat(40) },
      { name: "tag v1", commit: "c".repeat(40) },
      { name: "tag v1-again", commit: "a".repeat(40) },
    ]);
    // A tag on the head commit is not listed twice.
    expect(commitChoices(versions, "main").map((c) => c.commit)).toEqual([
      "a".repeat(40),
      "c".repeat(40),
    ]);
    const pinned = {
      ...emptyUnitForm(repo),
      name: "p",
      follow_repo: false,
      branch: "",
      commit: "",
    };
    expect(Object.keys(validateUnitForm(pinned, repo)).sort()).toEqual(["branch", "commit"]);
    expect(
      validateUnitForm({ ...pinned, branch: "dev", commit: "XYZ" }, repo).commit,
    ).toBeDefined();
    expect(versionPayload({ ...pinned, branch: "dev", commit: "B".repeat(40) })).toEqual({
      follow_repo: false,
      branch: "dev",
      commit: "b".repeat(40),
    });
    const tagged = { ...pinned, branch: "main", pin: "tag" as const, tag: "" };
    expect(validateUnitForm(tagged, repo).tag).toBeDefined();
    expect(versionPayload({ ...tagged, tag: "v1" })).toEqual({
      follow_repo: false,
      branch: "main",
      tag: "v1",
    });
  });

  it("describes a unit's current version for the update form", () => {
    expect(
      versionFormFrom({ follow_repo: false, branch: "dev", tag: "v1", commit: "c".repeat(40) }),
    ).toEqual({
      follow_repo: false,
      branch: "dev",
      pin: "tag",
      tag: "v1",
      commit: "c".repeat(40),
    });
    expect(
      versionFormFrom({ follow_repo: true, branch: "main", tag: null, commit: "a".repeat(40) }).pin,
    ).toBe("commit");
  });
});
