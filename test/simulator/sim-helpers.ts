import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { unpackFirmware } from "../../src/simulator/firmware-archive.ts";
import {
  createSimulatedUnit,
  type SimulatedUnit,
  type SimulatedUnitEvents,
  type SimulatedUnitOptions,
} from "../../src/simulator/simulated-unit.ts";
import type { TestInstance } from "../helpers/instance.ts";

// Simulated units against a test instance: the firmware archive is downloaded as a
// user would (owner token), unpacked into a fresh directory, and the unit started from it.

/** The raw firmware tgz of a unit, as GET /units/firmware/tgz serves it. */
export async function downloadTgz(inst: TestInstance, token: string, unitUuid: string) {
  const res = await fetch(
    `${inst.httpUrl}/pepeunit/api/v1/units/firmware/tgz/${unitUuid}?wbits=9&level=9`,
    { headers: { "x-auth-token": token } },
  );
  if (res.status !== 200) throw new Error(`firmware: ${res.status} ${await res.text()}`);
  return Buffer.from(await res.arrayBuffer());
}

/** A new directory holding the unit's unpacked firmware. */
export async function firmwareDir(inst: TestInstance, token: string, unitUuid: string) {
  const dir = await mkdtemp(path.join(tmpdir(), "pepeunit-sim-"));
  await unpackFirmware(await downloadTgz(inst, token, unitUuid), dir);
  return dir;
}

/** Downloads, unpacks and starts a simulated unit wired to the test instance's real ports. */
export async function startSimulatedUnit(
  inst: TestInstance,
  ownerToken: string,
  unitUuid: string,
  opts: Partial<SimulatedUnitOptions> = {},
): Promise<SimulatedUnit> {
  const unit = createSimulatedUnit({
    dir: await firmwareDir(inst, ownerToken, unitUuid),
    mqttUrl: inst.mqttUrl,
    httpBaseUrl: inst.httpUrl,
    reconnectMs: 200,
    ...opts,
  });
  await unit.start();
  return unit;
}

/** The next event of this name whose payload matches (past events are not replayed). */
export function nextEvent<K extends keyof SimulatedUnitEvents>(
  unit: SimulatedUnit,
  name: K,
  pred: (...args: SimulatedUnitEvents[K]) => boolean = () => true,
  timeoutMs = 15_000,
): Promise<SimulatedUnitEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      unit.off(name, listener as never);
      reject(new Error(`no ${String(name)} event in ${timeoutMs} ms`));
    }, timeoutMs);
    const listener = (...args: SimulatedUnitEvents[K]) => {
      if (!pred(...args)) return;
      clearTimeout(timer);
      unit.off(name, listener as never);
      resolve(args);
    };
    unit.on(name, listener as never);
  });
}
