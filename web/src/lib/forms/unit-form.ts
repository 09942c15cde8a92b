import type { FieldErrors } from "../api-errors.ts";
import { COMMIT_RE, UNIT_NAME_RE, type Visibility, visibilitiesUpTo } from "./validation.ts";

// The unit form (POST /units, and the version part of PATCH /units/{uuid}).
// Following the repo: the unit runs the repo's default branch head. Pinned:
// a branch plus either a tag or a commit, picked from the repo's real versions.

export type Ref = { name: string; commit: string };
export type RepoVersions = { branches: Ref[]; tags: Ref[] };

export type VersionValues = {
  follow_repo: boolean;
  branch: string;
  pin: "tag" | "commit";
  tag: string;
  commit: string;
};

export type UnitFormValues = VersionValues & { name: string; visibility: Visibility };

export function emptyUnitForm(repo: {
  visibility: Visibility;
  default_branch: string | null;
}): UnitFormValues {
  return {
    name: "",
    visibility: repo.visibility,
    follow_repo: true,
    branch: repo.default_branch ?? "",
    pin: "commit",
    tag: "",
    commit: "",
  };
}

/** Which unit visibilities the repo allows. */
export function unitVisibilities(repoVisibility: Visibility): Visibility[] {
  return visibilitiesUpTo(repoVisibility);
}

/** The commit a followed branch points at, for the read-only display. */
export function branchHead(versions: RepoVersions | null, branch: string | null): string | null {
  return versions?.branches.find((b) => b.name === branch)?.commit ?? null;
}

/** Commits offered for a pinned branch: its head first, then the tags' commits, deduplicated. */
export function commitChoices(versions: RepoVersions | null, branch: string): Ref[] {
  if (!versions) return [];
  const out: Ref[] = [];
  const seen = new Set<string>();
  const head = versions.branches.find((b) => b.name === branch);
  if (head) {
    out.push({ name: `${branch} (head)`, commit: head.commit });
    seen.add(head.commit);
  }
  for (const t of versions.tags) {
    if (seen.has(t.commit)) continue;
    seen.add(t.commit);
    out.push({ name: `tag ${t.name}`, commit: t.commit });
  }
  return out;
}

export function validateVersion(v: VersionValues, repoDefaultBranch: string | null): FieldErrors {
  const e: FieldErrors = {};
  if (v.follow_repo) {
    if (!repoDefaultBranch)
      e.follow_repo = "The repository has no default branch yet: set one on the repository first.";
    return e;
  }
  if (!v.branch) e.branch = "Choose a branch.";
  if (v.pin === "tag" && !v.tag) e.tag = "Choose a tag.";
  if (v.pin === "commit" && !COMMIT_RE.test(v.commit.trim()))
    e.commit = "Choose a commit (7–40 hexadecimal characters).";
  return e;
}

export function validateUnitForm(
  v: UnitFormValues,
  repo: { visibility: Visibility; default_branch: string | null },
): FieldErrors {
  const e: FieldErrors = {};
  if (!UNIT_NAME_RE.test(v.name.trim()))
    e.name = "1–64 characters: letters, digits, dot, dash or underscore (unique on the instance).";
  if (!unitVisibilities(repo.visibility).includes(v.visibility))
    e.visibility = `A unit cannot be more open than its repository (${repo.visibility}).`;
  return { ...e, ...validateVersion(v, repo.default_branch) };
}

export type VersionPayload = {
  follow_repo: boolean;
  branch?: string;
  tag?: string;
  commit?: string;
};

export function versionPayload(v: VersionValues): VersionPayload {
  if (v.follow_repo) return { follow_repo: true };
  return v.pin === "tag"
    ? { follow_repo: false, branch: v.branch, tag: v.tag }
    : { follow_repo: false, branch: v.branch, commit: v.commit.trim().toLowerCase() };
}

export function createUnitPayload(repoUuid: string, v: UnitFormValues) {
  return {
    repo_uuid: repoUuid,
    name: v.name.trim(),
    visibility: v.visibility,
    ...versionPayload(v),
  };
}

/** Version form values describing a unit's current version. */
export function versionFormFrom(unit: {
  follow_repo: boolean;
  branch: string;
  tag: string | null;
  commit: string;
}): VersionValues {
  return {
    follow_repo: unit.follow_repo,
    branch: unit.branch,
    pin: unit.tag ? "tag" : "commit",
    tag: unit.tag ?? "",
    commit: unit.commit,
  };
}
