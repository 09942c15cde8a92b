import type { GitStore } from "../git/git-store.ts";
import { HttpError } from "../http/errors.ts";
import { firmwarePathFilter } from "./firmware-tree.ts";

// A repository's packed size says little about its firmware: a file of zeros packs
// to almost nothing and unpacks to anything. So the unpacked size of the trimmed
// tree is summed from git's tree listing (no blob is read) and checked before an
// archive is built or a version is taken, which bounds what a build holds in memory.

type SizeGit = Pick<GitStore, "listTree" | "readFile">;

/** A version whose firmware is over PEPEUNIT_MAX_FIRMWARE_SIZE_MB: a 422 wherever it surfaces. */
export class FirmwareTooLargeError extends HttpError {
  constructor(commit: string, bytes: number, maxBytes: number) {
    super(
      422,
      `the firmware of version ${commit.slice(0, 8)} is ${mb(bytes)} MB unpacked, over this instance's limit of ${mb(maxBytes)} MB (PEPEUNIT_MAX_FIRMWARE_SIZE_MB); leave large files out with .pepeignore`,
    );
  }
}

function mb(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(bytes < 10 * 1024 * 1024 ? 1 : 0);
}

/** What goes to a device from a commit: the path filter and the bytes of the files it keeps. */
export async function firmwareSelection(
  git: SizeGit,
  repoUuid: string,
  commit: string,
): Promise<{ keep: (path: string) => boolean; bytes: number }> {
  const entries = await git.listTree(repoUuid, commit);
  const hasIgnore = entries.some((e) => e.path === ".pepeignore");
  const pepeignore = hasIgnore ? await git.readFile(repoUuid, commit, ".pepeignore") : null;
  const keep = firmwarePathFilter(pepeignore?.toString("utf8"));
  let bytes = 0;
  for (const e of entries) if (keep(e.path)) bytes += e.size;
  return { keep, bytes };
}

/**
 * The path filter of the commit's firmware; throws FirmwareTooLargeError when the
 * files it keeps (env.json/schema.json aside) are over `maxBytes`.
 */
export async function checkFirmwareSize(
  git: SizeGit,
  repoUuid: string,
  commit: string,
  maxBytes: number,
): Promise<(path: string) => boolean> {
  const { keep, bytes } = await firmwareSelection(git, repoUuid, commit);
  if (bytes > maxBytes) throw new FirmwareTooLargeError(commit, bytes, maxBytes);
  return keep;
}
