import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.ts";
import type { Database } from "../../src/db/database.ts";
import { startInstance } from "../../src/instance.ts";
import { createTestDatabase } from "../helpers/database.ts";
import { freePort } from "../helpers/ports.ts";

// A database always goes with the data dir whose PEPEUNIT_ENCRYPT_KEY sealed its secrets.
describe("encrypt key check at start-up", () => {
  let database: Database;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database?.close();
  });

  const configFor = async (dataDir: string) =>
    loadConfig({
      PATH: process.env.PATH,
      PEPEUNIT_HTTP_HOST: "127.0.0.1",
      PEPEUNIT_HTTP_PORT: "0",
      PEPEUNIT_MQTT_BIND_HOST: "127.0.0.1",
      PEPEUNIT_MQTT_PORT: String(await freePort()),
      PEPEUNIT_DATA_DIR: dataDir,
      PEPEUNIT_REPOSITORIES_DIR: path.join(dataDir, "repositories"),
    });
  const start = async (dataDir: string) =>
    startInstance(await configFor(dataDir), { database, logger: pino({ level: "silent" }) });

  it("starts again with its own key and refuses another key with a clear message", async () => {
    const own = await mkdtemp(path.join(tmpdir(), "pepeunit-key-"));
    const first = await start(own);
    await first.stop();
    const again = await start(own);
    await again.stop();

    const other = await mkdtemp(path.join(tmpdir(), "pepeunit-key-"));
    const refused = start(other);
    await expect(refused).rejects.toThrow(ConfigError);
    await expect(refused).rejects.toThrow(/PEPEUNIT_ENCRYPT_KEY is not the key this database/);
  });
});
