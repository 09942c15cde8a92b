import { type ChildProcess, spawn } from "node:child_process";
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { createFixtureRepo } from "../helpers/git-fixtures.ts";
import { createApiClient, createUser } from "../helpers/instance.ts";
import { freePort } from "../helpers/ports.ts";
import { createRepo } from "../helpers/repos.ts";

// The real `npm start` process (src/main.ts) with PGlite on disk: the database (its
// WAL holds e-mails, password hashes and values), the secrets and the clones must be
// the instance user's alone, including what an older version left too open.

const MAIN = fileURLToPath(new URL("../../src/main.ts", import.meta.url));

/** Paths under `dir` (itself included) that group or other may read, write or enter. */
function tooOpen(dir: string): string[] {
  const all = [dir, ...readdirSync(dir, { recursive: true }).map((p) => path.join(dir, String(p)))];
  return all.filter((p) => {
    const st = lstatSync(p);
    return !st.isSymbolicLink() && (st.mode & 0o077) !== 0;
  });
}

describe("file modes of the data and repositories directories", () => {
  const base = mkdtempSync(path.join(tmpdir(), "pepeunit-modes-"));
  let child: ChildProcess | undefined;

  afterAll(async () => {
    if (child && child.exitCode === null) {
      child.kill("SIGKILL");
      await new Promise((resolve) => child?.once("exit", resolve));
    }
    rmSync(base, { recursive: true, force: true });
  });

  it("keeps every file private, and tightens what was left open", async () => {
    const data = path.join(base, "data");
    const repositories = path.join(base, "repositories");
    // An older install, made under umask 022/000.
    mkdirSync(path.join(data, "old"), { recursive: true });
    writeFileSync(path.join(data, "old", "notes.txt"), "x");
    chmodSync(path.join(data, "old", "notes.txt"), 0o666);
    chmodSync(path.join(data, "old"), 0o777);
    chmodSync(data, 0o755);
    mkdirSync(repositories, { mode: 0o755 });
    chmodSync(repositories, 0o755);
    expect(tooOpen(data).length).toBeGreaterThan(0);

    child = spawn(process.execPath, [MAIN], {
      env: {
        PATH: process.env.PATH,
        PEPEUNIT_DATA_DIR: data,
        PEPEUNIT_REPOSITORIES_DIR: repositories,
        PEPEUNIT_HTTP_HOST: "127.0.0.1",
        PEPEUNIT_HTTP_PORT: "0",
        PEPEUNIT_MQTT_BIND_HOST: "127.0.0.1",
        PEPEUNIT_MQTT_PORT: String(await freePort()),
        PEPEUNIT_GIT_ALLOW_LOCAL: "true",
        PEPEUNIT_LOG_LEVEL: "info",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const httpUrl = await new Promise<string>((resolve, reject) => {
      let out = "";
      child?.stdout?.on("data", (d: Buffer) => {
        out += d.toString();
        const m = /"httpUrl":"([^"]+)"/.exec(out);
        if (m?.[1]) resolve(m[1]);
      });
      child?.once("exit", (code) => reject(new Error(`exited ${code}: ${stderr}`)));
    });

    const api = createApiClient(httpUrl);
    const admin = await createUser(api, "modes");
    await createRepo(api, admin.token, createFixtureRepo());

    child.kill("SIGTERM");
    await new Promise((resolve) => child?.once("exit", resolve));
    expect(readdirSync(path.join(data, "pglite")).length).toBeGreaterThan(0);
    expect(readdirSync(repositories)).toHaveLength(1);
    expect(tooOpen(data)).toEqual([]);
    expect(tooOpen(repositories)).toEqual([]);
    // Opening PGlite on disk and running every migration takes long on a busy machine.
  }, 180_000);
});
