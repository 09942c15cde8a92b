import { chmodSync, lstatSync, mkdirSync, readdirSync } from "node:fs";
import path from "node:path";

// The data dir holds the database (its WAL has e-mails, password hashes and device
// values) and the instance secrets; the repositories dir holds clones of private
// repos. Nobody but the instance's own user may read either.

/** Every file and directory the process creates from now on is its user's alone. */
export function restrictNewFiles(): void {
  // Worker threads cannot change the process umask; the instance runs in the main one.
  process.umask(0o077);
}

/**
 * Creates the directories 0700 and takes the group/other bits off everything already
 * in them (left by an older version or another umask): one lstat per entry at start,
 * a chmod only where something is too open. Symlinks are not followed.
 */
export function tightenPrivateDirs(dirs: readonly string[]): void {
  for (const dir of dirs) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    tighten(dir);
    for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
      if (!entry.isSymbolicLink()) tighten(path.join(entry.parentPath, entry.name));
    }
  }
}

function tighten(p: string): void {
  const mode = lstatSync(p).mode & 0o7777;
  if (mode & 0o077) chmodSync(p, mode & ~0o077);
}
