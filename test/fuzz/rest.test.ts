import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signPurposeToken } from "../../src/crypto/tokens.ts";
import { API_PREFIX } from "../../src/http/app.ts";
import { createDownloadToken } from "../../src/telegram/telegram.store.ts";
import { eventually } from "../broker/mqtt-helpers.ts";
import { type FakeBotApi, startFakeBotApi } from "../helpers/fake-bot-api.ts";
import { startTestInstance, type TestInstance } from "../helpers/instance.ts";
import { type Case, casesFor, type Example, type Operation, operationsOf } from "./operations.ts";
import type { SchemaContext } from "./schema-arbitrary.ts";
import { type FuzzWorld, newUser, type Pools, seedWorld } from "./world.ts";

// Every operation of the OpenAPI document, called as every role with valid,
// valid-shaped and hostile input (fast-check, fixed seed). Asserted: no 5xx, no
// status the document does not declare for the operation, at least one 2xx per
// operation (the handlers are reached), and a healthy server afterwards.

const SEED = 20261130;
const VALID_PER_OP = 12;
const HOSTILE_PER_OP = 24;

// Their success would destroy what other operations need: they run last, in this
// order, against throwaway entities.
const DESTRUCTIVE = [
  "POST /units/{uuid}/rotate_token",
  "DELETE /unit_node_edges/{uuid}",
  "DELETE /federation/grants/{uuid}",
  "DELETE /units/{uuid}",
  "DELETE /repos/{uuid}",
  "POST /users/{uuid}/block",
  "POST /users/{uuid}/unblock",
  "DELETE /users/{uuid}",
  "POST /users/me/password",
  "PATCH /admin/federation",
  "PATCH /admin/settings",
];

// Operations slow enough (clones, archives, imports) to get fewer requests.
const HEAVY = new Set([
  "POST /admin/standard_repos",
  "POST /repos",
  "POST /repos/{uuid}/sync",
  "GET /units/firmware/tgz/{uuid}",
  "GET /units/firmware/tar.gz/{uuid}",
  "GET /units/firmware/tar/{uuid}",
  "GET /units/firmware/zip/{uuid}",
]);

type Finding = {
  op: string;
  status: number;
  note: string;
  role: string;
  url: string;
  body?: string;
};

