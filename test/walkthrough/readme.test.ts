import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestInstance, type TestInstance } from "../helpers/instance.ts";

const run = promisify(execFile);

/** The README's walk-through, exactly as a newcomer copies it. */
function walkthroughScript(): string {
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const block =
    /<!-- walkthrough:start -->\s*```bash\n([\s\S]*?)```\s*<!-- walkthrough:end -->/.exec(readme);
  if (!block?.[1]) throw new Error("README has no walkthrough block");
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
    const { stdout } = await run("bash", ["-euo", "pipefail", "-c", walkthroughScript()], {
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
});
