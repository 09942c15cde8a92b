import { CPU_PER_UNIT, usPerUnit, WORK_UNIT } from "../lib/cpu-per-unit.ts";
import { untilIdle } from "../lib/process-stats.ts";
import { record } from "../lib/report.ts";
import { routedPairs } from "../lib/routed-pairs.ts";
import { startBenchServer } from "../lib/server.ts";
import { ms } from "../lib/stats.ts";
import { flow } from "./mqtt.ts";

// The embedded database against PostgreSQL on the device plane's latency (issue 15):
// unit→instance→unit at 1 000 msg/s (one linked pair; every value also goes through
// the ingest's batched writes) on each database, and the event-loop delay of the
// server's main thread over the same window, as perf_hooks.monitorEventLoopDelay reads
// it. The delay comes from the server's own /metrics (prom-client's
// nodejs_eventloop_lag_p99_seconds, a monitorEventLoopDelay histogram that each scrape
// reads and resets): one scrape just before the window, one right after it. The histogram
// records the time between two ticks of a 10 ms timer (prom-client's default
// precision); the figures here are what exceeds those 10 ms: how long the loop was held.
// Goal: PGlite's p99 ≤ 1.5× PostgreSQL's in the same pass.

const RATE = 1_000;
const TOKEN = "bench-loop-metrics";
/** prom-client's eventLoopMonitoringPrecision (src/metrics/ keeps its default). */
const TICK_MS = 10;

type Db = { name: string; url?: string };
type Measured = { p99: number | null; lost: number; eld: Eld };
type Eld = { p50: number | null; p99: number | null; max: number | null };

async function scrapeEld(url: string): Promise<Eld> {
  const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
  if (res.status !== 200) throw new Error(`/metrics: ${res.status}`);
  const text = await res.text();
  const read = (name: string) => {
    const m = new RegExp(`^${name} ([0-9.e+-]+)$`, "m").exec(text);
    return m ? Math.max(0, Number(m[1]) * 1000 - TICK_MS) : null;
  };
  return {
    p50: read("nodejs_eventloop_lag_p50_seconds"),
    p99: read("nodejs_eventloop_lag_p99_seconds"),
    max: read("nodejs_eventloop_lag_max_seconds"),
  };
}

async function measure(db: Db, seconds: number): Promise<Measured> {
  const server = await startBenchServer({
    databaseUrl: db.url,
    env: { PEPEUNIT_MQTT_MAX_MSG_PER_S: "10000000", PEPEUNIT_METRICS_TOKEN: TOKEN },
  });
  try {
    const fleet = await routedPairs(server, "bench-loop", 1);
    try {
      // JIT warm-up and the garbage of connecting are not the figure.
      await flow(fleet.target, fleet.pairs, fleet.receivers, RATE, 3);
      await untilIdle(server.pid);
      await scrapeEld(server.url);
      const r = await flow(fleet.target, fleet.pairs, fleet.receivers, RATE, seconds);
      const eld = await scrapeEld(server.url);
      const cpuUs = usPerUnit(r.cpuSeconds, r.received);
      console.log(
        `  ${db.name}: p50 ${ms(r.p50)} ms p99 ${ms(r.p99)} ms undelivered ${r.lost}; event-loop delay p50 ${ms(eld.p50)} p99 ${ms(eld.p99)} max ${ms(eld.max)} ms; ${cpuUs} µs cpu/msg`,
      );
      record({
        suite: "loop",
        case: "unit→instance→unit @ 1k msg/s, event-loop delay of the main thread",
        database: db.name,
        metric: {
          "p50 ms": ms(r.p50),
          "p99 ms": ms(r.p99),
          undelivered: r.lost,
          "loop delay p50 ms": ms(eld.p50),
          "loop delay p99 ms": ms(eld.p99),
          "loop delay max ms": ms(eld.max),
          [CPU_PER_UNIT]: cpuUs,
          [WORK_UNIT]: "routed message",
        },
      });
      return { p99: r.p99, lost: r.lost, eld };
    } finally {
      fleet.close();
    }
  } finally {
    await server.stop();
  }
}

export async function loopSuite(postgres: () => Promise<Db>, seconds: number): Promise<void> {
  console.log(`\n# Event loop: unit→instance→unit @ ${RATE} msg/s, PGlite vs PostgreSQL`);
  const pg = await measure(await postgres(), seconds);
  const lite = await measure({ name: "pglite" }, seconds);
  const factor = pg.p99 && lite.p99 ? Math.round((lite.p99 / pg.p99) * 100) / 100 : null;
  record({
    suite: "loop",
    case: "unit→instance→unit p99 @ 1k msg/s, PGlite / PostgreSQL",
    database: "pglite",
    metric: {
      "pglite p99 ms": ms(lite.p99),
      "postgres p99 ms": ms(pg.p99),
      "×": factor,
      "pglite loop delay p99 ms": ms(lite.eld.p99),
      "postgres loop delay p99 ms": ms(pg.eld.p99),
    },
    goal: "≤ 1.5×",
    met: factor !== null && factor <= 1.5 && lite.lost === 0 && pg.lost === 0,
  });
}
