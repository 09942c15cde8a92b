import { processStats } from "./process-stats.ts";

// Issue 15: "no bench case gets worse" is judged on server CPU per unit of work, the
// figure a noisy neighbour moves least (latency and rates follow the machine's load; the
// CPU one request or message costs barely does). Every suite's main rows carry it under
// this one name, with the unit named beside it, so bench/compare.ts can line one commit's
// rows up against another's.

/** Server CPU in µs per unit of work (µs, not ms: report.ts rounds medians to 3 decimals). */
export const CPU_PER_UNIT = "server_cpu_us_per_unit";
/** What one unit of work is ("request answered", "message delivered", …). */
export const WORK_UNIT = "work_unit";

/** µs of CPU per unit, 3 significant digits; null when no work was done. */
export function usPerUnit(cpuSeconds: number | null | undefined, units: number): number | null {
  if (cpuSeconds === null || cpuSeconds === undefined || !(units > 0)) return null;
  return Number(((cpuSeconds * 1e6) / units).toPrecision(3));
}

/** The row's metric pair: `server_cpu_us_per_unit` and `work_unit`. */
export function cpuPerUnit(
  cpuSeconds: number | null | undefined,
  units: number,
  unit: string,
): Record<string, number | string | null> {
  return { [CPU_PER_UNIT]: usPerUnit(cpuSeconds, units), [WORK_UNIT]: unit };
}

/** Starts counting the processes' CPU; the returned function gives the seconds spent since. */
export function cpuMeter(pids: number[]): () => number {
  const before = pids.map((pid) => processStats(pid).cpuSeconds);
  return () => pids.reduce((s, pid, i) => s + processStats(pid).cpuSeconds - (before[i] ?? 0), 0);
}

/** The median of numbers (the lower middle of an even count), null for none. */
export function medianOf(xs: Array<number | null>): number | null {
  const ns = xs.filter((x): x is number => x !== null).sort((a, b) => a - b);
  return ns.length ? (ns[(ns.length - 1) >> 1] as number) : null;
}
