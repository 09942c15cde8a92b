import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import type { Config } from "../config.ts";
import { createGitStore, type GitStore } from "../git/git-store.ts";
import { projectPath } from "../project-root.ts";

// The standard unit repositories bundled with the instance (examples/units/<name>/).
// The instance turns each into a local git repository under its data dir and clones
// that like any repo. Those clones must work even where local sources are refused
// (PEPEUNIT_GIT_ALLOW_LOCAL=false): the exception is exact — only the file:// URL of
// a directory the instance itself made for a bundled example — so it opens nothing
// a user could point at.

export const BUNDLED_DIR = projectPath("examples/units/");

const NAME_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;

export type BundledExample = {
  name: string;
  dir: string;
  /** The README's first heading. */
  title: string;
  /** The README's first paragraph after that heading. */
  description: string;
};

function readmeSummary(dir: string, name: string): { title: string; description: string } {
  const file = path.join(dir, "README.md");
  const lines = existsSync(file) ? readFileSync(file, "utf8").split("\n") : [];
  const heading = lines.findIndex((l) => l.startsWith("# "));
  const title = heading >= 0 ? (lines[heading] ?? "").slice(2).trim() : name;
  const rest = lines.slice(heading + 1);
  const start = rest.findIndex((l) => l.trim() !== "");
  const paragraph: string[] = [];
  for (const line of start >= 0 ? rest.slice(start) : []) {
    if (!line.trim() || line.startsWith("#")) break;
    paragraph.push(line.trim());
  }
  return { title, description: paragraph.join(" ") };
}

/** The examples shipped with this build, by name. */
export function bundledExamples(): BundledExample[] {
  if (!existsSync(BUNDLED_DIR)) return [];
  return readdirSync(BUNDLED_DIR, { withFileTypes: true })
    .filter((e) => e.isDirectory() && NAME_RE.test(e.name))
    .map((e) => {
      const dir = path.join(BUNDLED_DIR, e.name);
      return { name: e.name, dir, ...readmeSummary(dir, e.name) };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Where the instance keeps the local git repository of a bundled example. */
export function localRepoDir(config: Pick<Config, "dataDir">, name: string): string {
  if (!NAME_RE.test(name)) throw new Error(`bad standard repo name ${name}`);
  return path.join(config.dataDir, "standard-repos", name);
}

/** The clone URL stored on the repo row of a standard repo. */
export function localRepoUrl(config: Pick<Config, "dataDir">, name: string): string {
  return pathToFileURL(localRepoDir(config, name)).href;
}

const trustedStores = new WeakMap<Config, GitStore>();

/**
 * When `url` is exactly the instance-made repository of a bundled example: the URL
 * and a git store allowed to read it (same clones directory). Otherwise null, and the
 * usual URL checks apply.
 */
export function trustedLocalSource(
  config: Config,
  url: string,
): { url: string; git: GitStore } | null {
  const match = bundledExamples().some((e) => localRepoUrl(config, e.name) === url);
  if (!match) return null;
  let git = trustedStores.get(config);
  if (!git) {
    git = createGitStore({
      repositoriesDir: config.repositoriesDir,
      allowLocal: true,
      childPath: config.childPath,
    });
    trustedStores.set(config, git);
  }
  return { url, git };
}
