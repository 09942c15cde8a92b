import ignore from "ignore";
import type { TreeFile } from "../git/git-store.ts";
import { unprocessable } from "../http/errors.ts";

// Which files of a repository version go to a device (device-protocol §6).
// The result depends only on the commit, so it is computed once per
// (repo, commit) and cached; the per-unit env.json/schema.json are added later.

/** A file of the firmware tree: a normalized relative path and a tar-ready mode. */
export type FirmwareFile = { path: string; mode: 0o644 | 0o755; content: Buffer };

/** Generated per unit; committed copies are dropped so the device never sees stale ones. */
export const GENERATED_FILES = ["env.json", "schema.json"] as const;
const DROPPED_ROOT_FILES = new Set([
  "env_example.json",
  "schema_example.json",
  ".pepeignore",
  ...GENERATED_FILES,
]);
const DROPPED_ROOT_DIRS = new Set(["example", "examples"]);

/**
 * Defence in depth: git cannot store such paths, but a tree that somehow has one
 * must never make a device write outside its firmware folder.
 */
function checkPath(p: string): void {
  if (
    p === "" ||
    p.includes("\0") ||
    p.startsWith("/") ||
    p.includes("\\") ||
    p.split("/").some((seg) => seg === ".." || seg === "." || seg === "")
  ) {
    throw unprocessable(`firmware path ${JSON.stringify(p)} is not a safe relative path`);
  }
}

function isExcluded(p: string): boolean {
  const segments = p.split("/");
  if (segments.includes(".git")) return true;
  if (segments.length === 1) return DROPPED_ROOT_FILES.has(p);
  return DROPPED_ROOT_DIRS.has(segments[0] ?? "");
}

/** Byte order of the UTF-8 paths: the same on every machine and locale. */
function comparePaths(a: FirmwareFile, b: FirmwareFile): number {
  return Buffer.compare(Buffer.from(a.path), Buffer.from(b.path));
}

/**
 * Whether a path of the repository tree goes to the device: not a template, an
 * example, a committed env.json/schema.json, `.git`, nor matched by the root
 * `.pepeignore` (gitignore syntax, given as its text).
 */
export function firmwarePathFilter(pepeignore: string | undefined): (path: string) => boolean {
  // Case-sensitive like git on Linux, where these repositories are built.
  const ig = ignore({ ignorecase: false });
  if (pepeignore !== undefined) ig.add(pepeignore);
  return (p) => {
    checkPath(p);
    return !isExcluded(p) && !ig.ignores(p);
  };
}

/** The repository tree at a commit minus what firmwarePathFilter drops; sorted by path. */
export function trimFirmwareTree(tree: TreeFile[]): FirmwareFile[] {
  for (const f of tree) checkPath(f.path);
  const pepeignore = tree.find((f) => f.path === ".pepeignore");
  const keep = firmwarePathFilter(pepeignore?.content.toString("utf8"));
  const out: FirmwareFile[] = [];
  for (const f of tree) {
    if (!keep(f.path)) continue;
    // Only the executable bit is kept: devices need no other permission detail.
    out.push({ path: f.path, mode: f.mode & 0o111 ? 0o755 : 0o644, content: f.content });
  }
  return out.sort(comparePaths);
}

/** env.json / schema.json as the devices' clients expect them: 4-space indented JSON. */
export function generatedFiles(env: unknown, schema: unknown): FirmwareFile[] {
  return [
    { path: "env.json", mode: 0o644, content: Buffer.from(JSON.stringify(env, null, 4)) },
    { path: "schema.json", mode: 0o644, content: Buffer.from(JSON.stringify(schema, null, 4)) },
  ];
}
