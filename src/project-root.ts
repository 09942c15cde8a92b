import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The checkout's top directory (where package.json is), found from this module's own
 * place: the server runs from src/ (type stripping, tests) or from its build in
 * build/src/ (`npm start`), and files it ships beside the code (migrations, web/dist,
 * examples) are at the top either way.
 */
export const PROJECT_ROOT = findRoot(path.dirname(fileURLToPath(import.meta.url)));

function findRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, "package.json"))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}

/** A file or directory shipped with the code, by its path from the top. */
export function projectPath(relative: string): string {
  return path.join(PROJECT_ROOT, relative);
}

let version: string | undefined;

/** This instance's version (package.json's), as NodeInfo, metrics and backups state it. */
export function packageVersion(): string {
  version ??= (JSON.parse(readFileSync(projectPath("package.json"), "utf8")) as { version: string })
    .version;
  return version;
}
