import { sql } from "drizzle-orm";
import type { MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import type { Logger } from "pino";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { BrokerStats } from "../broker/broker.ts";
import { DROP_REASONS } from "../broker/mqtt-stats.ts";
import type { DbLike } from "../db/database.ts";
import type { DomainEvents, EventBus } from "../events.ts";
import { rowsOf } from "../federation/kv-store.ts";
import type { DeliveryStats } from "../federation/message-queue.ts";
import type { HistoryWriter } from "../history/history-writer.ts";
import { packageVersion } from "../project-root.ts";
import type { SyncStats } from "../repos/sync-worker.ts";

// Prometheus metrics of one instance, on a registry of its own (tests run several
// instances in one process). The measured modules keep plain counters (a field
// increment on their hot paths) and expose them; everything here reads them when
// Prometheus scrapes, in collect() callbacks. Only HTTP requests (a middleware) and
// OTA outcomes (a domain event) are recorded as they happen.
//
// Labels are bounded by construction: route templates, status codes, fixed reason and
// result sets, client kinds, and at most MAX_PEERS peer domains. Never a uuid.

const LINT_REFUSED = [
  "nodejs_active_handles_total",
  "nodejs_active_requests_total",
  "nodejs_active_resources_total",
];

/** Peers with their own lag series; the rest are folded into peer="other". */
export const MAX_PEERS = 20;

const OTA_STATUS: Record<DomainEvents["unit.update-status"][0]["status"], string> = {
  RequestSent: "request_sent",
  Success: "success",
  Error: "error",
};

export type MetricsOptions = {
  db: DbLike;
  log: Logger;
  events: EventBus;
  databaseKind: string;
};

export type InstanceMetrics = {
  readonly registry: Registry;
  /** Counts and times every HTTP request by method, route template and status. */
  readonly http: MiddlewareHandler;
  observeBroker(stats: BrokerStats): void;
  observeHistory(
    history: Pick<HistoryWriter, "stats" | "queued" | "activePipes" | "droppedValues">,
  ): void;
  observeFederation(stats: DeliveryStats): void;
  observeSyncWorker(stats: SyncStats): void;
  /** The text exposition format. */
  scrape(): Promise<string>;
  stop(): void;
};

type Labels = Record<string, string>;

/**
 * A counter whose value is a running total kept elsewhere: set from `read` at each
 * scrape (reset, then one increment per label set, so a label set never goes stale).
 */
function totalCounter(
  registry: Registry,
  name: string,
  help: string,
  labelNames: string[],
  read: () => Array<[Labels, number]>,
): void {
  new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const [labels, value] of read()) this.inc(labels, value);
    },
  });
}

/** A gauge set from `read` at each scrape; async reads may query the database. */
function readGauge(
  registry: Registry,
  name: string,
  help: string,
  labelNames: string[],
  read: () => Array<[Labels, number]> | Promise<Array<[Labels, number]>>,
): void {
  new Gauge({
    name,
    help,
    labelNames,
    registers: [registry],
    async collect() {
      const values = await read();
      this.reset();
      for (const [labels, value] of values) this.set(labels, value);
    },
  });
}

/** Flush statistics (count, time, last time) of a batching writer. */
function flushFamilies(
  registry: Registry,
  prefix: string,
  what: string,
  stats: () => {
    flushes: number;
    flushErrors: number;
    flushSeconds: number;
    lastFlushSeconds: number;
  },
): void {
  totalCounter(registry, `${prefix}_flushes_total`, `Flushes of the ${what}.`, [], () => [
    [{}, stats().flushes],
  ]);
  totalCounter(
    registry,
    `${prefix}_flush_errors_total`,
    `Flushes of the ${what} that failed (retried).`,
    [],
    () => [[{}, stats().flushErrors]],
  );
  totalCounter(
    registry,
    `${prefix}_flush_seconds_total`,
    `Time spent flushing the ${what}; divided by the flushes: the mean flush time.`,
    [],
    () => [[{}, stats().flushSeconds]],
  );
  readGauge(
    registry,
    `${prefix}_last_flush_seconds`,
    `Duration of the last flush of the ${what}.`,
    [],
    () => [[{}, stats().lastFlushSeconds]],
  );
}

/** Host of a readings queue key (`peer\n<origin>`); null for other keys. */
function peerOfKey(key: string | null): string | null {
  if (!key?.startsWith("peer\n")) return null;
  try {
    return new URL(key.slice(5)).host;
  } catch {
    return null;
  }
}

