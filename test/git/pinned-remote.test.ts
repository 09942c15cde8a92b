import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGitStore } from "../../src/git/git-store.ts";
import { checkCloneTarget, type LookupFn } from "../../src/repos/clone-url.ts";
import { createFixtureRepo, type FixtureRepo } from "../helpers/git-fixtures.ts";
import { type GitHttpServer, startGitHttpServer } from "../helpers/git-http-server.ts";

// DNS rebinding: the clone URL checker resolves the host once and git must connect
// to exactly what was checked. The host name here exists in no DNS, so git can only
// reach the server through the pinned address, never through a lookup of its own.

const HOST = "git.pinned.invalid";

describe("git connects to the address the URL check resolved", () => {
  let fixture: FixtureRepo;
  let server: GitHttpServer;
  let reposDir: string;
  const lookups: string[] = [];
  const lookup: LookupFn = async (host) => {
    lookups.push(host);
    return [{ address: "127.0.0.1", family: 4 }];
  };

  beforeAll(async () => {
    fixture = createFixtureRepo();
    server = await startGitHttpServer({
      root: path.dirname(fixture.dir),
      username: "u",
      password: "p",
    });
    reposDir = await mkdtemp(path.join(tmpdir(), "pepeunit-pinned-"));
  });
  afterAll(async () => {
    await server?.close();
    await rm(reposDir, { recursive: true, force: true });
  });

  it("clones and later fetches through the pinned address, keeping the host name", async () => {
    const url = `http://${HOST}:${server.port}/${path.basename(fixture.dir)}`;
    const git = createGitStore({
      repositoriesDir: reposDir,
      allowLocal: true,
      childPath: process.env.PATH ?? "/usr/bin:/bin",
    });
    const creds = { username: "u", password: "p" };
    const uuid = "00000000-0000-4000-8000-000000000001";

    // Without the pin git does its own lookup of a name that resolves nowhere.
    await expect(git.clone(uuid, url, creds, 1024 * 1024)).rejects.toThrow(/resolve host/i);

    const target = await checkCloneTarget(url, { allowLocal: true, lookup });
    expect(lookups).toEqual([HOST]);
    expect(target.resolve).toBe(`${HOST}:${server.port}:127.0.0.1`);
    await git.clone(uuid, target.gitUrl, creds, 1024 * 1024, target);
    expect((await git.versions(uuid)).branches).toEqual([{ name: "main", commit: fixture.head() }]);

    const next = fixture.commit("second", { "main.py": "print('v2')\n" });
    const again = await checkCloneTarget(url, { allowLocal: true, lookup });
    await git.fetch(uuid, again.gitUrl, creds, 1024 * 1024, again);
    expect((await git.versions(uuid)).branches).toEqual([{ name: "main", commit: next }]);
    // Every request carried the checked name (TLS would verify the same name).
    expect(server.hosts.length).toBeGreaterThan(0);
    expect(new Set(server.hosts)).toEqual(new Set([`${HOST}:${server.port}`]));
  });
});
