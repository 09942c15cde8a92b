import { lt, type SQL, sql } from "drizzle-orm";
import type { Logger } from "pino";
import type { DbLike } from "../db/database.ts";
import { unitLogs } from "../db/schema.ts";
import type { EventBus } from "../events.ts";
import {
  type ParsedLog,
  parseLogs,
  parseState,
  storedValue,
  type UnitState,
} from "./ingest-parse.ts";

// What units publish, into the database: state → units.last_state / current_commit /
// last_seen_at, logs → unit_logs, any variable value → unit_nodes.last_value.
// Writes are batched: the latest value per row is kept in memory and flushed every
// `flushMs`, so a unit publishing 100 messages a second costs a few statements a
// second, not 100. close() flushes, so nothing acknowledged is lost on a clean stop.

export type Ingest = {
  /** A state message of a unit (its state/pepeunit topic). */
  state(unitUuid: string, payload: Buffer): void;
  /** A log message of a unit (its log/pepeunit topic). */
  logs(unitUuid: string, payload: Buffer): void;
  /** Any value published on a variable's topic. */
  value(nodeUuid: string, payload: Buffer): void;
  /** The unit was heard from (connected or published). */
  seen(unitUuid: string): void;
  /** A deleted unit's pending rows are dropped (they would violate foreign keys). */
  forgetUnit(unitUuid: string): void;
  flush(): Promise<void>;
  /** Deletes logs older than the retention; returns how many. */
  pruneLogs(): Promise<number>;
  close(): Promise<void>;
  /** Counters for the metrics endpoint (src/metrics/), plain numbers. */
  readonly stats: IngestStats;
  /** Rows waiting for the next flush (units, values, log entries). */
  pending(): number;
};

export type IngestStats = {
  /** Variable values, states and log entries accepted for writing. */
  values: number;
  states: number;
  logs: number;
  /** Log entries dropped because the buffer was full. */
  logsDropped: number;
  flushes: number;
  flushErrors: number;
  /** Time spent writing, over all flushes, and the last flush's. */
  flushSeconds: number;
  lastFlushSeconds: number;
};

export type IngestDeps = {
  db: DbLike;
  events: EventBus;
  log: Logger;
  logRetentionMs: number;
  flushMs?: number;
  pruneEveryMs?: number;
  /** Buffered log rows beyond this are dropped (the database is slower than the devices). */
  maxBufferedLogs?: number;
};

type UnitPending = { state?: UnitState; commit?: string; seenAt: Date };
type LogRow = ParsedLog & { unitUuid: string };

const CHUNK = 500;

function chunks<T>(items: T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += CHUNK) out.push(items.slice(i, i + CHUNK));
  return out;
}

