import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { FirmwareSource } from "../../src/firmware/archive-builder.ts";
import { createGitStore, type GitStore } from "../../src/git/git-store.ts";
import {
  createFixtureRepo,
  DEFAULT_ENV_EXAMPLE,
  DEFAULT_SCHEMA_EXAMPLE,
  type FixtureRepo,
} from "../helpers/git-fixtures.ts";

// Versions for builder-level tests: real fixture repos cloned by the real git store.

export const TEMPLATE = {
  "env_example.json": JSON.stringify(DEFAULT_ENV_EXAMPLE, null, 2),
  "schema_example.json": JSON.stringify(DEFAULT_SCHEMA_EXAMPLE, null, 2),
};
export const ENV = { PU_DOMAIN: "localhost:8080", PUC_WIFI_SSID: "home", PU_MQTT_PORT: 1883 };
export const SCHEMA = {
  input_base_topic: { "update/pepeunit": ["d/input_base_topic/u/update/pepeunit"] },
};

export type TestVersion = FirmwareSource & { fixture: FixtureRepo };

export type VersionFactory = {
  git: GitStore;
  /** A fixture repo with the template plus `files` (after `prepare`), cloned into the store. */
  version(
    files: Record<string, string | Buffer>,
    prepare?: (fixture: FixtureRepo) => void,
  ): Promise<TestVersion>;
  cleanup(): void;
};

export function createVersionFactory(): VersionFactory {
  const dir = mkdtempSync(path.join(tmpdir(), "pepeunit-firmware-"));
  const fixtures: FixtureRepo[] = [];
  const git = createGitStore({
    repositoriesDir: path.join(dir, "repositories"),
    allowLocal: true,
    childPath: process.env.PATH ?? "/usr/bin:/bin",
  });
  return {
    git,
    async version(files, prepare) {
      const fixture = createFixtureRepo({ ...TEMPLATE, ...files });
      fixtures.push(fixture);
      if (prepare) {
        prepare(fixture);
        fixture.commit("prepared");
      }
      const repoUuid = randomUUID();
      await git.clone(repoUuid, fixture.url, undefined, 100 * 1024 * 1024);
      return { repoUuid, commit: fixture.head(), env: ENV, schema: SCHEMA, fixture };
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
      for (const f of fixtures) rmSync(f.dir, { recursive: true, force: true });
    },
  };
}
