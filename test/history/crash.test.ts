import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDatabase } from "../../src/db/database.ts";
import { rowsOf } from "../../src/federation/kv-store.ts";
import { connectClient, eventually, makeUnit, makeWorld } from "../broker/mqtt-helpers.ts";
import { createPostgresDatabase, testDbKind } from "../helpers/database.ts";
import { createApiClient } from "../helpers/instance.ts";
import { freePort } from "../helpers/ports.ts";

// `kill -9` of a real `node src/main.ts`: values accepted more than one flush interval
// before the crash are in the database after a restart, records and open windows alike.

const FLUSH_MS = 200;

describe("value history after kill -9", () => {
  let dir: string;
  let env: Record<string, string>;
  let child: ChildProcess | null = null;
  let pg: { url: string; drop(): Promise<void> } | null = null;
  let baseUrl: string;

  async function start() {
    const proc = spawn(process.execPath, ["src/main.ts"], { env, stdio: "ignore" });
    child = proc;
    const api = createApiClient(baseUrl);
    await eventually(async () => {
      if (proc.exitCode !== null) throw new Error(`the instance exited with ${proc.exitCode}`);
      return (await api.get("/healthz").catch(() => null))?.status === 200;
    }, 120_000);
  }

  async function stop(signal: NodeJS.Signals) {
    const proc = child;
    child = null;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((resolve) => proc.once("exit", resolve));
    proc.kill(signal);
    await exited;
  }

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "pepeunit-crash-"));
    const [httpPort, mqttPort] = [await freePort(), await freePort()];
    baseUrl = `http://127.0.0.1:${httpPort}`;
    if (testDbKind() === "postgres") pg = await createPostgresDatabase();
    env = {
      PATH: process.env.PATH ?? "",
      PEPEUNIT_DOMAIN: `127.0.0.1:${httpPort}`,
      PEPEUNIT_HTTP_HOST: "127.0.0.1",
      PEPEUNIT_HTTP_PORT: String(httpPort),
      PEPEUNIT_MQTT_BIND_HOST: "127.0.0.1",
      PEPEUNIT_MQTT_PORT: String(mqttPort),
      PEPEUNIT_DATA_DIR: path.join(dir, "data"),
      PEPEUNIT_REPOSITORIES_DIR: path.join(dir, "repositories"),
      PEPEUNIT_GIT_ALLOW_LOCAL: "true",
      PEPEUNIT_LOG_LEVEL: "silent",
      PEPEUNIT_HISTORY_FLUSH_MS: String(FLUSH_MS),
      ...(pg ? { DATABASE_URL: pg.url } : {}),
    };
    await start();
  }, 180_000);
  afterAll(async () => {
    await stop("SIGKILL");
    await pg?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it("keeps what was flushed before the crash", { timeout: 240_000 }, async () => {
    const api = createApiClient(baseUrl);
    const world = await makeWorld({ api });
    const unit = await makeUnit({ api }, world.bob.token, world.repoUuid);
    const relay = unit.nodeUuid("Input", "relay");
    const temperature = unit.nodeUuid("Output", "temperature");
    const pipe = async (node: string, policy: string) => {
      const yaml = `active_period: {type: Permanent}\nfilters: {type_input_value: Number}\nprocessing_policy: ${policy}\n`;
      const set = await fetch(
        `${baseUrl}/pepeunit/api/v1/unit_nodes/set_data_pipe_config/${node}`,
        {
          method: "POST",
          headers: { "content-type": "application/yaml", "x-auth-token": world.bob.token },
          body: yaml,
        },
      );
      expect(set.status).toBe(204);
      expect(
        (await api.patch(`/unit_nodes/${node}`, { is_data_pipe_active: true }, world.bob.token))
          .status,
      ).toBe(200);
    };
    await pipe(relay, "{policy_type: NRecords, n_records_count: 1024}");
    await pipe(
      temperature,
      "{policy_type: Aggregation, time_window_size: 86400, aggregation_functions: Sum}",
    );

    // A device's values into a day-long window, then set-input values as records.
    const device = await connectClient(`mqtt://127.0.0.1:${env.PEPEUNIT_MQTT_PORT}`, unit.token);
    for (let v = 1; v <= 20; v++)
      await device.publishAsync(unit.topic("Output", "temperature"), String(v), { qos: 1 });
    await device.endAsync();
    for (let v = 1; v <= 20; v++) {
      expect(
        (
          await api.patch(
            `/unit_nodes/set_state_input/${relay}`,
            { state: String(v) },
            world.bob.token,
          )
        ).status,
      ).toBe(200);
    }
    // Records are written after window values in a flush: once they show, both are stored.
    await eventually(
      async () =>
        (await api.get(`/unit_nodes/get_data_pipe_data?uuid=${relay}&limit=100`)).body.count === 20,
      30_000,
    );

    await stop("SIGKILL");
    await start();
    const after = await api.get(`/unit_nodes/get_data_pipe_data?uuid=${relay}&limit=100`);
    expect(after.body.pipe_data.map((r: { state: string }) => Number(r.state))).toEqual(
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    await stop("SIGTERM");

    // The window may have closed meanwhile (a day boundary): its values are open or summed.
    const database = await createDatabase(
      pg ? { url: pg.url } : { pgliteDir: path.join(dir, "data", "pglite") },
    );
    try {
      const [row] = rowsOf<{ total: number | string }>(
        await database.db.execute(sql`
          select coalesce((select sum(value) from history_window_values where node_uuid = ${temperature}::uuid), 0)
            + coalesce((select sum(state) from history_aggregates where node_uuid = ${temperature}::uuid), 0) as total`),
      );
      expect(Number(row?.total)).toBe(210);
    } finally {
      await database.close();
    }
  });
});
