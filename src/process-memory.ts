import { performance } from "node:perf_hooks";
import v8 from "node:v8";
import { runInNewContext } from "node:vm";

// The instance's own memory, for a small board. V8 grows its young generation when
// a burst of work (a thousand devices connecting, a large history read) fills it, up
// to 128 MB here, and gives it back only when a collection finds the allocation rate
// low, which an idle process runs late or never: 1 000 devices connecting left an
// instance 120 MB larger for 15 s or more. The old generation keeps a burst's garbage
// until it next reaches its limit, and a thread that the burst kept busy without a full
// collection never starts V8's own memory reducer: after 1 000 devices connected, the
// PGlite thread held 4 MB of it for good. So once a tick finds a thread idle with a
// grown young generation, or an old generation that grew since the last tick that saw
// it settled, it runs one memory-reducing full collection.

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
  /** Bytes in use outside the young generation (live and not yet collected). */
  oldBytes: number;
};

export type IdleTrimOptions = {
  sample: () => MemorySample;
  gc: FullGc;
  /** Young generation size that counts as not grown (its size right after startup). */
  baselineBytes: number;
};

/** Busy share of a tick under which the tick counts as idle. */
const IDLE_BELOW = 0.02;
/**
 * Old-generation growth worth a full collection. An idle instance's keep-alives and
 * timers promote far less than this between bursts; 1 000 devices connecting, 12 MB.
 */
export const OLD_GROWTH_BYTES = 2 * 2 ** 20;

/** The decision, one call per tick; true when it collected. */
export function createIdleTrim(opts: IdleTrimOptions): () => boolean {
  // The lowest old generation seen since the last collection: what it holds when settled.
  let settledOld = Number.POSITIVE_INFINITY;
  return () => {
    const s = opts.sample();
    settledOld = Math.min(settledOld, s.oldBytes);
    if (s.busy >= IDLE_BELOW) return false;
    // Twice the baseline: one scavenge's worth of growth is not worth a full collection.
    const youngGrown = s.youngBytes > 2 * opts.baselineBytes;
    const oldGrown = s.oldBytes > settledOld + OLD_GROWTH_BYTES;
    if (!youngGrown && !oldGrown) return false;
    opts.gc();
    settledOld = Number.POSITIVE_INFINITY;
    return true;
  };
}

const isYoung = (space: v8.HeapSpaceInfo) =>
  space.space_name === "new_space" || space.space_name === "new_large_object_space";

/** The young generation's reserved bytes right now. */
export function youngGenerationBytes(): number {
  let bytes = 0;
  for (const space of v8.getHeapSpaceStatistics()) if (isYoung(space)) bytes += space.space_size;
  return bytes;
}

/** Bytes in use in every space but the young generation's. */
export function oldGenerationBytes(): number {
  let bytes = 0;
  for (const space of v8.getHeapSpaceStatistics())
    if (!isYoung(space)) bytes += space.space_used_size;
  return bytes;
}

/** Samples the real process: event-loop utilization since the last tick, young generation. */
function processSampler(): () => MemorySample {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const delta = performance.eventLoopUtilization(now, last);
    last = now;
    return {
      busy: delta.utilization,
      youngBytes: youngGenerationBytes(),
      oldBytes: oldGenerationBytes(),
    };
  };
}

/**
 * Ticks every `intervalMs` (a tick idle that long counts as idle) for the life of the
 * thread it is called on (the main one, or the PGlite thread).
 */
export function startIdleTrim(gc: FullGc, intervalMs = 5_000): void {
  const tick = createIdleTrim({
    sample: processSampler(),
    gc,
    baselineBytes: youngGenerationBytes(),
  });
  setInterval(tick, intervalMs).unref();
}
