import { performance } from "node:perf_hooks";
import type { LeanClient } from "./lean-mqtt.ts";
import { createPacedSender, type PacedPublisher } from "./paced-sender.ts";
import { processStats, untilIdle } from "./process-stats.ts";
import { ms, percentile, sleep } from "./stats.ts";

// The highest sustained rate of a message path (MQTT routing on one instance, or the
// federation relay through two), by steps: each step offers a fixed rate for a few
// seconds with the paced sender's stamped payloads and is sustained when no message
// is lost (DRAIN_MS after the step), none arrives out of order per topic, and the
// backlog stays bounded: when the sending ends, what is still on its way is under
// MAX_LAG_MS worth of the rate. Loss and backlog, not a tail percentile: a noisy
// neighbour's pause does not flip them.

const MAGIC = 0x66656465;
export const MAX_LAG_MS = 500;
/** After a step, messages may still arrive for this long (then they count as lost). */
const DRAIN_MS = 5000;

export type StepResult = {
  sent: number;
  received: number;
  lost: number;
  reordered: number;
  /** Offered messages not yet delivered when the step's sending ended, in ms of the rate. */
  lagMs: number;
  p50: number | null;
  p99: number | null;
  /** Busy share of one core of each measured process, in %, until the last arrival. */
  cpu: number[];
  /** CPU-seconds of each measured process over the same window. */
  cpuSeconds: number[];
};

/**
 * Publishes `rate` messages/s over the senders for `seconds`; the receivers record
 * latency (same clock), loss and order per topic.
 */
export async function stampedFlow(
  pids: number[],
  senders: PacedPublisher[],
  receivers: LeanClient[],
  rate: number,
  seconds: number,
): Promise<StepResult> {
  const runId = (Math.random() * 0xffffffff) >>> 0;
  const capacity = Math.ceil(rate * seconds * 1.05) + 1000;
  const latencies = new Float64Array(capacity);
  const lastSeq = new Map<string, number>();
  let received = 0;
  let reordered = 0;
  let lastArrival = 0;
  for (const r of receivers) {
    r.onMessage = (topic, payload) => {
      if (
        payload.length !== 20 ||
        payload.readUInt32LE(12) !== runId ||
        payload.readUInt32LE(16) !== MAGIC
      )
        return;
      lastArrival = performance.now();
      if (received < capacity) latencies[received] = lastArrival - payload.readDoubleLE(0);
      received++;
      const seq = payload.readUInt32LE(8);
      if (seq <= (lastSeq.get(topic) ?? -1)) reordered++;
      lastSeq.set(topic, seq);
    };
  }
  const before = pids.map((pid) => processStats(pid).cpuSeconds);
  const durationMs = seconds * 1000;
  const start = performance.now();
  const pacer = createPacedSender({ senders, rate, durationMs, runId, magic: MAGIC });
  for (;;) {
    const now = performance.now();
    pacer.sendDue(now, now - start);
    if (now - start >= durationMs) break;
    await sleep(2);
  }
  const sent = pacer.sent();
  const lagMs = ((sent - received) / rate) * 1000;
  const drainUntil = performance.now() + DRAIN_MS;
  while (received < sent && performance.now() < drainUntil) await sleep(10);
  const wallS = (Math.max(lastArrival, start + durationMs) - start) / 1000;
  const cpuSeconds = pids.map((pid, i) => processStats(pid).cpuSeconds - (before[i] ?? 0));
  const cpu = cpuSeconds.map((s) => Math.round((s / wallS) * 100));
  for (const r of receivers) r.onMessage = () => {};
  const samples = latencies.subarray(0, Math.min(received, capacity));
  return {
    sent,
    received,
    lost: sent - received,
    reordered,
    lagMs: Math.round(lagMs),
    p50: percentile(samples, 50),
    p99: percentile(samples, 99),
    cpu,
    cpuSeconds,
  };
}

export const sustained = (r: StepResult) =>
  r.lost === 0 && r.reordered === 0 && r.lagMs <= MAX_LAG_MS;

/** Steps the rate up until a step is not sustained; the last sustained rate. */
export async function maxSustainedRate(opts: {
  label: string;
  steps: number[];
  pids: number[];
  /** Names of the processes in `pids`, for the log. */
  names: string[];
  senders: PacedPublisher[];
  receivers: LeanClient[];
  stepSeconds: number;
}): Promise<{ rate: number; limitedBy: string; last: StepResult | null }> {
  let best = 0;
  let last: StepResult | null = null;
  for (const rate of opts.steps) {
    const r = await stampedFlow(opts.pids, opts.senders, opts.receivers, rate, opts.stepSeconds);
    const ok = sustained(r);
    const cpu = opts.names.map((n, i) => `${n} ${r.cpu[i]}%`).join(" ");
    console.log(
      `    ${opts.label} @ ${rate}/s: sent ${r.sent} lost ${r.lost} reordered ${r.reordered} lag ${r.lagMs} ms p50 ${ms(r.p50)} ms p99 ${ms(r.p99)} ms, cpu: ${cpu}${ok ? "" : "  <- not sustained"}`,
    );
    if (!ok) {
      const why = r.lost
        ? `${r.lost} lost ${DRAIN_MS / 1000} s after ${rate}/s`
        : r.reordered
          ? `${r.reordered} out of order at ${rate}/s`
          : `${r.lagMs} ms behind at the end of ${rate}/s`;
      return { rate: best, limitedBy: why, last: r };
    }
    best = rate;
    last = r;
    await Promise.all(opts.pids.map((pid) => untilIdle(pid)));
  }
  return { rate: best, limitedBy: "highest step", last };
}
