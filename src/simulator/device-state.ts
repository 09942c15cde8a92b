import { statfsSync } from "node:fs";

// The state a unit reports on `state/pepeunit` (device-protocol §4): the keys of the
// published clients, with values a Node process can honestly give.

export type DeviceState = {
  millis: number;
  mem_free: number;
  mem_alloc: number;
  freq: number;
  ifconfig: string[];
  statvfs: number[];
  pu_commit_version: string;
};

/** A plausible ESP32 clock; a simulator has no CPU frequency of its own to report. */
const FREQ_HZ = 240_000_000;

/** `os.statvfs('/')` shape: bsize, frsize, blocks, bfree, bavail, files, ffree, favail, flag, namemax. */
function statvfs(dir: string): number[] {
  try {
    const s = statfsSync(dir);
    return [s.bsize, s.bsize, s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.ffree, 0, 255];
  } catch {
    return [4096, 4096, 0, 0, 0, 0, 0, 0, 0, 255];
  }
}

export function deviceState(dir: string, commit: string): DeviceState {
  const mem = process.memoryUsage();
  return {
    // MicroPython reports its clock's epoch milliseconds here.
    millis: Date.now(),
    mem_free: Math.max(0, mem.heapTotal - mem.heapUsed),
    mem_alloc: mem.heapUsed,
    freq: FREQ_HZ,
    ifconfig: ["127.0.0.1", "255.0.0.0", "127.0.0.1", "127.0.0.1"],
    statvfs: statvfs(dir),
    pu_commit_version: commit,
  };
}

export function freeMemory(): number {
  const mem = process.memoryUsage();
  return Math.max(0, mem.heapTotal - mem.heapUsed);
}
