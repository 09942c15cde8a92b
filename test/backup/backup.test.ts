import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { createGunzip, gzipSync } from "node:zlib";
import { sql } from "drizzle-orm";
import { pino } from "pino";
import tar from "tar-stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBackupService } from "../../src/backup/backup.service.ts";
import { MANIFEST, type Manifest } from "../../src/backup/backup-format.ts";
import { INSTANCE_ACTOR } from "../../src/federation/core.ts";
import { rowsOf } from "../../src/federation/kv-store.ts";
import { writeGateFor } from "../../src/git/write-gate.ts";
import { type Instance, startInstance } from "../../src/instance.ts";
import {
  connectClient,
  eventually,
  makeUnit,
  makeWorld,
  type World,
  type WorldUnit,
} from "../broker/mqtt-helpers.ts";
import { createPostgresDatabase, testDbKind } from "../helpers/database.ts";
import {
  type ApiClient,
  createApiClient,
  startOnFreePorts,
  startTestInstance,
  type TestInstance,
  testInstanceEnv,
} from "../helpers/instance.ts";

// Backup and restore end to end, on the project's database: `npm run backup` against a
// running instance (over its local socket) while a device publishes and a user writes;
// `npm run restore` into fresh targets of both kinds (moving house) and back; each
// refusal; a killed backup; the admin routes; scheduled rotation. One world, several checks.

const root = path.resolve(import.meta.dirname, "../..");
/** A backup, a restore and an instance started on the result: three database cold starts. */
const RESTORE_TIMEOUT_MS = 120_000;
const kind = testDbKind();
const other = kind === "pglite" ? "postgres" : "pglite";

type Run = { code: number | null; stdout: string; stderr: string };