export function createIngest(deps: IngestDeps): Ingest {
  const { db, log } = deps;
  const maxLogs = deps.maxBufferedLogs ?? 10_000;
  let unitsPending = new Map<string, UnitPending>();
  let valuesPending = new Map<string, { value: string; at: Date }>();
  let logsPending: LogRow[] = [];
  let flushing: Promise<void> | null = null;
  let droppedLogs = 0;
  const stats: IngestStats = {
    values: 0,
    states: 0,
    logs: 0,
    logsDropped: 0,
    flushes: 0,
    flushErrors: 0,
    flushSeconds: 0,
    lastFlushSeconds: 0,
  };

  const touch = (unitUuid: string, now: Date): UnitPending => {
    let p = unitsPending.get(unitUuid);
    if (!p) {
      p = { seenAt: now };
      unitsPending.set(unitUuid, p);
    }
    p.seenAt = now;
    return p;
  };

  async function writeUnits(rows: Array<[string, UnitPending]>) {
    for (const part of chunks(rows)) {
      const values = part.map(
        ([uuid, p]) =>
          sql`(${uuid}::uuid, ${p.state ? JSON.stringify(p.state) : null}::jsonb, ${p.commit ?? null}::text, ${p.seenAt.toISOString()}::timestamptz)`,
      );
      await db.execute(sql`
        update units as u set
          last_state = coalesce(v.state, u.last_state),
          current_commit = coalesce(v.commit, u.current_commit),
          last_seen_at = greatest(v.seen, u.last_seen_at)
        from (values ${sql.join(values, sql`, `)}) as v(uuid, state, commit, seen)
        where u.uuid = v.uuid`);
    }
  }

  async function writeValues(rows: Array<[string, { value: string; at: Date }]>) {
    for (const part of chunks(rows)) {
      const values = part.map(
        ([uuid, v]) => sql`(${uuid}::uuid, ${v.value}::text, ${v.at.toISOString()}::timestamptz)`,
      );
      await db.execute(sql`
        update unit_nodes as n set last_value = v.value, last_value_at = v.at
        from (values ${sql.join(values, sql`, `)}) as v(uuid, value, at)
        where n.uuid = v.uuid`);
    }
  }

  async function writeLogs(rows: LogRow[]) {
    for (const part of chunks(rows)) {
      const values: SQL[] = part.map(
        (r, i) =>
          sql`(${i}::int, ${r.unitUuid}::uuid, ${r.level}::text, ${r.text}::text, ${r.createdAt.toISOString()}::timestamptz)`,
      );
      // A unit deleted since its message arrived: its rows are skipped, not a failed batch.
      // Ids follow arrival order (the join alone may reorder rows).
      await db.execute(sql`
        insert into unit_logs (unit_uuid, level, text, created_at)
        select v.unit, v.level, v.text, v.at
        from (values ${sql.join(values, sql`, `)}) as v(ord, unit, level, text, at)
        where exists (select 1 from units where units.uuid = v.unit)
        order by v.ord`);
    }
  }

  /** What was written, for the read model (src/read-model/): it holds these columns too. */
  function announce(
    units: Map<string, UnitPending> | null,
    values: Map<string, { value: string; at: Date }> | null,
  ) {
    if (!units?.size && !values?.size) return;
    deps.events.emit("device-data.written", {
      seen: [...(units ?? [])].map(([uuid, p]) => [
        uuid,
        p.seenAt.toISOString(),
        p.commit ?? null,
        p.state !== undefined,
      ]),
      values: [...(values ?? [])].map(([uuid, v]) => [uuid, v.value, v.at.toISOString()]),
    });
  }

  async function flushOnce(): Promise<void> {
    const started = performance.now();
    const units = unitsPending;
    const values = valuesPending;
    const logs = logsPending;
    unitsPending = new Map();
    valuesPending = new Map();
    logsPending = [];
    if (droppedLogs) {
      log.warn({ dropped: droppedLogs }, "mqtt: log buffer full, unit log entries dropped");
      droppedLogs = 0;
    }
    const jobs: Array<[string, () => Promise<void>, () => void]> = [
      [
        "units",
        () => writeUnits([...units]),
        () => {
          // Newer messages that arrived meanwhile win; the failed ones come back for a retry.
          for (const [uuid, p] of units) if (!unitsPending.has(uuid)) unitsPending.set(uuid, p);
        },
      ],
      [
        "values",
        () => writeValues([...values]),
        () => {
          for (const [uuid, v] of values) if (!valuesPending.has(uuid)) valuesPending.set(uuid, v);
        },
      ],
      [
        "logs",
        () => writeLogs(logs),
        () => {
          if (logsPending.length + logs.length <= maxLogs) logsPending = logs.concat(logsPending);
        },
      ],
    ];
    for (const [what, write, requeue] of jobs) {
      try {
        await write();
        // At once: another writer of the same rows (set-input) announces right after its own.
        if (what === "units") announce(units, null);
        else if (what === "values") announce(null, values);
      } catch (err) {
        log.error({ err, what }, "mqtt: writing device data failed; will retry");
        stats.flushErrors++;
        requeue();
      }
    }
    const seconds = (performance.now() - started) / 1000;
    stats.flushes++;
    stats.flushSeconds += seconds;
    stats.lastFlushSeconds = seconds;
  }

  function flush(): Promise<void> {
    // One flush at a time; a call during a flush waits for it and then runs its own.
    const run = (flushing ?? Promise.resolve()).then(() => {
      if (!unitsPending.size && !valuesPending.size && !logsPending.length) return;
      return flushOnce();
    });
    const tracked = run.finally(() => {
      if (flushing === tracked) flushing = null;
    });
    flushing = tracked;
    return tracked;
  }

  async function pruneLogs(): Promise<number> {
    const cutoff = new Date(Date.now() - deps.logRetentionMs);
    const removed = await db
      .delete(unitLogs)
      .where(lt(unitLogs.createdAt, cutoff))
      .returning({ id: unitLogs.id });
    return removed.length;
  }

  const flushTimer = setInterval(() => {
    flush().catch((err: unknown) => log.error({ err }, "mqtt: flush failed"));
  }, deps.flushMs ?? 500);
  flushTimer.unref();
  let pruning: Promise<unknown> = Promise.resolve();
  const runPrune = () => {
    pruning = pruneLogs().catch((err: unknown) =>
      log.error({ err }, "mqtt: pruning unit logs failed"),
    );
  };
  const pruneTimer = setInterval(runPrune, deps.pruneEveryMs ?? 10 * 60_000);
  pruneTimer.unref();
  runPrune();

  return {
    state(unitUuid, payload) {
      const now = new Date();
      const p = touch(unitUuid, now);
      const parsed = parseState(payload);
      if (!parsed) return;
      stats.states++;
      p.state = parsed.state;
      if (parsed.commit) p.commit = parsed.commit;
      try {
        deps.events.emit("unit.state-received", {
          unitUuid,
          commit: parsed.commit,
          state: parsed.state,
        });
      } catch (err) {
        log.error({ err, unitUuid }, "mqtt: a unit.state-received listener failed");
      }
    },
    logs(unitUuid, payload) {
      const now = new Date();
      touch(unitUuid, now);
      for (const entry of parseLogs(payload, now, deps.logRetentionMs)) {
        if (logsPending.length >= maxLogs) {
          droppedLogs++;
          stats.logsDropped++;
          continue;
        }
        stats.logs++;
        logsPending.push({ ...entry, unitUuid });
      }
    },
    value(nodeUuid, payload) {
      stats.values++;
      valuesPending.set(nodeUuid, { value: storedValue(payload), at: new Date() });
    },
    seen(unitUuid) {
      touch(unitUuid, new Date());
    },
    forgetUnit(unitUuid) {
      unitsPending.delete(unitUuid);
      logsPending = logsPending.filter((r) => r.unitUuid !== unitUuid);
    },
    flush,
    pruneLogs,
    stats,
    pending: () => unitsPending.size + valuesPending.size + logsPending.length,
    async close() {
      clearInterval(flushTimer);
      clearInterval(pruneTimer);
      await pruning;
      await flush();
    },
  };
}
