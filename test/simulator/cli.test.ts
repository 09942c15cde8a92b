import { spawn } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SimulatedUnit } from "../../src/simulator/simulated-unit.ts";
import {
  linkNodes,
  makeUnit,
  makeWorld,
  type World,
  type WorldUnit,
} from "../broker/mqtt-helpers.ts";
import { startTestInstance, type TestInstance } from "../helpers/instance.ts";
import { downloadTgz, nextEvent, startSimulatedUnit } from "./sim-helpers.ts";

// `npm run unit -- --archive <file.tgz>`: the CLI runs a unit from a downloaded
// firmware archive, as a separate process, until SIGTERM.

const CLI = fileURLToPath(new URL("../../src/simulator/cli.ts", import.meta.url));

describe("the unit simulator CLI", () => {
  let inst: TestInstance;
  let world: World;
  let a: WorldUnit;
  let b: WorldUnit;
  let simB: SimulatedUnit;

  beforeAll(async () => {
    inst = await startTestInstance();
    world = await makeWorld(inst);
    a = await makeUnit(inst, world.bob.token, world.repoUuid);
    b = await makeUnit(inst, world.bob.token, world.repoUuid);
    await linkNodes(
      inst,
      world.bob.token,
      a.nodeUuid("Output", "output/pepeunit"),
      b.nodeUuid("Input", "input/pepeunit"),
    );
    simB = await startSimulatedUnit(inst, world.bob.token, b.uuid);
  });
  afterAll(async () => {
    await simB?.stop();
    await inst?.close();
  });

  it("runs a unit from its archive, publishes the given output value and stops on SIGTERM", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "pepeunit-cli-"));
    const archive = path.join(dir, "unit.tgz");
    await writeFile(archive, await downloadTgz(inst, world.bob.token, a.uuid));
    const received = nextEvent(simB, "input", (m) => m.payload.toString() === "cli-42", 30_000);
    const child = spawn(
      process.execPath,
      [
        CLI,
        "--archive",
        archive,
        "--work-dir",
        path.join(dir, "unit"),
        "--mqtt-url",
        inst.mqttUrl,
        "--http-url",
        inst.httpUrl,
        "--output",
        "output/pepeunit=cli-42",
        "--output-every",
        "200",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += String(d);
    });
    child.stderr.on("data", (d) => {
      stderr += String(d);
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
    try {
      const [msg] = await received;
      expect(msg.topic).toBe(a.topic("Output", "output/pepeunit"));
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
    expect(stderr).toContain(`unit ${a.uuid} running version`);
    // Log lines are the device's JSON lines.
    const first = stdout.split("\n").find((l) => l.includes("MQTT connected"));
    expect(JSON.parse(first ?? "{}")).toMatchObject({
      level: "Info",
      text: `MQTT connected as ${a.uuid}`,
    });
  });

  it("refuses to start without unit files and says how to run it", async () => {
    const child = spawn(process.execPath, [CLI], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += String(d);
    });
    const code = await new Promise<number | null>((resolve) =>
      child.once("exit", (c) => resolve(c)),
    );
    expect(code).toBe(2);
    expect(stderr).toContain("give --archive, --env with --schema, or --dir");
    expect(stderr).toContain("Usage: npm run unit");
  });
});
