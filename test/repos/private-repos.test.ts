import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { eq } from "drizzle-orm";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.ts";
import { decryptJson } from "../../src/crypto/aes-gcm.ts";
import { repos } from "../../src/db/schema.ts";
import { type Instance, startInstance } from "../../src/instance.ts";
import { createTestDatabase } from "../helpers/database.ts";
import { createFixtureRepo, type FixtureRepo } from "../helpers/git-fixtures.ts";
import { type GitHttpServer, startGitHttpServer } from "../helpers/git-http-server.ts";
import { type ApiClient, createApiClient, createUser } from "../helpers/instance.ts";
import { freePort } from "../helpers/ports.ts";

const USERNAME = "maker";
const PASSWORD = "s3cret-Pa55word-for-git";
const WRONG_PASSWORD = "wrong-Pa55word-guess";

/** Every file under a directory, as bytes. */
async function allFiles(dir: string): Promise<Array<{ file: string; bytes: Buffer }>> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  const out: Array<{ file: string; bytes: Buffer }> = [];
  for (const e of entries) {
    if (!e.isFile()) continue;
    const file = path.join(e.parentPath, e.name);
    out.push({ file, bytes: await readFile(file) });
  }
  return out;
}

const secretForms = (password: string) => [
  password,
  Buffer.from(`${USERNAME}:${password}`).toString("base64"),
];

