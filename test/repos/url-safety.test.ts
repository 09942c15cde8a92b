import { readdir } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFixtureRepo, type FixtureRepo } from "../helpers/git-fixtures.ts";
import { type GitHttpServer, startGitHttpServer } from "../helpers/git-http-server.ts";
import { createUser, startTestInstance, type TestInstance } from "../helpers/instance.ts";

describe("repos: clone URLs the server refuses", () => {
  let strict: TestInstance;
  let open: TestInstance;
  let fixture: FixtureRepo;
  let server: GitHttpServer;
  let strictToken: string;
  let openToken: string;

  beforeAll(async () => {
    strict = await startTestInstance({ PEPEUNIT_GIT_ALLOW_LOCAL: "false" });
    open = await startTestInstance();
    strictToken = (await createUser(strict.api, "admin")).token;
    openToken = (await createUser(open.api, "admin")).token;
    fixture = createFixtureRepo();
    server = await startGitHttpServer({
      root: path.dirname(fixture.dir),
      username: "u",
      password: "p",
    });
  });
  afterAll(async () => {
    await strict?.close();
    await open?.close();
    await server?.close();
  });

  const post = (inst: TestInstance, token: string, url: string) =>
    inst.api.post("/repos", { name: "r", url }, token);

  it("refuses local sources when PEPEUNIT_GIT_ALLOW_LOCAL is false", async () => {
    for (const url of [
      fixture.url,
      server.urlFor(fixture.dir),
      "http://localhost:1/x.git",
      "http://[::1]:1/x.git",
      "http://10.0.0.1/x.git",
      "http://192.168.0.10/x.git",
      "http://169.254.169.254/latest/meta-data",
      "http://0.0.0.0:1/x.git",
    ]) {
      const res = await post(strict, strictToken, url);
      expect(res.status, url).toBe(422);
      expect(res.body.detail, url).toMatch(/^clone URL refused: /);
    }
    expect((await post(strict, strictToken, fixture.url)).body.detail).toContain("file://");
    expect((await post(strict, strictToken, "http://127.0.0.1:1/x")).body.detail).toContain(
      "local or private address (127.0.0.1)",
    );
    // Nothing was stored and nothing was cloned.
    expect((await strict.api.get("/repos", strictToken)).body.count).toBe(0);
    expect(await readdir(path.join(strict.dir, "repositories")).catch(() => [])).toEqual([]);
  });

  it("refuses git transports, options and inline credentials even when local sources are allowed", async () => {
    const pwned = path.join(open.dir, "pwned");
    const cases: Array<[string, RegExp]> = [
      [`ext::sh -c touch% ${pwned}`, /whitespace|transport/],
      ["ext::sh", /transport/],
      ["fd::17", /transport/],
      [`--upload-pack=touch ${pwned}`, /whitespace|'-'/],
      ["-u", /'-'/],
      [`${server.urlFor(fixture.dir).replace("http://", "http://u:p@")}`, /credentials field/],
      ["ftp://127.0.0.1/x.git", /only https:\/\/ and http:\/\//],
      ["git://127.0.0.1/x.git", /only https:\/\/ and http:\/\//],
      [fixture.dir, /not a valid URL/],
      ["https://example.org/a b", /whitespace/],
      [`https://example.org/${"x".repeat(2100)}`, /2048/],
    ];
    for (const [url, reason] of cases) {
      const res = await post(open, openToken, url);
      expect(res.status, url).toBe(422);
      expect(res.body.detail, url).toMatch(reason);
    }
    expect(await readdir(open.dir)).not.toContain("pwned");
    expect((await open.api.get("/repos", openToken)).body.count).toBe(0);
  });

  it("clones the same local sources when they are allowed", async () => {
    const file = await post(open, openToken, fixture.url);
    expect(file.status).toBe(201);
    // http to loopback, with the credentials in their own field.
    const http = await open.api.post(
      "/repos",
      {
        name: "over http",
        url: server.urlFor(fixture.dir),
        is_private: true,
        credentials: { username: "u", password: "p" },
      },
      openToken,
    );
    expect(http.status).toBe(201);
  });
});
