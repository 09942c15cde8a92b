import { execFile, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestInstance, type TestInstance } from "../helpers/instance.ts";

const run = promisify(execFile);

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** A marked bash block of the README, exactly as a newcomer copies it. */
function readmeBlock(name: string): string {
  const readme = readFileSync(path.join(ROOT, "README.md"), "utf8");
  const block = new RegExp(
    `<!-- ${name}:start -->\\s*\`\`\`bash\\n([\\s\\S]*?)\`\`\`\\s*<!-- ${name}:end -->`,
  ).exec(readme);
  if (!block?.[1]) throw new Error(`README has no ${name} block`);
  return block[1];
}

describe("README walk-through", () => {
  let inst: TestInstance;
  let demo: string;
  beforeAll(async () => {
    inst = await startTestInstance();
    demo = mkdtempSync(path.join(tmpdir(), "pepeunit-walkthrough-"));
  });
  afterAll(async () => {
    await inst?.close();
    rmSync(demo, { recursive: true, force: true });
  });

  it("runs verbatim against a fresh instance and yields archives", async () => {
    const { stdout } = await run("bash", ["-euo", "pipefail", "-c", readmeBlock("walkthrough")], {
      env: {
        PATH: process.env.PATH,
        HOME: demo,
        PEPEUNIT_API: `${inst.httpUrl}/pepeunit/api/v1`,
        DEMO: path.join(demo, "repo"),
      },
      timeout: 60_000,
    });
    expect(stdout).toContain("main");
    // The relay's input lists its own topic, then the sensor's linked output.
    expect(stdout).toMatch(
      /localhost:8080\/[0-9a-f-]{36}\/pepeunit[\s\S]*localhost:8080\/[0-9a-f-]{36}\/pepeunit/,
    );
    // tar -tf lists the archive: firmware plus generated env.json and schema.json, no templates.
    expect(stdout).toContain("./env.json");
    expect(stdout).toContain("./schema.json");
    expect(stdout).toContain("./main.py");
    expect(stdout).not.toContain("env_example.json\n");
  });

  it("runs the README's simulator command verbatim: the relay publishes a value at once", async () => {
    const relay = readFileSync(path.join(demo, "repo", "relay.tgz"));
    expect(relay.length).toBeGreaterThan(0);
    const value = new Promise<{ unitUuid: string; payload: Buffer }>((resolve) => {
      inst.deps.events.once("unit-node.value", resolve);
    });
    // Its own process group: npm, the shell and the simulator stop together.
    const child = spawn("bash", ["-euo", "pipefail", "-c", readmeBlock("simulator")], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: demo, DEMO: path.join(demo, "repo") },
      stdio: ["ignore", "ignore", "pipe"],
      detached: true,
    });
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += String(d);
    });
    const exited = new Promise((resolve) => child.once("exit", resolve));
    try {
      const got = await Promise.race([
        value,
        exited.then(() => Promise.reject(new Error(`the simulator exited: ${stderr}`))),
      ]);
      // A temperature, the relay's only output, generated without any flag.
      expect(Number(got.payload.toString())).toBeGreaterThan(-20);
    } finally {
      if (child.pid) process.kill(-child.pid, "SIGTERM");
      await exited;
    }
  });
});