/** The CLI as a person runs it (`npm run backup|restore -- ...` runs exactly this). */
function cli(
  args: string[],
  env: Record<string, string | undefined>,
  onStderr?: (text: string, kill: () => void) => void,
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["src/backup/cli.ts", ...args], {
      cwd: root,
      env: { PATH: process.env.PATH, PEPEUNIT_LOG_LEVEL: "silent", ...env },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
      onStderr?.(stderr, () => child.kill("SIGKILL"));
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** A fresh restore target: data dir + clones dir (+ a new PostgreSQL database). */
type Target = {
  kind: "pglite" | "postgres";
  env: Record<string, string | undefined>;
  dir: string;
  drop(): Promise<void>;
};
async function freshTarget(k: "pglite" | "postgres"): Promise<Target> {
  const dir = await mkdtemp(path.join(tmpdir(), "pepeunit-restore-"));
  const pg = k === "postgres" ? await createPostgresDatabase() : undefined;
  return {
    kind: k,
    dir,
    env: {
      PEPEUNIT_DATA_DIR: path.join(dir, "data"),
      PEPEUNIT_REPOSITORIES_DIR: path.join(dir, "repositories"),
      DATABASE_URL: pg?.url,
    },
    async drop() {
      await pg?.drop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** An instance on a restored target, as `npm start` would open it (its .env, its database). */
async function startOn(t: Target): Promise<Instance & { api: ApiClient }> {
  const inst = await startOnFreePorts(
    async () => ({ ...(await testInstanceEnv()), ...t.env }),
    (config) => startInstance(config, { logger: pino({ level: "silent" }) }),
  );
  return { ...inst, api: createApiClient(inst.httpUrl) };
}

// any: API JSON; the projections keep what must survive a restore (not ports or online state).
type Walk = Record<string, any>;
async function walk(baseUrl: string, w: World, nodes: string[]): Promise<Walk> {
  const api = createApiClient(baseUrl);
  const ok = async (p: string, token: string) => {
    const res = await api.get(p, token);
    expect(res.status, `${p}: ${JSON.stringify(res.body)}`).toBe(200);
    return res.body;
  };
  const users = (await ok("/users?limit=100", w.admin.token)).users.map((u: any) => [
    u.uuid,
    u.login,
    u.email,
    u.role,
    u.status,
  ]);
  const repos = (await ok("/repos?limit=100", w.bob.token)).repos.map((r: any) => [
    r.uuid,
    r.name,
    r.url,
    r.default_branch,
  ]);
  const versions = await ok(`/repos/${w.repoUuid}/versions`, w.bob.token);
  const units: Walk = {};
  for (const u of (await ok("/units?limit=100", w.bob.token)).units) {
    const env = await ok(`/units/env/${u.uuid}`, w.bob.token);
    delete env.PU_MQTT_PORT; // the restored instance listens elsewhere in the test
    units[u.uuid] = {
      name: u.name,
      repo: u.repo_uuid,
      visibility: u.visibility,
      nodes: u.unit_nodes.map((n: any) => [n.uuid, n.type, n.topic_name]).sort(),
      env,
    };
  }
  const edges = (await ok("/unit_node_edges?limit=100", w.bob.token)).unit_node_edges
    .map((e: any) => [e.uuid, e.output_uuid, e.input_uuid])
    .sort();
  const alerts = (await ok("/alerts?limit=100", w.bob.token)).alerts.map((r: any) => [
    r.uuid,
    r.unit_node_uuid,
    r.max,
  ]);
  const events = (await ok("/alerts/events?limit=100", w.bob.token)).alert_events.map(
    (e: any) => e.uuid,
  );
  const boards = (await ok("/boards?limit=100", w.bob.token)).boards.map((b: any) => [
    b.uuid,
    b.name,
    b.items.map((i: any) => i.unit_node_uuid),
  ]);
  const history: Walk = {};
  for (const n of nodes) {
    const h = await ok(`/unit_nodes/get_data_pipe_data?uuid=${n}&limit=1000`, w.bob.token);
    history[n] = h.pipe_data.map((r: any) => [r.state, r.create_datetime]);
  }
  // The instance actor's key (made on first use, kept in federation_keys): peers verify
  // our signatures with it, so it must be the same key after a move.
  const actor = await fetch(`${baseUrl}/ap/actors/${INSTANCE_ACTOR}`, {
    headers: { accept: "application/activity+json" },
  });
  expect(actor.status).toBe(200);
  // Its RSA keys: the main one and the one readings are signed with (src/federation/keys.ts).
  const keys = ((await actor.json()) as { publicKey?: Array<{ publicKeyPem?: string }> }).publicKey;
  expect(keys).toHaveLength(2);
  const key = (keys ?? []).map((k) => k.publicKeyPem).join("\n");
  expect(key.match(/BEGIN PUBLIC KEY/g)).toHaveLength(2);
  return { users, repos, versions, units, edges, alerts, events, boards, history, key };
}

/** Row count of every application table (all the backup held must be there). */
async function tableCounts(inst: Instance): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const names = rowsOf<{ name: string }>(
    await inst.deps.database.db.execute(
      sql`select tablename as name from pg_tables where schemaname = 'public'`,
    ),
  );
  for (const { name } of names) {
    const [r] = rowsOf<{ n: number }>(
      await inst.deps.database.db.execute(
        sql`select count(*)::int as n from ${sql.identifier(name)}`,
      ),
    );
    out[name] = r?.n ?? 0;
  }
  return out;
}

/** The archive's entries, changed by `edit`, packed again (a forged or damaged backup). */
async function repack(
  file: string,
  out: string,
  edit: (name: string, body: Buffer) => Buffer,
): Promise<void> {
  const ex = tar.extract();
  const pack = tar.pack();
  const entries: Array<[tar.Header, Buffer]> = [];
  const reading = pipeline((await import("node:fs")).createReadStream(file), createGunzip(), ex);
  for await (const e of ex) {
    const chunks: Buffer[] = [];
    for await (const c of e) chunks.push(c as Buffer);
    entries.push([e.header, edit(e.header.name, Buffer.concat(chunks))]);
  }
  await reading;
  for (const [header, body] of entries) {
    if (header.type === "directory") pack.entry({ name: header.name, type: "directory" });
    else pack.entry({ name: header.name, size: body.length }, body);
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  await writeFile(out, gzipSync(Buffer.concat(chunks)));
}

async function manifestOf(file: string): Promise<Manifest> {
  let manifest: Manifest | undefined;
  await repack(file, `${file}.copy`, (name, body) => {
    if (name === MANIFEST) manifest = JSON.parse(body.toString("utf8")) as Manifest;
    return body;
  });
  await rm(`${file}.copy`);
  if (!manifest) throw new Error("no manifest");
  return manifest;
}

describe(`backup and restore (${kind})`, () => {
  let a: TestInstance;
  let w: World;
  let u1: WorldUnit;
  let u2: WorldUnit;
  let work: string;
  let backupDir: string;
  let sourceEnv: Record<string, string>;
  let before: Walk;
  let nodes: string[];
  let archive: string;
  const targets: Target[] = [];
  let walked: Walk | undefined;

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), "pepeunit-backup-"));
    backupDir = path.join(work, "backups");
    a = await startTestInstance({
      PEPEUNIT_BACKUP_DIR: backupDir,
      PEPEUNIT_HISTORY_FLUSH_MS: "50",
    });
    sourceEnv = {
      PEPEUNIT_DATA_DIR: path.join(a.dir, "data"),
      PEPEUNIT_REPOSITORIES_DIR: path.join(a.dir, "repositories"),
    };
    w = await makeWorld(a);
    u1 = await makeUnit(a, w.bob.token, w.repoUuid);
    u2 = await makeUnit(a, w.bob.token, w.repoUuid);
    const out = u1.nodeUuid("Output", "temperature");
    const edge = await a.api.post(
      "/unit_node_edges",
      { output_uuid: out, input_uuid: u2.nodeUuid("Input", "relay") },
      w.bob.token,
    );
    expect(edge.status).toBe(201);
    const pipe = await fetch(
      `${a.httpUrl}/pepeunit/api/v1/unit_nodes/set_data_pipe_config/${out}`,
      {
        method: "POST",
        headers: { "content-type": "application/yaml", "x-auth-token": w.bob.token },
        body: "active_period: {type: Permanent}\nfilters: {type_input_value: Number}\nprocessing_policy: {policy_type: NRecords, n_records_count: 1000}\n",
      },
    );
    expect(pipe.status).toBe(204);
    expect(
      (await a.api.patch(`/unit_nodes/${out}`, { is_data_pipe_active: true }, w.bob.token)).status,
    ).toBe(200);
    nodes = [out];
    // An alert rule the values below cross (so events are kept too) and a board.
    const rule = await a.api.post(
      "/alerts",
      { unit_node_uuid: out, max: 22, min_interval_s: 0 },
      w.bob.token,
    );
    expect(rule.status).toBe(201);
    const board = await a.api.post(
      "/boards",
      { name: "home", items: [{ unit_node_uuid: out }] },
      w.bob.token,
    );
    expect(board.status).toBe(201);
    const device = await connectClient(a.mqttUrl, u1.token);
    for (let i = 0; i < 5; i++)
      await device.publishAsync(u1.topic("Output", "temperature"), String(20 + i));
    await eventually(
      async () =>
        (await a.api.get(`/unit_nodes/get_data_pipe_data?uuid=${out}`, w.bob.token)).body.count ===
        5,
      10_000,
    );
    await eventually(
      async () => (await a.api.get("/alerts/events", w.bob.token)).body.count > 0,
      10_000,
    );
    await device.endAsync();
    before = await walk(a.httpUrl, w, nodes);
  });
  afterAll(async () => {
    await a?.close();
    for (const t of targets) await t.drop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("backs up the running instance over its socket while a device publishes and a user writes", async () => {
    const device = await connectClient(a.mqttUrl, u1.token);
    let busy = true;
    const publishing = (async () => {
      for (let i = 0; busy; i++) {
        await device.publishAsync(u1.topic("Output", "temperature"), String(100 + i));
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const writing = (async () => {
      for (let i = 0; busy; i++)
        await makeUnit(a, w.bob.token, w.repoUuid, { name: `during-${i}` });
    })();
    archive = path.join(work, "one.tar.gz");
    const run = await cli(["backup", "--out", archive], sourceEnv);
    busy = false;
    await Promise.all([publishing, writing]);
    await device.endAsync();
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain("backup: asking the running instance");
    expect(run.stderr).toContain("backup: database: users"); // a plain line per step off a terminal
    expect(run.stdout).toContain(`backup written: ${archive}`);
    expect((await stat(archive)).mode & 0o777).toBe(0o600);
    const m = await manifestOf(archive);
    expect(m.database_kind).toBe(kind);
    expect(m.tables.find((t) => t.name === "users")?.rows).toBe(2);
    expect(Object.keys(m.files).some((f) => f.startsWith(`repositories/${w.repoUuid}/`))).toBe(
      true,
    );
    // The clones must be usable from the archive alone.
    await rm(w.fixture.dir, { recursive: true, force: true });
  });

  for (const into of [kind, other] as const) {
    it(
      `restores into a fresh ${into} target and answers as before`,
      async () => {
        const t = await freshTarget(into);
        targets.push(t);
        const run = await cli(["restore", archive], t.env);
        expect(run.code, run.stderr).toBe(0);
        expect(run.stdout).toContain(`(${kind} → ${into})`);
        expect((await stat(path.join(t.dir, "data", ".env"))).mode & 0o777).toBe(0o600);
        const b = await startOn(t);
        try {
          const m = await manifestOf(archive);
          const counts = await tableCounts(b);
          for (const table of m.tables)
            expect([table.name, counts[table.name]]).toEqual([table.name, table.rows]);
          const after = await walk(b.httpUrl, w, nodes);
          // What existed before the backup is there as it was; the writes made during it
          // are there whole (a unit with its env) or not at all.
          expect(after.users).toEqual(before.users);
          expect(after.repos).toEqual(before.repos);
          expect(after.versions).toEqual(before.versions);
          expect(after.edges).toEqual(before.edges);
          expect(after.key).toEqual(before.key);
          expect(after.alerts).toEqual(before.alerts);
          expect(after.boards).toEqual(before.boards);
          expect(after.events).toEqual(expect.arrayContaining(before.events));
          expect(before.events.length).toBeGreaterThan(0);
          for (const [uuid, unit] of Object.entries(before.units))
            expect(after.units[uuid]).toEqual(unit);
          for (const unit of Object.values<Walk>(after.units))
            expect(unit.env.PU_AUTH_TOKEN).toBeTruthy();
          const old = before.history[nodes[0] as string];
          expect(after.history[nodes[0] as string]).toEqual(expect.arrayContaining(old));
          if (walked) expect(after).toEqual(walked);
          walked = after;
          // The unit's token from the old instance still logs the device in.
          const device = await connectClient(`mqtt://127.0.0.1:${b.broker.tcpPort}`, u1.token);
          await device.endAsync();
        } finally {
          await b.stop();
        }
        // A restore into PGlite creates its cluster (initdb) in the CLI and opens it again
        // in the instance: two cold starts, each several seconds on a busy 2-core machine.
      },
      RESTORE_TIMEOUT_MS,
    );
  }

  it(
    `moves back: a backup of the ${other} instance restores into ${kind}`,
    async () => {
      const from = targets[1] as Target;
      const back = path.join(work, "back.tar.gz");
      // No instance runs on it: the CLI opens its database itself.
      const run = await cli(["backup", "--out", back], from.env);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toContain("no instance running");
      expect((await manifestOf(back)).database_kind).toBe(other);
      const t = await freshTarget(kind);
      targets.push(t);
      expect((await cli(["restore", back], t.env)).code).toBe(0);
      const b = await startOn(t);
      try {
        expect(await walk(b.httpUrl, w, nodes)).toEqual(walked);
      } finally {
        await b.stop();
      }
    },
    RESTORE_TIMEOUT_MS,
  );

  it(
    "refuses a non-empty target, a newer schema and a damaged archive with exit 2, writing nothing",
    async () => {
      const used = targets[0] as Target;
      const refused = await cli(["restore", archive], used.env);
      expect([refused.code, refused.stderr]).toEqual([2, expect.stringContaining("not empty")]);
      const forced = await cli(["restore", archive, "--force"], used.env);
      expect(forced.code, forced.stderr).toBe(0);
      // Into the data of a running instance; into a database another application uses.
      const running = await cli(["restore", archive, "--force"], sourceEnv);
      expect([running.code, running.stderr]).toEqual([
        2,
        expect.stringContaining("an instance is running"),
      ]);
      const shared = await freshTarget("postgres");
      targets.push(shared);
      const { default: postgres } = await import("postgres");
      const client = postgres(shared.env.DATABASE_URL as string, { max: 1, onnotice: () => {} });
      await client.unsafe("create table other_app (id int)");
      await client.end();
      const foreign = await cli(["restore", archive], shared.env);
      expect([foreign.code, foreign.stderr]).toEqual([
        2,
        expect.stringContaining("does not know (other_app)"),
      ]);

      const newer = path.join(work, "newer.tar.gz");
      await repack(archive, newer, (name, body) => {
        if (name !== MANIFEST) return body;
        const m = JSON.parse(body.toString("utf8")) as Manifest;
        m.schema = { index: m.schema.index + 1, tag: "9999_future" };
        return Buffer.from(JSON.stringify(m));
      });
      const corrupted = path.join(work, "corrupted.tar.gz");
      let flipped = false;
      await repack(archive, corrupted, (name, body) => {
        if (flipped || !name.startsWith("db/") || !body.length) return body;
        flipped = true;
        const copy = Buffer.from(body);
        copy[0] = (copy[0] ?? 0) ^ 1;
        return copy;
      });
      const truncated = path.join(work, "truncated.tar.gz");
      const whole = await readFile(archive);
      await writeFile(truncated, whole.subarray(0, Math.floor(whole.length / 2)));
      for (const [file, message] of [
        [newer, "newer schema"],
        [corrupted, "does not match its checksum"],
        [truncated, "corrupted archive"],
      ] as const) {
        const t = await freshTarget(kind);
        targets.push(t);
        const run = await cli(["restore", file], t.env);
        expect([run.code, run.stderr]).toEqual([2, expect.stringContaining(message)]);
        expect(existsSync(path.join(t.dir, "data", ".env"))).toBe(false);
        expect(existsSync(path.join(t.dir, "data", "pglite"))).toBe(false);
        expect(await readdir(t.dir)).toEqual(existsSync(path.join(t.dir, "data")) ? ["data"] : []);
        if (existsSync(path.join(t.dir, "data")))
          expect(await readdir(path.join(t.dir, "data"))).toEqual([]);
      }
    },
    RESTORE_TIMEOUT_MS,
  );

  it("a backup killed midway leaves no file that looks like a backup", async () => {
    // A clone being written holds the snapshot back: the kill lands mid-backup.
    let release = () => {};
    const gate = writeGateFor(path.resolve(sourceEnv.PEPEUNIT_REPOSITORIES_DIR as string));
    const holding = gate.write(() => new Promise<void>((r) => (release = r)));
    const out = path.join(work, "killed", "killed.tar.gz");
    await mkdir(path.dirname(out));
    const run = await cli(["backup", "--out", out], sourceEnv, (text, kill) => {
      if (text.includes("backup: repositories")) kill();
    });
    expect(run.code).toBe(null); // killed
    release();
    await holding;
    await expect.poll(() => a.deps.backups?.running()).toBe(false);
    expect(await readdir(path.dirname(out))).toEqual([]);
  });

  it("admin routes: list and start backups (admin only; 409 while one runs)", async () => {
    expect((await a.api.get("/admin/backups")).status).toBe(401);
    expect((await a.api.get("/admin/backups", w.bob.token)).status).toBe(403);
    expect((await a.api.post("/admin/backups", undefined, w.bob.token)).status).toBe(403);
    let release = () => {};
    const gate = writeGateFor(path.resolve(sourceEnv.PEPEUNIT_REPOSITORIES_DIR as string));
    const holding = gate.write(() => new Promise<void>((r) => (release = r)));
    const started = await a.api.post("/admin/backups", undefined, w.admin.token);
    expect([started.status, started.body.result]).toEqual([202, "running"]);
    expect((await a.api.post("/admin/backups", undefined, w.admin.token)).status).toBe(409);
    const listed = await a.api.get("/admin/backups", w.admin.token);
    expect(listed.body).toMatchObject({ configured: true, running: true, keep: 7 });
    release();
    await holding;
    await expect
      .poll(async () => (await a.api.get("/admin/backups", w.admin.token)).body.backups[0])
      .toMatchObject({ name: started.body.name, result: "ok", size: expect.any(Number) });
  });

  it("scheduled backups are written and rotated unattended", async () => {
    const dir = path.join(work, "scheduled");
    const service = createBackupService({
      config: { ...a.deps.config, backupDir: dir, backupEveryMs: 20, backupKeep: 2 },
      database: a.deps.database,
      log: pino({ level: "silent" }),
    });
    const seen = new Set<string>();
    service.start();
    try {
      await expect
        .poll(async () => {
          for (const f of await readdir(dir).catch(() => []))
            if (f.endsWith(".tar.gz")) seen.add(f);
          return seen.size;
        })
        .toBeGreaterThanOrEqual(4);
    } finally {
      await service.stop();
    }
    for (const f of await readdir(dir)) if (f.endsWith(".tar.gz")) seen.add(f);
    const left = (await readdir(dir)).filter((f) => f.endsWith(".tar.gz")).sort();
    expect(left).toEqual([...seen].sort().slice(-2));
    expect((await service.list()).map((b) => b.result)).toEqual(["ok", "ok"]);
  });
});
