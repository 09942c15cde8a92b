import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";

/** RSS (bytes) and CPU seconds (user+system) of a process, read from /proc. */
export function processStats(pid: number): { rssBytes: number; cpuSeconds: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name (which may contain spaces) start after the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  return { rssBytes: rssKb * 1024, cpuSeconds: ticks / 100 };
}

/** Waits (at most 60 s) until a process uses under 5 % of a core over half a second. */
export async function untilIdle(pid: number): Promise<void> {
  const deadline = performance.now() + 60_000;
  while (performance.now() < deadline) {
    const before = processStats(pid).cpuSeconds;
    await new Promise((r) => setTimeout(r, 500));
    if (processStats(pid).cpuSeconds - before < 0.025) return;
  }
}

/**
 * CPU seconds of this process's children that have exited and been waited for
 * (/proc/self/stat cutime + cstime): what a short-lived child such as the backup CLI cost.
 */
export function exitedChildrenCpuSeconds(): number {
  const stat = readFileSync("/proc/self/stat", "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[13]) + Number(fields[14])) / 100;
}