export function createMetrics(opts: MetricsOptions): InstanceMetrics {
  const { db, log } = opts;
  const registry = new Registry();
  // Process CPU, memory, event-loop lag, GC. Its event-loop and GC monitors stay on for
  // the life of the process (prom-client cannot stop them); one instance per process
  // in production, a handful in tests.
  collectDefaultMetrics({ register: registry });
  // Gauges named like counters (promtool's lint refuses them); the per-type
  // nodejs_active_handles / _requests / _resources say the same.
  for (const name of LINT_REFUSED) registry.removeSingleMetric(name);

  new Gauge({
    name: "pepeunit_info",
    help: "The instance's version and database kind (always 1).",
    labelNames: ["version", "database"],
    registers: [registry],
  }).set({ version: packageVersion(), database: opts.databaseKind }, 1);

  // --- HTTP ---
  const httpLabels = ["method", "route", "status"];
  const requests = new Counter({
    name: "pepeunit_http_requests_total",
    help: "HTTP requests by method, route template and status.",
    labelNames: httpLabels,
    registers: [registry],
  });
  const latency = new Histogram({
    name: "pepeunit_http_request_duration_seconds",
    help: "Time to the response headers, by method, route template and status.",
    labelNames: httpLabels,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const http: MiddlewareHandler = async (c, next) => {
    const started = performance.now();
    await next();
    // The template of the handler that answered (`/pepeunit/api/v1/units/:uuid`), never
    // the URL; "*" when a middleware answered or nothing matched.
    const labels = {
      method: c.req.method,
      route: routePath(c) || "*",
      status: String(c.res.status),
    };
    requests.inc(labels);
    latency.observe(labels, (performance.now() - started) / 1000);
  };

  // --- OTA: outcomes arrive as domain events ---
  const ota = new Counter({
    name: "pepeunit_ota_updates_total",
    help: "Firmware updates by status: request_sent (Update command sent), success, error.",
    labelNames: ["status"],
    registers: [registry],
  });
  for (const status of Object.values(OTA_STATUS)) ota.inc({ status }, 0);
  // Counted where it happened: each process of a cluster exports its own counters.
  const onUpdateStatus = (e: DomainEvents["unit.update-status"][0]) => {
    if (!opts.events.fromOtherProcess(e)) ota.inc({ status: OTA_STATUS[e.status] });
  };
  opts.events.on("unit.update-status", onUpdateStatus);

  /** A database read at scrape time; a failure leaves that family empty, not the scrape. */
  async function query<T>(what: string, statement: ReturnType<typeof sql>): Promise<T[] | null> {
    try {
      return rowsOf<T>(await db.execute(statement));
    } catch (err) {
      log.warn({ err, what }, "metrics: a scrape-time query failed");
      return null;
    }
  }

  return {
    registry,
    http,

    observeBroker(stats) {
      const { mqtt, ingest } = stats;
      readGauge(registry, "pepeunit_mqtt_clients", "Open MQTT connections by kind.", ["kind"], () =>
        Object.entries(stats.clientsByKind()).map(([kind, n]) => [{ kind }, n]),
      );
      totalCounter(
        registry,
        "pepeunit_mqtt_messages_total",
        "MQTT messages: in (publishes received), out (deliveries to subscribers).",
        ["direction"],
        () => [
          [{ direction: "in" }, mqtt.messagesIn],
          [{ direction: "out" }, mqtt.messagesOut],
        ],
      );
      totalCounter(
        registry,
        "pepeunit_mqtt_messages_dropped_total",
        "MQTT messages that reached no one, by reason.",
        ["reason"],
        () => DROP_REASONS.map((reason) => [{ reason }, mqtt.dropped[reason]]),
      );
      totalCounter(
        registry,
        "pepeunit_mqtt_bytes_total",
        "Bytes read from (in) and written to (out) MQTT connections.",
        ["direction"],
        () => [
          [{ direction: "in" }, mqtt.bytesIn],
          [{ direction: "out" }, mqtt.bytesOut],
        ],
      );
      totalCounter(
        registry,
        "pepeunit_ingest_items_total",
        "Device data accepted for writing: variable values, states, log entries.",
        ["kind"],
        () => [
          [{ kind: "value" }, ingest.values],
          [{ kind: "state" }, ingest.states],
          [{ kind: "log" }, ingest.logs],
        ],
      );
      totalCounter(
        registry,
        "pepeunit_ingest_logs_dropped_total",
        "Unit log entries dropped because the ingest buffer was full.",
        [],
        () => [[{}, ingest.logsDropped]],
      );
      readGauge(
        registry,
        "pepeunit_ingest_queue_depth",
        "Rows (unit states, values, log entries) waiting for the next ingest flush.",
        [],
        () => [[{}, stats.ingestPending()]],
      );
      flushFamilies(registry, "pepeunit_ingest", "device data ingest", () => ingest);
    },

    observeHistory(history) {
      const { stats } = history;
      totalCounter(
        registry,
        "pepeunit_history_records_written_total",
        "Value history rows written: records, accepted values of open windows, closed-window aggregates.",
        ["kind"],
        () => [
          [{ kind: "record" }, stats.recordsWritten],
          [{ kind: "window_value" }, stats.windowValuesWritten],
          [{ kind: "aggregate" }, stats.aggregatesWritten],
        ],
      );
      totalCounter(
        registry,
        "pepeunit_history_values_dropped_total",
        "Values the history writer dropped because its queue was full.",
        [],
        () => [[{}, history.droppedValues()]],
      );
      readGauge(
        registry,
        "pepeunit_history_queue_depth",
        "Values waiting for the next history flush.",
        [],
        () => [[{}, history.queued()]],
      );
      readGauge(
        registry,
        "pepeunit_history_pipes_active",
        "Variables whose data pipe is on.",
        [],
        () => [[{}, history.activePipes()]],
      );
      readGauge(
        registry,
        "pepeunit_history_windows_open",
        "Aggregation windows holding values, not closed yet.",
        [],
        async () => {
          const rows = await query<{ n: number }>(
            "open windows",
            sql`select count(*)::int as n from
              (select distinct node_uuid, window_start from history_window_values) w`,
          );
          return rows ? [[{}, Number(rows[0]?.n ?? 0)]] : [];
        },
      );
      flushFamilies(registry, "pepeunit_history", "value history writer", () => stats);
    },

    observeFederation(deliveries) {
      totalCounter(
        registry,
        "pepeunit_federation_deliveries_total",
        "Federation queue messages by result: delivered, failed (retried), dropped (peer blocked), given_up.",
        ["result"],
        () => [
          [{ result: "delivered" }, deliveries.delivered],
          [{ result: "failed" }, deliveries.failed],
          [{ result: "dropped" }, deliveries.dropped],
          [{ result: "given_up" }, deliveries.givenUp],
        ],
      );
      // One query feeds both the depth and the per-peer lag of a scrape.
      let pending: Promise<QueueRow[] | null> | null = null;
      type QueueRow = { key: string | null; n: number; ready: number; lag: number };
      const queueRows = () => {
        pending ??= query<QueueRow>(
          "federation queue",
          sql`select ordering_key as key, count(*)::int as n,
                count(*) filter (where run_at <= now())::int as ready,
                extract(epoch from now() - min(created_at))::float8 as lag
              from federation_queue group by ordering_key`,
        ).finally(() => setImmediate(() => (pending = null)));
        return pending;
      };
      readGauge(
        registry,
        "pepeunit_federation_queue_depth",
        "Messages in the federation delivery queue: ready now, or delayed (retry back-off).",
        ["state"],
        async () => {
          const rows = await queueRows();
          if (!rows) return [];
          let n = 0;
          let ready = 0;
          for (const r of rows) {
            n += Number(r.n);
            ready += Number(r.ready);
          }
          return [
            [{ state: "ready" }, ready],
            [{ state: "delayed" }, n - ready],
          ];
        },
      );
      readGauge(
        registry,
        "pepeunit_federation_peer_lag_seconds",
        `Age of the oldest undelivered readings per peer (the ${MAX_PEERS} most behind; the rest as "other"); absent: nothing waiting.`,
        ["peer"],
        async () => {
          const rows = await queueRows();
          if (!rows) return [];
          const lags = new Map<string, number>();
          for (const r of rows) {
            const peer = peerOfKey(r.key);
            if (peer) lags.set(peer, Math.max(lags.get(peer) ?? 0, Number(r.lag)));
          }
          const sorted = [...lags].sort((a, b) => b[1] - a[1]);
          const out: Array<[Labels, number]> = sorted
            .slice(0, MAX_PEERS)
            .map(([peer, lag]) => [{ peer }, lag]);
          const rest = sorted.slice(MAX_PEERS);
          if (rest.length) out.push([{ peer: "other" }, rest[0]?.[1] ?? 0]);
          return out;
        },
      );
    },

    observeSyncWorker(stats) {
      totalCounter(
        registry,
        "pepeunit_repo_syncs_total",
        "Repository syncs of the sync worker by result: synced, error (remote failed), gone, crashed.",
        ["result"],
        () => Object.entries(stats.syncs).map(([result, n]) => [{ result }, n]),
      );
      readGauge(
        registry,
        "pepeunit_repo_sync_last_duration_seconds",
        "Duration of the sync worker's last sync.",
        [],
        () => [[{}, stats.lastDurationSeconds]],
      );
      readGauge(
        registry,
        "pepeunit_repo_sync_last_timestamp_seconds",
        "When the sync worker's last sync ended (Unix time; 0: none yet).",
        [],
        () => [[{}, stats.lastEndedAt / 1000]],
      );
    },

    scrape: () => registry.metrics(),
    stop() {
      opts.events.off("unit.update-status", onUpdateStatus);
      registry.clear();
    },
  };
}
