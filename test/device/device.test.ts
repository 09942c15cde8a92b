import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SimulatedUnit } from "../../src/simulator/simulated-unit.ts";
import {
  eventually,
  linkNodes,
  makeUnit,
  makeWorld,
  type World,
  type WorldUnit,
} from "../broker/mqtt-helpers.ts";
import { startTestInstance, type TestInstance } from "../helpers/instance.ts";
import { nextEvent, startSimulatedUnit } from "../simulator/sim-helpers.ts";

// A non-Node device: device_emulator.py (CPython, standard library only) speaks the
// byte formats and raw MQTT 3.1.1 exactly as the MicroPython client does, against a
// real instance. Its unit P is linked both ways with simulated units:
// P.output/pepeunit → B.input/pepeunit and C.output/pepeunit → P.input/pepeunit.

const SCRIPT = fileURLToPath(new URL("./device_emulator.py", import.meta.url));

// `any`: the emulator's JSON lines; the test asserts the fields it reads.
type Line = { event: string; [key: string]: any };

function runEmulator(args: string[]) {
  const child: ChildProcess = spawn("python3", [SCRIPT, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (d) => {
    stderr += String(d);
  });
  const lines: Line[] = [];
  const waiters: Array<() => void> = [];
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (text) => {
    lines.push(JSON.parse(text) as Line);
    for (const w of waiters.splice(0)) w();
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => resolve(code)),
  );
  return {
    child,
    exited,
    stderr: () => stderr,
    /** The first line with this event, or an error with what the emulator said instead. */
    async line(event: string, timeoutMs = 20_000): Promise<Line> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = lines.find((l) => l.event === event);
        if (found) return found;
        const failed = lines.find((l) => l.event === "failed");
        if (failed) throw new Error(`emulator failed: ${failed.error}\n${stderr}`);
        if (child.exitCode !== null || Date.now() > deadline) {
          throw new Error(`no "${event}" line; got ${JSON.stringify(lines)}\n${stderr}`);
        }
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 200);
        });
      }
    },
  };
}

describe("a CPython device (standard library, raw MQTT 3.1.1) on a real instance", () => {
  let inst: TestInstance;
  let world: World;
  let p: WorldUnit;
  let b: WorldUnit;
  let c: WorldUnit;
  let simB: SimulatedUnit;
  let simC: SimulatedUnit;
  let emulator: ReturnType<typeof runEmulator> | undefined;

  beforeAll(async () => {
    inst = await startTestInstance();
    world = await makeWorld(inst);
    p = await makeUnit(inst, world.bob.token, world.repoUuid);
    b = await makeUnit(inst, world.bob.token, world.repoUuid);
    c = await makeUnit(inst, world.bob.token, world.repoUuid);
    const link = (from: WorldUnit, to: WorldUnit) =>
      linkNodes(
        inst,
        world.bob.token,
        from.nodeUuid("Output", "output/pepeunit"),
        to.nodeUuid("Input", "input/pepeunit"),
      );
    await link(p, b);
    await link(c, p);
    simB = await startSimulatedUnit(inst, world.bob.token, b.uuid);
    simC = await startSimulatedUnit(inst, world.bob.token, c.uuid);
  });
  afterAll(async () => {
    emulator?.child.kill();
    await simB?.stop();
    await simC?.stop();
    await inst?.close();
  });

  it("downloads and unpacks its firmware, connects, subscribes, publishes and receives like MicroPython", async () => {
    const fromPython = nextEvent(simB, "input", (m) => m.payload.toString() === "py-42", 30_000);
    emulator = runEmulator([
      "--base-url",
      inst.httpUrl,
      "--mqtt-host",
      "127.0.0.1",
      "--token",
      p.token,
      "--value",
      "py-42",
    ]);

    const ready = await emulator.line("ready");
    // Archive contents as MicroPython names them (first two characters dropped).
    expect(ready.files).toContain("env.json");
    expect(ready.files).toContain("schema.json");
    expect(ready.files).toContain("main.py");
    expect(ready.files).not.toContain("env_example.json");
    // env.json names the broker's real port; every input topic was granted QoS 0.
    expect(ready.mqtt_port).toBe(inst.broker.tcpPort);
    expect(ready.topics).toContain(c.topic("Output", "output/pepeunit"));
    expect(ready.topics).toContain(p.base("input_base_topic", "update/pepeunit"));
    expect(ready.granted.every((g: number) => g === 0)).toBe(true);

    // Its QoS 1 output value reached the linked unit through the instance.
    const [msg] = await fromPython;
    expect(msg.name).toBe("input/pepeunit");

    // Its QoS 0 state was ingested with the running commit.
    const seen = await eventually(async () => {
      const res = await inst.api.get(`/units/${p.uuid}`, world.bob.token);
      return res.body.current_commit ? res.body : null;
    });
    expect(seen.current_commit).toBe(ready.commit);
    expect(seen.last_state.freq).toBe(160000000);

    // A value on a linked output reaches it.
    await simC.publishOutput("output/pepeunit", "to-python");
    const input = await emulator.line("input");
    expect(input.topic).toBe(c.topic("Output", "output/pepeunit"));
    expect(input.payload).toBe("to-python");
    expect(await emulator.exited).toBe(0);
  });
});