describe("REST fuzzing", () => {
  let inst: TestInstance;
  let world: FuzzWorld;
  // The Telegram routes answer only with a bot: a local fake Bot API serves it.
  let botApi: FakeBotApi;
  // POST /admin/backups starts one only with a backup dir.
  const backupDir = mkdtempSync(path.join(tmpdir(), "pepeunit-fuzz-backups-"));
  beforeAll(async () => {
    botApi = await startFakeBotApi();
    // Behind a "proxy" (the test itself), so each request can come from its own address:
    // the per-address login brake must not turn the run into a wall of 429s.
    inst = await startTestInstance({
      PEPEUNIT_TRUSTED_PROXIES: "127.0.0.1",
      PEPEUNIT_TELEGRAM_BOT_TOKEN: botApi.token,
      PEPEUNIT_TELEGRAM_API_ROOT: botApi.url,
      PEPEUNIT_BACKUP_DIR: backupDir,
    });
    world = await seedWorld(inst);
  }, 120_000);
  afterAll(async () => {
    await world?.close();
    await inst?.close();
    await botApi?.close();
    rmSync(backupDir, { recursive: true, force: true });
  });

  /** Links a chat to the owner, so DELETE /users/me/telegram has something to unlink. */
  async function linkOwnerChat(): Promise<void> {
    const code = await eventually(async () => {
      const res = await inst.api.post("/users/me/telegram", undefined, world.owner.token);
      return res.status === 200 && String(res.body.code);
    });
    const from = botApi.calls.length;
    botApi.sendText(77, `/start ${code}`);
    await botApi.waitFor((c) => c.method === "sendMessage" && /^Linked/.test(c.payload.text), from);
  }

  let requestNo = 0;
  async function send(c: Case): Promise<number> {
    let token = c.token ?? world.tokens[c.role];
    // Logging out revokes the token it is sent with: spend a fresh one of the same user.
    if (token && /^POST \/users\/logout(\?|$)/.test(c.url) && c.role !== "unit") {
      token = await freshToken(c.role);
    }
    const headers: Record<string, string> = {};
    if (token) headers["x-auth-token"] = token;
    requestNo++;
    headers["x-forwarded-for"] = `198.18.${(requestNo >> 8) & 255}.${requestNo & 255}`;
    const space = c.url.indexOf(" ");
    const verb = c.url.slice(0, space);
    const path = c.url.slice(space + 1);
    const withBody = c.body !== undefined && verb !== "GET" && verb !== "HEAD";
    if (withBody) headers["content-type"] = c.contentType ?? "application/json";
    const res = await fetch(`${inst.httpUrl}${API_PREFIX}${path}`, {
      method: verb,
      headers,
      body: withBody ? c.body : undefined,
    });
    // An event stream (GET /live) never ends by itself: its status is the answer.
    if (res.headers.get("content-type")?.startsWith("text/event-stream")) {
      await res.body?.cancel();
      return res.status;
    }
    const text = await res.text();
    if (res.status < 300 && verb === "POST" && path.includes("/update_units")) {
      const job = JSON.parse(text).uuid;
      if (job) world.pools.jobs.push(job);
    }
    return res.status;
  }

  async function freshToken(role: string): Promise<string | undefined> {
    const user = role === "admin" ? world.admin : role === "owner" ? world.owner : world.other;
    const res = await inst.api.post("/users/auth", {
      login: user.login,
      password: `pw-${user.login}-secret`,
    });
    return res.body.token;
  }

  /** Inputs a valid request needs that no schema says (passwords, tokens, matching uuids). */
  async function examples(): Promise<Record<string, Example>> {
    const w = world;
    const pw = await newUser(inst.api, "pw");
    const pending = await pendingUser();
    const verifyToken = await signPurposeToken(
      inst.deps.config.secretKey,
      "verify-email",
      w.owner.uuid,
      3600,
    );
    // A reset link the admin makes for a user of its own (confirming it ends that user's sessions).
    const resetting = await newUser(inst.api, "rs");
    const link = await inst.api.post(
      `/users/${resetting.uuid}/password_reset_link`,
      {},
      w.admin.token,
    );
    const resetToken = decodeURIComponent(String(link.body.link).split("#/reset/")[1] ?? "");
    await linkOwnerChat();
    const download = await createDownloadToken(
      inst.deps.database.db,
      w.owner.uuid,
      w.unitUuid,
      "env",
    );
    const yaml = (text: string) => ({ raw: { body: text, contentType: "application/yaml" } });
    const pipe = [
      "active_period:",
      "  type: Permanent",
      "filters:",
      "  type_input_value: Number",
      "processing_policy:",
      "  policy_type: NRecords",
      "  n_records_count: 10",
      "",
    ].join("\n");
    let n = 0;
    return {
      "POST /users/password_reset/confirm": {
        body: { token: resetToken, new_password: "a-brand-new-password" },
      },
      "POST /unit_nodes/check_data_pipe_config": yaml(pipe),
      "POST /unit_nodes/set_data_pipe_config/{uuid}": yaml(pipe),
      "POST /unit_nodes/set_data_pipe_data_csv/{uuid}": {
        raw: {
          body: "state,create_datetime\n1.5,2026-11-30T10:00:00.000Z\n2,2026-11-30T10:01:00.000Z\n",
          contentType: "text/csv",
        },
      },
      "POST /users": {
        get body() {
          n++;
          return { login: `fuzz${n}`, email: `fuzz${n}@example.test`, password: "password-123" };
        },
      },
      "GET /users/verify_email": { query: { token: verifyToken } },
      "POST /users/auth": {
        body: { login: w.owner.login, password: `pw-${w.owner.login}-secret` },
      },
      "POST /users/{uuid}/verify": { params: { uuid: pending } },
      "POST /users/me/password": {
        body: { old_password: `pw-${pw.login}-secret`, new_password: "a-new-password" },
        token: pw.token,
      },
      "POST /federation/grants": {
        body: { node_uuid: w.privateOutputUuid, grantee: "x.example.org" },
      },
      "GET /federation/grants": { query: { node_uuid: w.privateOutputUuid } },
      "POST /repos": { body: { name: "fuzzed-repo", url: w.fixture.url } },
      "PATCH /repos/{uuid}": { body: { name: "renamed-repo" } },
      "POST /repos/{uuid}/update_units": { body: {} },
      "PATCH /units/env/{uuid}": { body: { PUC_WIFI_SSID: "fuzz" } },
      "POST /units/set_state_storage/{uuid}": { body: { state: "fuzz" } },
      "POST /units/send_command_to_input_base_topic/{uuid}": { query: { command: "SchemaUpdate" } },
      "POST /units/{uuid}/update": { body: {} },
      "POST /units": { body: { repo_uuid: w.repoUuid, name: "fuzzed-unit" } },
      "PATCH /units/{uuid}": { body: { visibility: "Public" } },
      "PATCH /unit_nodes/set_state_input/{uuid}": { body: { state: "1" } },
      "PATCH /unit_nodes/{uuid}": { body: { is_rewritable_input: false } },
      "POST /unit_node_edges": {
        body: { output_uuid: w.pools.outputs[1], input_uuid: w.pools.inputs[2] },
      },
      "PATCH /admin/federation": { body: { enabled: true } },
      "PATCH /admin/settings": { body: { registration_mode: "Open" } },
      "PUT /admin/federation/peers/{domain}": { body: { blocked: false } },
      "GET /telegram/downloads/{token}": { params: { token: download } },
      "POST /boards": { body: { name: "fuzzed board", items: [] } },
    };
  }

  /** A user waiting for approval, for POST /users/{uuid}/verify. */
  async function pendingUser(): Promise<string> {
    const admin = world.admin.token;
    await inst.api.patch("/admin/settings", { registration_mode: "ManualApproval" }, admin);
    const reg = await inst.api.post("/users", {
      login: "pending1",
      email: "pending1@example.test",
      password: "password-123",
    });
    await inst.api.patch("/admin/settings", { registration_mode: "Open" }, admin);
    if (reg.status !== 201) throw new Error(`pending user: ${reg.status}`);
    return reg.body.uuid;
  }

  it("every operation: no 5xx, only declared statuses, at least one 2xx; healthy afterwards", async () => {
    const doc = (await inst.api.get("/openapi.json")).body;
    const ops = operationsOf(doc);
    const ordered = [
      ...ops.filter((o) => !DESTRUCTIVE.includes(o.key)),
      ...DESTRUCTIVE.map((k) => ops.find((o) => o.key === k)).filter((o): o is Operation => !!o),
    ];
    expect(ordered).toHaveLength(ops.length);
    const examplesByOp = await examples();
    const findings: Finding[] = [];
    const reached = new Set<string>();
    let sent = 0;
    for (const [i, op] of ordered.entries()) {
      const pools: Pools = DESTRUCTIVE.includes(op.key)
        ? { ...world.pools, ...nonEmpty(world.throwaway) }
        : world.pools;
      const ctx: SchemaContext = {
        components: doc.components.schemas,
        uuids: () => [...pools.nodes, ...pools.units, ...pools.repos, ...pools.users],
      };
      const heavy = HEAVY.has(op.key);
      const cases = casesFor(op, pools, ctx, examplesByOp[op.key], {
        valid: heavy ? 3 : VALID_PER_OP,
        hostile: heavy ? 8 : HOSTILE_PER_OP,
        seed: SEED + i * 7,
      });
      for (const c of cases) {
        const status = await send({ ...c, url: `${op.method} ${c.url}` });
        sent++;
        if (status >= 200 && status < 300) reached.add(op.key);
        if (status >= 500 || !op.declared.has(status)) {
          findings.push({
            op: op.key,
            status,
            note: c.note,
            role: c.role,
            url: c.url,
            body: c.body?.slice(0, 200),
          });
        }
      }
    }
    const unreached = ops.map((o) => o.key).filter((k) => !reached.has(k));
    const summary = summarize(findings);
    expect({ findings: summary, unreached }).toEqual({ findings: [], unreached: [] });
    expect(sent).toBeGreaterThan(1500);
    // Still healthy: the health check, and a user's ordinary request.
    expect((await inst.api.get("/healthz")).status).toBe(200);
    expect((await inst.api.get("/users/me", world.admin.token)).status).toBe(200);
    expect((await inst.api.get(`/units/${world.unitUuid}`, world.owner.token)).status).toBe(200);
  }, 300_000);
});

/** Throwaway pools replace the real ones only where there are throwaways. */
function nonEmpty(p: Pools): Partial<Pools> {
  return Object.fromEntries(Object.entries(p).filter(([, v]) => v.length > 0));
}

/** One line per operation and status, with the first request that showed it. */
function summarize(findings: Finding[]) {
  const seen = new Map<string, Finding & { count: number }>();
  for (const f of findings) {
    const key = `${f.op} -> ${f.status}`;
    const hit = seen.get(key);
    if (hit) hit.count++;
    else seen.set(key, { ...f, count: 1 });
  }
  return [...seen.entries()].map(([key, f]) => ({ key, ...f }));
}
