import { performance } from "node:perf_hooks";
import v8 from "node:v8";
import { runInNewContext } from "node:vm";

// The instance's own memory, for a small board. V8 grows its young generation when
// a burst of work (a thousand devices connecting, a large history read) fills it, up
// to 128 MB here, and gives it back only when a collection finds the allocation rate
// low, which an idle process runs late or never: 1 000 devices connecting left an
// instance 120 MB larger for 15 s or more. So once a tick finds the process idle with
// a grown young generation, it runs one memory-reducing full collection.

type FullGc = () => void;

/**
 * A full, synchronous, memory-reducing collection ("last-resort": what V8 runs on a
 * low-memory notification; it also shrinks the young generation and returns the freed
 * pages to the system, which a regular one keeps pooled). `gc` is exposed in a
 * throwaway context only, not on this process's global object.
 */
export function fullGc(): FullGc {
  v8.setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as (options: {
    type: "major";
    execution: "sync";
    flavor: "last-resort";
  }) => void;
  return () => gc({ type: "major", execution: "sync", flavor: "last-resort" });
}

/** What the trim decides on, read once per tick. */
export type MemorySample = {
  /** Share of the last tick the event loop was busy (0–1). */
  busy: number;
  /** Bytes the young generation holds (active and reserve semi-spaces). */
  youngBytes: number;
};

export type IdleTrimOptions = {
  sample: () => MemorySample;
  gc: FullGc;
  /** Young generation size that counts as not grown (its size right after startup). */
  baselineBytes: number;
};

/** Busy share of a tick under which the tick counts as idle. */
const IDLE_BELOW = 0.02;

/** The decision, one call per tick; true when it collected. */
export function createIdleTrim(opts: IdleTrimOptions): () => boolean {
  return () => {
    const s = opts.sample();
    // Twice the baseline: one scavenge's worth of growth is not worth a full collection.
    if (s.busy >= IDLE_BELOW || s.youngBytes <= 2 * opts.baselineBytes) return false;
    opts.gc();
    return true;
  };
}

/** The young generation's reserved bytes right now. */
export function youngGenerationBytes(): number {
  let bytes = 0;
  for (const space of v8.getHeapSpaceStatistics()) {
    if (space.space_name === "new_space" || space.space_name === "new_large_object_space")
      bytes += space.space_size;
  }
  return bytes;
}

/** Samples the real process: event-loop utilization since the last tick, young generation. */
function processSampler(): () => MemorySample {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const delta = performance.eventLoopUtilization(now, last);
    last = now;
    return { busy: delta.utilization, youngBytes: youngGenerationBytes() };
  };
}

/** Ticks every `intervalMs` (a tick idle that long counts as idle) for the process's life. */
export function startIdleTrim(gc: FullGc, intervalMs = 5_000): void {
  const tick = createIdleTrim({
    sample: processSampler(),
    gc,
    baselineBytes: youngGenerationBytes(),
  });
  setInterval(tick, intervalMs).unref();
}
