import { CPU_PER_UNIT, WORK_UNIT } from "../lib/cpu-per-unit.ts";
import { processStats, untilIdle } from "../lib/process-stats.ts";
import { record } from "../lib/report.ts";
import { routedPairs } from "../lib/routed-pairs.ts";
import { startBenchServer } from "../lib/server.ts";
import { sleep } from "../lib/stats.ts";
import { flow } from "./mqtt.ts";

// The live entity-state channel (GET /live, src/live/) must cost routed device traffic
// nothing: values never go through it. Server CPU-seconds per 100 000 routed messages at
// a fixed 5 000 msg/s (10 unit pairs), with 50 open live sessions (half a user, half
// anonymous) and with none, in alternating order (none/live, live/none, none/live),
// median of 3 runs each. Goal: ≤ 1.1×.

const PAIRS = 10;
const SESSIONS = 50;
const RATE = 5_000;
const MESSAGES = 100_000;
const RUNS = 3;

/** Opens `n` live streams and reads (discards) what they receive; close() ends them. */
async function openSessions(url: string, n: number, token: string) {
  const abort = new AbortController();
  let events = 0;
  await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const res = await fetch(`${url}/pepeunit/api/v1/live`, {
        headers: i % 2 === 0 ? { "x-auth-token": token } : {},
        signal: abort.signal,
      });
      if (res.status !== 200 || !res.body) throw new Error(`live: ${res.status}`);
      const reader = res.body.getReader();
      // The first chunk is the hello: the session is registered.
      await reader.read();
      void (async () => {
        for (;;) {
          const r = await reader.read().catch(() => ({ done: true }) as const);
          if (r.done) return;
          events++;
        }
      })();
    }),
  );
  return {
    events: () => events,
    close: () => abort.abort(),
  };
}

export async function liveSuite(database: { name: string; url?: string }): Promise<void> {
  console.log(
    `\n# Live channel cost on ${database.name}: routed messages with and without sessions`,
  );
  const server = await startBenchServer({
    databaseUrl: database.url,
    env: { PEPEUNIT_MQTT_MAX_MSG_PER_S: "10000000" },
  });
  const closers: Array<() => void> = [];
  try {
    const fleet = await routedPairs(server, "bench-live", PAIRS);
    closers.push(() => fleet.close());
    const { target, pairs, receivers: recvClients } = fleet;
    await flow(target, pairs, recvClients, RATE, 3); // warm-up
    const seconds = MESSAGES / RATE;
    const perRun: Record<"none" | "live", number[]> = { none: [], live: [] };
    let lost = 0;
    let liveEvents = 0;
    for (let run = 0; run < RUNS; run++) {
      // none/live, live/none, ...: a drift of the machine's load weighs on both alike.
      const order = run % 2 === 0 ? (["none", "live"] as const) : (["live", "none"] as const);
      for (const mode of order) {
        const sessions =
          mode === "live" ? await openSessions(server.url, SESSIONS, fleet.token) : null;
        await untilIdle(server.pid);
        const before = processStats(server.pid).cpuSeconds;
        const r = await flow(target, pairs, recvClients, RATE, seconds);
        const cpu = processStats(server.pid).cpuSeconds - before;
        lost += r.lost;
        const per100k = (cpu / r.sent) * 100_000;
        perRun[mode].push(per100k);
        liveEvents += sessions?.events() ?? 0;
        sessions?.close();
        console.log(
          `    run ${run + 1} ${mode === "live" ? `${SESSIONS} live sessions` : "no sessions"}: ${r.sent} msgs, server ${cpu.toFixed(2)} cpu-s (${per100k.toFixed(2)} per 100k), undelivered ${r.lost}`,
        );
        await sleep(300);
      }
    }
    const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] ?? 0;
    const none = median(perRun.none);
    const live = median(perRun.live);
    const factor = none > 0 ? Math.round((live / none) * 100) / 100 : null;
    record({
      suite: "live",
      case: `server cpu-s per 100k routed msgs @ ${RATE}/s, ${SESSIONS} live sessions vs none`,
      database: database.name,
      metric: {
        "none cpu-s": Math.round(none * 100) / 100,
        "live cpu-s": Math.round(live * 100) / 100,
        "×": factor,
        undelivered: lost,
        "live messages seen": liveEvents,
        // With the sessions open: the production case.
        [CPU_PER_UNIT]: Number(((live * 1e6) / 100_000).toPrecision(3)),
        [WORK_UNIT]: "routed message (live sessions open)",
      },
      goal: "≤ 1.1×",
      met: factor !== null && factor <= 1.1,
    });
  } finally {
    for (const c of closers) c();
    await server.stop();
  }
}
