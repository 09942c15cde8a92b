import { CPU_PER_UNIT, WORK_UNIT } from "../lib/cpu-per-unit.ts";
import { ownDatabase } from "../lib/own-database.ts";
import { processStats, untilIdle } from "../lib/process-stats.ts";
import { record } from "../lib/report.ts";
import { type RoutedPairs, routedPairs } from "../lib/routed-pairs.ts";
import { type BenchServer, startBenchServer } from "../lib/server.ts";
import { sleep } from "../lib/stats.ts";
import { flow } from "./mqtt.ts";

// What Prometheus metrics (src/metrics/) cost the MQTT routing hot path: server
// CPU-seconds per 100 000 routed messages at a fixed 5 000 msg/s (10 unit pairs), one
// server with PEPEUNIT_METRICS_TOKEN and one without, in alternating order
// (off/on, on/off, ...), median of 5 runs each, and the median of the 5 paired ratios
// (each pair ran back to back, so it shares the machine's load of the moment). The metrics server is scraped every
// SCRAPE_MS during its runs (Prometheus' default is 15 s: this is the harsher case).
// Each server has its own PostgreSQL database. Goal: ≤ 1.05×.

const PAIRS = 10;
const RATE = 5_000;
const MESSAGES = 100_000;
const RUNS = 5;
const SCRAPE_MS = 5_000;
const TOKEN = "bench-metrics-token";
const SCRAPE_COST_SAMPLES = 100;
/**
 * BENCH_METRICS_CONTROL=1: both servers without metrics (an A/A run): the ratio it
 * reports is what two server processes differ by on this machine, the noise floor.
 */
const CONTROL = process.env.BENCH_METRICS_CONTROL === "1";

type Mode = "off" | "on";

type Side = { server: BenchServer; fleet: RoutedPairs };

export async function metricsSuite(pgUrl: string): Promise<void> {
  console.log(
    `\n# Metrics cost on routed messages: PEPEUNIT_METRICS_TOKEN set vs unset${CONTROL ? " (CONTROL: both unset)" : ""}`,
  );
  const sides: Partial<Record<Mode, Side>> = {};
  try {
    for (const mode of ["off", "on"] as const) {
      const server = await startBenchServer({
        databaseUrl: await ownDatabase(pgUrl, `pepeunit_bench_metrics_${mode}`),
        env: {
          PEPEUNIT_MQTT_MAX_MSG_PER_S: "10000000",
          ...(mode === "on" && !CONTROL ? { PEPEUNIT_METRICS_TOKEN: TOKEN } : {}),
        },
      });
      sides[mode] = { server, fleet: await routedPairs(server, `bench-metrics-${mode}`, PAIRS) };
    }
    const on = sides.on as Side;
    const off = sides.off as Side;
    let scrapes = 0;
    let scrapeBytes = 0;
    const scrape = async () => {
      if (CONTROL) return;
      const res = await fetch(`${on.server.url}/metrics`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      if (res.status !== 200) throw new Error(`/metrics: ${res.status}`);
      scrapeBytes = (await res.text()).length;
      scrapes++;
    };
    await scrape();
    const route = (side: Side, seconds: number) =>
      flow(side.fleet.target, side.fleet.pairs, side.fleet.receivers, RATE, seconds);
    for (const side of [off, on]) await route(side, 3); // warm-up
    const seconds = MESSAGES / RATE;
    const perRun: Record<Mode, number[]> = { off: [], on: [] };
    let lost = 0;
    for (let run = 0; run < RUNS; run++) {
      // off/on, on/off, ...: a drift of the machine's load weighs on both alike.
      const order = run % 2 === 0 ? (["off", "on"] as const) : (["on", "off"] as const);
      for (const mode of order) {
        const side = mode === "on" ? on : off;
        await untilIdle(side.server.pid);
        const scraper =
          mode === "on" ? setInterval(() => void scrape().catch(() => {}), SCRAPE_MS) : null;
        const before = processStats(side.server.pid).cpuSeconds;
        const r = await route(side, seconds);
        const cpu = processStats(side.server.pid).cpuSeconds - before;
        if (scraper) clearInterval(scraper);
        lost += r.lost;
        const per100k = (cpu / r.sent) * 100_000;
        perRun[mode].push(per100k);
        console.log(
          `    run ${run + 1} metrics ${mode}: ${r.sent} msgs, server ${cpu.toFixed(2)} cpu-s (${per100k.toFixed(2)} per 100k), undelivered ${r.lost}`,
        );
        await sleep(300);
      }
    }
    // What one scrape costs the server, idle: the part of the overhead that scales with
    // the scrape interval rather than with the traffic.
    await untilIdle(on.server.pid);
    const scrapesBefore = processStats(on.server.pid).cpuSeconds;
    for (let i = 0; i < SCRAPE_COST_SAMPLES; i++) await scrape();
    const scrapeMs =
      ((processStats(on.server.pid).cpuSeconds - scrapesBefore) / SCRAPE_COST_SAMPLES) * 1000;
    const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] ?? 0;
    const offCpu = median(perRun.off);
    const onCpu = median(perRun.on);
    const factor = offCpu > 0 ? Math.round((onCpu / offCpu) * 100) / 100 : null;
    const paired = median(perRun.on.map((v, i) => v / (perRun.off[i] ?? Number.NaN)));
    record({
      suite: "metrics",
      case: CONTROL
        ? `server cpu-s per 100k routed msgs @ ${RATE}/s, control: two servers without metrics`
        : `server cpu-s per 100k routed msgs @ ${RATE}/s, metrics on (scraped every ${SCRAPE_MS / 1000} s) vs off`,
      database: "postgres",
      metric: {
        "off cpu-s": Math.round(offCpu * 100) / 100,
        "on cpu-s": Math.round(onCpu * 100) / 100,
        "×": factor,
        "paired ×": Math.round(paired * 100) / 100,
        undelivered: lost,
        scrapes,
        "scrape bytes": scrapeBytes,
        "cpu-ms per scrape": Math.round(scrapeMs * 10) / 10,
        // With metrics on (and scraped): the production case.
        [CPU_PER_UNIT]: Number(((onCpu * 1e6) / 100_000).toPrecision(3)),
        [WORK_UNIT]: "routed message (metrics on)",
      },
      goal: "≤ 1.05×",
      met: factor !== null && factor <= 1.05,
    });
  } finally {
    for (const side of Object.values(sides)) {
      side.fleet.close();
      await side.server.stop();
    }
  }
}
