import { execFileSync } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { createIdleTrim, type MemorySample } from "../../src/process-memory.ts";

// src/process-memory.ts: an idle thread gives back the young generation a burst grew,
// and the garbage a burst left in its old generation.

const MB = 2 ** 20;

function trimWith(samples: MemorySample[]) {
  let collections = 0;
  const queue = [...samples];
  const tick = createIdleTrim({
    sample: () => queue.shift() as MemorySample,
    gc: () => collections++,
    baselineBytes: 1 * MB,
  });
  const results = samples.map(() => tick());
  return { results, collections };
}

describe("idle trim", () => {
  it("collects only on an idle tick with a grown young generation", () => {
    const { results, collections } = trimWith([
      { busy: 0.5, youngBytes: 64 * MB, oldBytes: 40 * MB }, // busy: the burst itself
      { busy: 0.03, youngBytes: 64 * MB, oldBytes: 40 * MB }, // still above 2 %
      { busy: 0.001, youngBytes: 64 * MB, oldBytes: 40 * MB }, // idle and grown: collect
      { busy: 0.001, youngBytes: 1 * MB, oldBytes: 40 * MB }, // idle, back to its size: nothing to do
      { busy: 0.001, youngBytes: 2 * MB, oldBytes: 40 * MB }, // one scavenge's growth: not worth it
      { busy: 0.001, youngBytes: 4 * MB, oldBytes: 40 * MB },
    ]);
    expect(results).toEqual([false, false, true, false, false, true]);
    expect(collections).toBe(2);
  });

  it("collects when the old generation grew since it was last seen settled", () => {
    const young = 1 * MB;
    const { results, collections } = trimWith([
      { busy: 0.001, youngBytes: young, oldBytes: 50 * MB }, // settled
      { busy: 0.6, youngBytes: young, oldBytes: 70 * MB }, // a burst: busy
      { busy: 0.001, youngBytes: young, oldBytes: 70 * MB }, // idle, 20 MB more: collect
      { busy: 0.001, youngBytes: young, oldBytes: 62 * MB }, // what the collection left
      { busy: 0.001, youngBytes: young, oldBytes: 63 * MB }, // keep-alives: not worth it
      { busy: 0.001, youngBytes: young, oldBytes: 65 * MB }, // 3 MB over settled: collect
      { busy: 0.001, youngBytes: young, oldBytes: 64 * MB },
    ]);
    expect(results).toEqual([false, false, true, false, false, true, false]);
    expect(collections).toBe(2);
  });

  it("gives a grown young generation's pages back to the system (real V8)", () => {
    // A child process of its own: the burst and the collection must not be vitest's.
    const script = `
      import { createIdleTrim, fullGc, youngGenerationBytes } from ${JSON.stringify(
        path.resolve("src/process-memory.ts"),
      )};
      const baselineBytes = youngGenerationBytes();
      // Objects that survive a scavenge or two: V8 grows the young generation for them.
      let keep = [];
      for (let i = 0; i < 3000; i++) {
        keep.push(Array.from({ length: 2000 }, (_, j) => ({ i, j })));
        if (keep.length > 100) keep.shift();
      }
      keep = [];
      const grown = youngGenerationBytes();
      const rssBefore = process.memoryUsage().rss;
      const tick = createIdleTrim({
        sample: () => ({ busy: 0, youngBytes: youngGenerationBytes(), oldBytes: 0 }),
        gc: fullGc(),
        baselineBytes,
      });
      const collected = tick();
      console.log(JSON.stringify({
        baselineBytes, grown, collected, after: youngGenerationBytes(),
        rssBefore, rssAfter: process.memoryUsage().rss,
      }));`;
    const out = JSON.parse(
      execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" }),
    );
    expect(out.grown).toBeGreaterThan(8 * out.baselineBytes);
    expect(out.collected).toBe(true);
    expect(out.after).toBeLessThanOrEqual(2 * out.baselineBytes);
    // Most of the grown young generation leaves the process's resident memory.
    expect(out.rssBefore - out.rssAfter).toBeGreaterThan(out.grown / 2);
  });

  it("collects the garbage a burst left in the old generation (real V8)", () => {
    const script = `
      import { createIdleTrim, fullGc, oldGenerationBytes, youngGenerationBytes } from ${JSON.stringify(
        path.resolve("src/process-memory.ts"),
      )};
      const gc = fullGc();
      gc();
      const sample = () => ({ busy: 0, youngBytes: youngGenerationBytes(), oldBytes: oldGenerationBytes() });
      const tick = createIdleTrim({ sample, gc, baselineBytes: 64 * 2 ** 20 });
      const settled = tick();
      const before = oldGenerationBytes();
      // Objects that live through scavenges (promoted), then are dropped.
      let keep = [];
      for (let i = 0; i < 40; i++) keep.push(Array.from({ length: 5000 }, (_, j) => ({ i, j })));
      for (let i = 0; i < 4; i++) Array.from({ length: 300000 }, (_, j) => j); // scavenges
      keep = [];
      const grown = oldGenerationBytes();
      const collected = tick();
      console.log(JSON.stringify({ settled, before, grown, collected, after: oldGenerationBytes() }));`;
    const out = JSON.parse(
      execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" }),
    );
    expect(out.settled).toBe(false);
    expect(out.grown - out.before).toBeGreaterThan(4 * MB);
    expect(out.collected).toBe(true);
    expect(out.after - out.before).toBeLessThan(1 * MB);
  });
});
