import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

// Real git repositories made in the test, used as clone sources via file:// URLs.

export const DEFAULT_ENV_EXAMPLE = {
  PUC_WIFI_SSID: "",
  PUC_WIFI_PASS: "",
  PEPEUNIT_URL: "",
  PU_DOMAIN: "",
};

export const DEFAULT_SCHEMA_EXAMPLE = {
  input_base_topic: [
    "update/pepeunit",
    "env_update/pepeunit",
    "schema_update/pepeunit",
    "log_sync/pepeunit",
  ],
  output_base_topic: ["state/pepeunit", "log/pepeunit"],
  input_topic: ["input/pepeunit", "relay"],
  output_topic: ["output/pepeunit", "temperature"],
};

export type FixtureRepo = {
  dir: string;
  url: string;
  git(...args: string[]): string;
  write(files: Record<string, string | Buffer>): void;
  commit(message: string, files?: Record<string, string | Buffer>): string;
  head(): string;
};

function run(cwd: string, args: string[]): string {
  return execFileSync("git", args, {
    cwd,
    env: {
      PATH: process.env.PATH,
      HOME: cwd,
      GIT_AUTHOR_NAME: "Test",
      GIT_AUTHOR_EMAIL: "test@example.test",
      GIT_COMMITTER_NAME: "Test",
      GIT_COMMITTER_EMAIL: "test@example.test",
      GIT_CONFIG_NOSYSTEM: "1",
    },
    encoding: "utf8",
  }).trim();
}

/** A working repository on branch `main` with one commit holding a valid unit template. */
export function createFixtureRepo(
  files: Record<string, string | Buffer> = {
    "env_example.json": JSON.stringify(DEFAULT_ENV_EXAMPLE, null, 2),
    "schema_example.json": JSON.stringify(DEFAULT_SCHEMA_EXAMPLE, null, 2),
    "main.py": "print('hello')\n",
  },
): FixtureRepo {
  const dir = mkdtempSync(path.join(tmpdir(), "pepeunit-fixture-"));
  run(dir, ["init", "-q", "-b", "main"]);
  const repo: FixtureRepo = {
    dir,
    url: `file://${dir}`,
    git: (...args) => run(dir, args),
    write(fs) {
      for (const [name, content] of Object.entries(fs)) {
        const p = path.join(dir, name);
        mkdirSync(path.dirname(p), { recursive: true });
        writeFileSync(p, content);
      }
    },
    commit(message, fs = {}) {
      repo.write(fs);
      run(dir, ["add", "-A"]);
      run(dir, ["commit", "-q", "--allow-empty", "-m", message]);
      return repo.head();
    },
    head: () => run(dir, ["rev-parse", "HEAD"]),
  };
  repo.commit("initial", files);
  return repo;
}
