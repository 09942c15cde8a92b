import { execFile } from "node:child_process";
import { cp, mkdir, readdir, rm, stat } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import type { Config } from "../config.ts";
import { type BundledExample, localRepoDir } from "./standard-source.ts";

// Keeps the instance-made git repository of a bundled example in step with the copy
// shipped in this build: its working tree is replaced by the bundled files and a
// commit is made when anything differs. A newer build thus becomes a new commit on
// `main`, which the repo's sync turns into an update for the units following it.

const run = promisify(execFile);

export const STANDARD_BRANCH = "main";

function gitEnv(config: Pick<Config, "childPath">, dir: string): Record<string, string> {
  return {
    PATH: config.childPath,
    HOME: dir,
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_CONFIG_GLOBAL: "/dev/null",
    GIT_TERMINAL_PROMPT: "0",
    GIT_AUTHOR_NAME: "Pepeunit",
    GIT_AUTHOR_EMAIL: "pepeunit@localhost",
    GIT_COMMITTER_NAME: "Pepeunit",
    GIT_COMMITTER_EMAIL: "pepeunit@localhost",
  };
}

/** Writes the bundled files into the local repository and commits; returns the head commit. */
export async function refreshLocalRepo(
  config: Pick<Config, "dataDir" | "childPath">,
  example: BundledExample,
): Promise<string> {
  const dir = localRepoDir(config, example.name);
  const env = gitEnv(config, dir);
  const git = async (...args: string[]) =>
    (await run("git", args, { cwd: dir, env, maxBuffer: 16 * 1024 * 1024 })).stdout.trim();

  const initialized = await stat(path.join(dir, ".git")).then(
    () => true,
    () => false,
  );
  if (!initialized) {
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    await git("init", "-q", "-b", STANDARD_BRANCH);
  }
  // The bundled copy is the whole truth: files removed from it go away here too.
  for (const entry of await readdir(dir)) {
    if (entry !== ".git") await rm(path.join(dir, entry), { recursive: true, force: true });
  }
  await cp(example.dir, dir, { recursive: true });
  await git("add", "-A");
  if (await git("status", "--porcelain")) {
    await git("commit", "-q", "-m", `Pepeunit standard unit ${example.name}`);
  }
  return git("rev-parse", "HEAD");
}
