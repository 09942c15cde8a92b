import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { freePort } from "../helpers/ports.ts";

// Cluster mode shares one PostgreSQL between its processes: asked for without
// DATABASE_URL (each process would open its own embedded PGlite), `npm start` refuses
// to start, with the configuration-error exit code and a message that says why.

const MAIN = path.resolve(import.meta.dirname, "../../src/main.ts");

describe("cluster mode configuration", () => {
  it("refuses PEPEUNIT_CLUSTER_REDIS_URL without DATABASE_URL: exit code 2 and a clear message", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "pepeunit-cluster-cfg-"));
    try {
      const child = spawn(process.execPath, [MAIN], {
        env: {
          PATH: process.env.PATH,
          PEPEUNIT_DATA_DIR: path.join(dir, "data"),
          PEPEUNIT_REPOSITORIES_DIR: path.join(dir, "repositories"),
          PEPEUNIT_HTTP_HOST: "127.0.0.1",
          PEPEUNIT_HTTP_PORT: String(await freePort()),
          PEPEUNIT_MQTT_BIND_HOST: "127.0.0.1",
          PEPEUNIT_MQTT_PORT: String(await freePort()),
          PEPEUNIT_LOG_LEVEL: "silent",
          PEPEUNIT_CLUSTER_REDIS_URL: "redis://127.0.0.1:6379",
        },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => {
        stderr += d.toString();
      });
      child.stdout.resume();
      const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
      expect(code, stderr).toBe(2);
      expect(stderr).toMatch(/PEPEUNIT_CLUSTER_REDIS_URL needs DATABASE_URL/);
      // Nothing else: no stack trace, no half-started instance.
      expect(stderr.trim().split("\n")).toHaveLength(1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
