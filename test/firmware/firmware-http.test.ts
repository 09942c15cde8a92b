import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { gunzipSync, inflateSync } from "node:zlib";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { units } from "../../src/db/schema.ts";
import { API_PREFIX } from "../../src/http/app.ts";
import { createFixtureRepo, type FixtureRepo } from "../helpers/git-fixtures.ts";
import { createUser, startTestInstance, type TestInstance } from "../helpers/instance.ts";
import { createRepo } from "../helpers/repos.ts";
import { parseTar, pythonRead } from "./archive-readers.ts";

// Firmware downloads through the real server: who may download, what the archive
// holds, and the exact HTTP framing small device clients rely on.

const run = promisify(execFile);

type RawResponse = { statusLine: string; headers: Map<string, string>; body: Buffer };

/** One HTTP/1.1 request over a bare socket; resolves when the server closes it. */
function rawGet(baseUrl: string, path: string, token: string): Promise<RawResponse> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname);
    const chunks: Buffer[] = [];
    socket.on("connect", () => {
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: ${url.host}\r\nx-auth-token: ${token}\r\nAccept-Encoding: gzip, deflate\r\nConnection: close\r\n\r\n`,
      );
    });
    socket.on("data", (d: Buffer) => chunks.push(d));
    socket.on("error", reject);
    socket.on("end", () => {
      const all = Buffer.concat(chunks);
      const split = all.indexOf("\r\n\r\n");
      const [statusLine = "", ...lines] = all.subarray(0, split).toString("latin1").split("\r\n");
      const headers = new Map<string, string>();
      for (const l of lines) {
        const i = l.indexOf(":");
        headers.set(l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim());
      }
      resolve({ statusLine, headers, body: all.subarray(split + 4) });
    });
  });
}

describe("firmware downloads over HTTP", () => {
  let inst: TestInstance;
  let owner: { uuid: string; token: string };
  let stranger: { uuid: string; token: string };
  let fixture: FixtureRepo;
  let repoUuid: string;
  let firstCommit: string;
  let unit: { uuid: string; name: string; token: string };
  let otherUnit: { uuid: string; token: string };

  async function download(kind: string, uuid: string, token?: string, query = "") {
    const res = await fetch(`${inst.httpUrl}${API_PREFIX}/units/firmware/${kind}/${uuid}${query}`, {
      headers: token ? { "x-auth-token": token } : {},
    });
    return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
  }

  async function createUnit(name: string, extra: object = {}) {
    const created = await inst.api.post(
      "/units",
      { repo_uuid: repoUuid, name, visibility: "Private", ...extra },
      owner.token,
    );
    if (created.status !== 201)
      throw new Error(`unit: ${created.status} ${JSON.stringify(created.body)}`);
    const env = await inst.api.get(`/units/env/${created.body.uuid}`, owner.token);
    return { uuid: created.body.uuid as string, name, token: env.body.PU_AUTH_TOKEN as string };
  }

  beforeAll(async () => {
    inst = await startTestInstance();
    owner = await createUser(inst.api, "fwowner");
    stranger = await createUser(inst.api, "fwstranger");
    fixture = createFixtureRepo();
    fixture.commit("firmware files", {
      "main.py": "print('v1')\n",
      "lib/util.py": "X = 1\n",
      "examples/demo.py": "demo",
      ".pepeignore": "*.md\n",
      "README.md": "docs",
    });
    firstCommit = fixture.head();
    const repo = await createRepo(inst.api, owner.token, fixture, { visibility: "Private" });
    repoUuid = repo.uuid;
    unit = await createUnit("fw-unit-1", {
      follow_repo: false,
      branch: "main",
      commit: firstCommit,
    });
    otherUnit = await createUnit("fw-unit-2");
  });
  afterAll(async () => {
    await inst?.close();
  });

  it("lets a device download its own tgz; its env.json equals GET /units/env/{uuid}", async () => {
    const res = await download("tgz", unit.uuid, unit.token);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/octet-stream");
    expect(res.headers.get("content-length")).toBe(String(res.body.length));
    // Named for what it is: a zlib stream, which tar -xzf would not open.
    expect(res.headers.get("content-disposition")).toBe(
      'attachment; filename="fw-unit-1.tar.zlib"',
    );
    expect(res.headers.get("content-encoding")).toBeNull();
    expect(res.body[0]).toBe(0x18); // zlib, 512-byte window

    const files = new Map(pythonRead("upy", res.body, 9).map((e) => [e.name, e.data]));
    expect([...files.keys()].sort()).toEqual(
      ["env.json", "lib/util.py", "main.py", "schema.json"].sort(),
    );
    const env = await inst.api.get(`/units/env/${unit.uuid}`, unit.token);
    expect(env.status).toBe(200);
    expect(JSON.parse(files.get("env.json")?.toString() ?? "")).toEqual(env.body);
    expect(files.get("env.json")?.toString()).toBe(JSON.stringify(env.body, null, 4));
    const schema = await inst.api.get(`/units/get_current_schema/${unit.uuid}`, unit.token);
    expect(JSON.parse(files.get("schema.json")?.toString() ?? "")).toEqual(schema.body);
  });

  it("serves tar and zip to the owner, with the same files", async () => {
    const tar = await download("tar", unit.uuid, owner.token);
    expect(tar.status).toBe(200);
    expect(tar.headers.get("content-length")).toBe(String(tar.body.length));
    const names = parseTar(tar.body).headers.map((h) => h.name);
    expect(names).toEqual(
      expect.arrayContaining([
        "./lib/",
        "./lib/util.py",
        "./main.py",
        "./env.json",
        "./schema.json",
      ]),
    );
    const zip = await download("zip", unit.uuid, owner.token);
    expect(zip.status).toBe(200);
    expect(zip.headers.get("content-type")).toBe("application/zip");
    expect(zip.headers.get("content-disposition")).toBe('attachment; filename="fw-unit-1.zip"');
    const entries = pythonRead("zip", zip.body);
    expect(entries.map((e) => e.name).sort()).toEqual(
      ["env.json", "lib/", "lib/util.py", "main.py", "schema.json"].sort(),
    );
  });

  it("serves people a real .tar.gz that tar -tzf lists", async () => {
    const gz = await download("tar.gz", unit.uuid, owner.token);
    expect(gz.status).toBe(200);
    expect(gz.headers.get("content-type")).toBe("application/gzip");
    expect(gz.headers.get("content-disposition")).toBe('attachment; filename="fw-unit-1.tar.gz"');
    const file = path.join(mkdtempSync(path.join(tmpdir(), "pepeunit-targz-")), "fw.tar.gz");
    writeFileSync(file, gz.body);
    const { stdout } = await run("tar", ["-tzf", file]);
    expect(stdout.split("\n")).toEqual(expect.arrayContaining(["./main.py", "./env.json"]));
    // The same files as the devices' zlib form.
    const zlib = await download("tgz", unit.uuid, unit.token);
    expect(parseTar(gunzipSync(gz.body)).headers.map((h) => h.name)).toEqual(
      parseTar(inflateSync(zlib.body)).headers.map((h) => h.name),
    );
  });

  it("refuses anonymous callers, other units and other users", async () => {
    const anon = await download("tgz", unit.uuid);
    expect([401, 404]).toContain(anon.status);
    const other = await download("tgz", unit.uuid, otherUnit.token);
    expect([403, 404]).toContain(other.status);
    const user = await download("tar", unit.uuid, stranger.token);
    expect([403, 404]).toContain(user.status);
    expect(JSON.parse(user.body.toString()).detail).toBeDefined();
    const missing = await download("zip", "00000000-0000-4000-8000-000000000000", owner.token);
    expect(missing.status).toBe(404);
    const own = await download("tgz", otherUnit.uuid, otherUnit.token);
    expect(own.status).toBe(200);
  });

  it("validates wbits and level with a 422 and honours accepted values", async () => {
    for (const q of [
      "?wbits=8",
      "?wbits=16",
      "?wbits=32",
      "?wbits=-8",
      "?wbits=abc",
      "?level=10",
      "?level=-2",
      "?wbits=9.5",
    ]) {
      const res = await download("tgz", unit.uuid, unit.token, q);
      expect(res.status, q).toBe(422);
      expect(JSON.parse(res.body.toString()).detail).toBeDefined();
    }
    const gz = await download("tgz", unit.uuid, unit.token, "?wbits=31&level=1");
    expect(gz.status).toBe(200);
    expect(gz.body.subarray(0, 2).toString("hex")).toBe("1f8b");
    expect(pythonRead("tgz", gz.body, 31).some((e) => e.name === "./main.py")).toBe(true);
    const raw = await download("tgz", unit.uuid, unit.token, "?wbits=-15&level=-1");
    expect(pythonRead("tgz", raw.body, -15).some((e) => e.name === "./main.py")).toBe(true);
  });

  it("sends Content-Length, never chunked, and closes after the body on Connection: close", async () => {
    for (const kind of ["tgz", "tar", "zip"]) {
      const res = await rawGet(
        inst.httpUrl,
        `${API_PREFIX}/units/firmware/${kind}/${unit.uuid}`,
        unit.token,
      );
      expect(res.statusLine).toBe("HTTP/1.1 200 OK");
      expect(res.headers.get("transfer-encoding")).toBeUndefined();
      expect(res.headers.get("content-encoding")).toBeUndefined();
      expect(res.headers.get("content-length")).toBe(String(res.body.length));
      expect(res.body.length).toBeGreaterThan(0);
    }
  });

  it("builds from the unit's target commit after new commits are pushed and synced", async () => {
    fixture.commit("v2", { "main.py": "print('v2')\n", "new.py": "added" });
    const synced = await inst.api.post(`/repos/${repoUuid}/sync`, undefined, owner.token);
    expect(synced.status).toBe(200);
    const pinned = await inst.api.get(`/units/${unit.uuid}`, owner.token);
    expect(pinned.body.commit).toBe(firstCommit);
    const files = new Map(
      pythonRead("upy", (await download("tgz", unit.uuid, unit.token)).body).map((e) => [
        e.name,
        e.data,
      ]),
    );
    expect(files.get("main.py")?.toString()).toBe("print('v1')\n");
    expect(files.has("new.py")).toBe(false);

    // Whatever commit the following unit now targets, its archive is that commit's tree.
    const follower = await inst.api.get(`/units/${otherUnit.uuid}`, owner.token);
    const shown = fixture.git("show", `${follower.body.commit}:main.py`);
    const got = new Map(
      pythonRead("upy", (await download("tgz", otherUnit.uuid, otherUnit.token)).body).map((e) => [
        e.name,
        e.data,
      ]),
    );
    expect(got.get("main.py")?.toString().trim()).toBe(shown);
    const env = JSON.parse(got.get("env.json")?.toString() ?? "{}");
    expect(env.PU_COMMIT_VERSION).toBe(follower.body.commit);
  });

  it("answers 422, never 500, for a version whose template is invalid", async () => {
    const broken = fixture.commit("broken template", { "schema_example.json": "{not json" });
    await inst.api.post(`/repos/${repoUuid}/sync`, undefined, owner.token);
    const victim = await createUnit("fw-unit-3", {
      follow_repo: false,
      branch: "main",
      commit: firstCommit,
    });
    // No API moves a unit onto an invalid version; set the state directly.
    await inst.deps.database.db
      .update(units)
      .set({ commit: broken })
      .where(eq(units.uuid, victim.uuid));
    for (const kind of ["tgz", "tar", "zip"]) {
      const res = await download(kind, victim.uuid, owner.token);
      expect(res.status, kind).toBe(422);
      expect(JSON.parse(res.body.toString()).detail).toMatch(/schema_example\.json/);
    }
  });

  it("answers 422 naming the path when a file path is too long for the device tar", async () => {
    const long = `${"x".repeat(50)}/${"y".repeat(60)}.py`;
    const c = fixture.commit("long path", {
      "schema_example.json": fixture.git("show", `${firstCommit}:schema_example.json`),
      [long]: "long",
    });
    await inst.api.post(`/repos/${repoUuid}/sync`, undefined, owner.token);
    const u = await createUnit("fw-unit-4", { follow_repo: false, branch: "main", commit: c });
    const res = await download("tgz", u.uuid, u.token);
    expect(res.status).toBe(422);
    expect(JSON.parse(res.body.toString()).detail).toContain(long);
  });

  it("lists the four routes in the OpenAPI document", async () => {
    const doc = await inst.api.get("/openapi.json");
    const paths = Object.keys(doc.body.paths);
    for (const kind of ["tgz", "tar.gz", "tar", "zip"])
      expect(paths).toContain(`/units/firmware/${kind}/{uuid}`);
    const params = doc.body.paths["/units/firmware/tgz/{uuid}"].get.parameters.map(
      (p: { name: string }) => p.name,
    );
    expect(params).toEqual(expect.arrayContaining(["uuid", "wbits", "level"]));
  });
});
