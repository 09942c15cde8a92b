import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import { loadConfig } from "../../src/config.ts";
import type { Database } from "../../src/db/database.ts";
import { type Instance, startInstance } from "../../src/instance.ts";
import { createTestDatabase } from "./database.ts";
import { type ApiClient, createApiClient, TEST_SCRYPT_LOG_N } from "./instance.ts";
import { freePort } from "./ports.ts";

// Federated test instances: each on its own loopback port chosen beforehand, with
// PEPEUNIT_DOMAIN=127.0.0.1:<port> (its actors' URLs and its topics' first level),
// local peers allowed, and short retry back-off. restart() stops the instance and
// starts a new one on the same data dir, database and ports.

export type FedInstance = {
  inst: Instance;
  api: ApiClient;
  domain: string;
  baseUrl: string;
  mqttUrl: string;
  restart(): Promise<void>;
  /** Stops the instance but keeps its data (restart() starts it again). */
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
};

export async function startFedInstance(env: Record<string, string> = {}): Promise<FedInstance> {
  const dir = await mkdtemp(path.join(tmpdir(), "pepeunit-fed-"));
  const database: Database = await createTestDatabase();
  const port = await freePort();
  const mqttPort = await freePort();
  const domain = `127.0.0.1:${port}`;
  const config = loadConfig({
    PATH: process.env.PATH,
    PEPEUNIT_DOMAIN: domain,
    PEPEUNIT_HTTP_TYPE: "http",
    PEPEUNIT_HTTP_HOST: "127.0.0.1",
    PEPEUNIT_HTTP_PORT: String(port),
    PEPEUNIT_MQTT_BIND_HOST: "127.0.0.1",
    PEPEUNIT_MQTT_HOST: "127.0.0.1",
    PEPEUNIT_MQTT_PORT: String(mqttPort),
    PEPEUNIT_DATA_DIR: path.join(dir, "data"),
    PEPEUNIT_REPOSITORIES_DIR: path.join(dir, "repositories"),
    PEPEUNIT_GIT_ALLOW_LOCAL: "true",
    PEPEUNIT_FEDERATION_ALLOW_LOCAL: "true",
    PEPEUNIT_FEDERATION_RETRY_MAX_S: "1",
    PEPEUNIT_LOG_LEVEL: process.env.PEPEUNIT_TEST_LOG_LEVEL ?? "silent",
    PEPEUNIT_SCRYPT_LOG_N: TEST_SCRYPT_LOG_N,
    ...env,
  });
  let inst: Instance | null = null;
  const start = async () => {
    inst = await startInstance(config, { database, logger: pino({ level: config.logLevel }) });
  };
  const stop = async () => {
    const i = inst;
    inst = null;
    await i?.stop();
  };
  await start();
  const fi: FedInstance = {
    get inst() {
      if (!inst) throw new Error("instance stopped");
      return inst;
    },
    api: createApiClient(`http://${domain}`),
    domain,
    baseUrl: `http://${domain}`,
    mqttUrl: `mqtt://127.0.0.1:${mqttPort}`,
    async restart() {
      await stop();
      await start();
    },
    stop,
    start,
    async close() {
      await stop();
      await database.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return fi;
}