describe("private repos over HTTP with basic auth", () => {
  let dir: string;
  let inst: Instance;
  let api: ApiClient;
  let closeDb: () => Promise<void>;
  let logText = "";
  let server: GitHttpServer;
  let fixture: FixtureRepo;
  let alice: { uuid: string; token: string };
  let url: string;
  const responses: string[] = [];

  /** The API, remembering every response body to search it for secrets later. */
  const call = {
    post: async (p: string, body: unknown) => {
      const r = await api.post(p, body, alice.token);
      responses.push(JSON.stringify(r.body));
      return r;
    },
    patch: async (p: string, body: unknown) => {
      const r = await api.patch(p, body, alice.token);
      responses.push(JSON.stringify(r.body));
      return r;
    },
    get: async (p: string) => {
      const r = await api.get(p, alice.token);
      responses.push(JSON.stringify(r.body));
      return r;
    },
  };

  beforeAll(async () => {
    // Built by hand (not startTestInstance) to capture every log line at trace level.
    dir = await mkdtemp(path.join(tmpdir(), "pepeunit-test-"));
    const config = loadConfig({
      PATH: process.env.PATH,
      PEPEUNIT_HTTP_HOST: "127.0.0.1",
      PEPEUNIT_HTTP_PORT: "0",
      // The broker must not take 1883 (another broker may own it on this machine).
      PEPEUNIT_MQTT_PORT: String(await freePort()),
      PEPEUNIT_DATA_DIR: path.join(dir, "data"),
      PEPEUNIT_REPOSITORIES_DIR: path.join(dir, "repositories"),
      PEPEUNIT_GIT_ALLOW_LOCAL: "true",
    });
    const sink = new Writable({
      write(chunk, _enc, done) {
        logText += chunk.toString();
        done();
      },
    });
    const database = await createTestDatabase();
    closeDb = () => database.close();
    inst = await startInstance(config, { database, logger: pino({ level: "trace" }, sink) });
    api = createApiClient(inst.httpUrl);
    alice = await createUser(api, "alice");
    fixture = createFixtureRepo();
    server = await startGitHttpServer({
      root: path.dirname(fixture.dir),
      username: USERNAME,
      password: PASSWORD,
    });
    url = server.urlFor(fixture.dir);
  });
  afterAll(async () => {
    await inst?.stop();
    await closeDb?.();
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const reposDir = () => path.join(dir, "repositories");
  const cloneDirs = async () => readdir(reposDir()).catch(() => [] as string[]);

  it("refuses the private repo with wrong credentials and leaves no clone behind", async () => {
    const before = await cloneDirs();
    const res = await call.post("/repos", {
      name: "private-wrong",
      url,
      is_private: true,
      credentials: { username: USERNAME, password: WRONG_PASSWORD },
    });
    expect(res.status).toBe(422);
    expect(res.body.detail).toMatch(/clone failed/);
    expect(res.body.detail).not.toContain(WRONG_PASSWORD);
    expect(await cloneDirs()).toEqual(before);
    const list = await call.get("/repos");
    expect(list.body.repos.map((r: { name: string }) => r.name)).not.toContain("private-wrong");
    // The server did ask for the credentials: they were sent and refused.
    expect(server.authHeaders.length).toBeGreaterThan(0);
  });

  it("clones with the right credentials and keeps them only encrypted", async () => {
    const res = await call.post("/repos", {
      name: "private-ok",
      url,
      is_private: true,
      credentials: { username: USERNAME, password: PASSWORD },
      visibility: "Private",
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ is_private: true, has_credentials: true, url });
    expect(res.body.credentials).toBeUndefined();
    const uuid = res.body.uuid;

    const versions = await call.get(`/repos/${uuid}/versions`);
    expect(versions.body.branches).toEqual([{ name: "main", commit: fixture.head() }]);

    // Nowhere in the clone: not in .git/config, not in any file git wrote.
    const files = await allFiles(path.join(reposDir(), uuid));
    expect(files.some((f) => f.file.endsWith("config"))).toBe(true);
    for (const { file, bytes } of files) {
      for (const secret of secretForms(PASSWORD)) {
        expect(bytes.includes(secret), `${file} holds the secret`).toBe(false);
      }
    }
    const gitConfig = await readFile(path.join(reposDir(), uuid, "config"), "utf8");
    expect(gitConfig).toContain(url);
    expect(gitConfig).not.toMatch(/extraheader|authorization/i);

    // In the database only as the AES-GCM text form that decrypts to them.
    const [row] = await inst.deps.database.db
      .select({ enc: repos.credentialsEnc })
      .from(repos)
      .where(eq(repos.uuid, uuid));
    expect(row?.enc).toMatch(/^[A-Za-z0-9+/=]+\.[A-Za-z0-9+/=]+$/);
    for (const secret of secretForms(PASSWORD)) expect(row?.enc).not.toContain(secret);
    expect(row?.enc).not.toContain(USERNAME);
    expect(decryptJson(inst.deps.config.encryptKey, row?.enc ?? "")).toEqual({
      username: USERNAME,
      password: PASSWORD,
    });
  });

  it("syncs with the stored credentials, records a refusal after they change, recovers", async () => {
    const created = await call.post("/repos", {
      name: "private-sync",
      url,
      is_private: true,
      credentials: { username: USERNAME, password: PASSWORD },
    });
    expect(created.status).toBe(201);
    const uuid = created.body.uuid;
    const next = fixture.commit("second", { "second.txt": "2\n" });

    const ok = await call.post(`/repos/${uuid}/sync`, undefined);
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ sync_status: "Synced", sync_error: null });
    const v = await call.get(`/repos/${uuid}/versions`);
    expect(v.body.branches).toEqual([{ name: "main", commit: next }]);

    const wrong = await call.patch(`/repos/${uuid}`, {
      credentials: { username: USERNAME, password: WRONG_PASSWORD },
    });
    expect(wrong.status).toBe(200);
    expect(wrong.body.has_credentials).toBe(true);
    const failed = await call.post(`/repos/${uuid}/sync`, undefined);
    expect(failed.status).toBe(200);
    expect(failed.body.sync_status).toBe("Error");
    expect(failed.body.sync_error).toEqual(expect.any(String));
    expect(failed.body.sync_error).toMatch(/auth|username|401/i);

    const right = await call.patch(`/repos/${uuid}`, {
      credentials: { username: USERNAME, password: PASSWORD },
    });
    expect(right.status).toBe(200);
    const again = await call.post(`/repos/${uuid}/sync`, undefined);
    expect(again.body).toMatchObject({ sync_status: "Synced", sync_error: null });
  });

  it("refuses credentials for a public repo", async () => {
    const pub = createFixtureRepo();
    const created = await call.post("/repos", { name: "public", url: pub.url });
    expect(created.status).toBe(201);
    const res = await call.patch(`/repos/${created.body.uuid}`, {
      credentials: { username: USERNAME, password: PASSWORD },
    });
    expect(res.status).toBe(422);
    const flip = await call.patch(`/repos/${created.body.uuid}`, { is_private: true });
    expect(flip.status).toBe(422);
  });

  it("never shows the credentials in an API response or a log line", async () => {
    await call.get("/repos");
    expect(responses.length).toBeGreaterThan(5);
    expect(logText.length).toBeGreaterThan(0);
    for (const password of [PASSWORD, WRONG_PASSWORD]) {
      for (const secret of secretForms(password)) {
        for (const body of responses) expect(body).not.toContain(secret);
        expect(logText).not.toContain(secret);
      }
    }
  });
});
