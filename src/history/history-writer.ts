import type { Logger } from "pino";
import { storedValue } from "../broker/ingest-parse.ts";
import type { DbLike } from "../db/database.ts";
import type { EventBus } from "../events.ts";
import { type DataPipeConfig, parseDataPipeConfig } from "./data-pipe-config.ts";
import {
  insertRecords,
  insertWindowValues,
  loadActivePipes,
  type PipeRow,
  type RecordRow,
  trimOlderThan,
  trimToNewest,
  type WindowValueRow,
} from "./history.store.ts";
import { type PipeMemory, runPipe } from "./pipe-processor.ts";
import { closeWindows, nextWindowEnd } from "./window-aggregator.ts";

// The value history's long-running part. Values seen on a variable's topic arrive as
// the domain event `unit-node.value-seen` (the broker emits it for device publishes,
// set-input and federation's republished remote values alike); the listener only
// queues them when the variable's pipe is on, so the broker's hot path pays a Map
// lookup. Every `flushMs` the queue runs through the pipes and is written in a few
// multi-row statements; NRecords / TimeWindow trimming and closing of due Aggregation
// windows happen in the same flush. stop() flushes and closes what is due, so a clean
// stop loses nothing; a crash loses at most the last interval.

export type HistoryWriter = {
  /** Re-reads a variable's config and active flag (after it changed here or elsewhere). */
  reload(nodeUuid: string): Promise<void>;
  /** Forgets what max_rate / last_unique_check remembered (its history was deleted or replaced). */
  resetMemory(nodeUuid: string): void;
  /** The clock values are stamped with and windows close by (tests move it). */
  now(): number;
  setClock(clock: () => number): void;
  /** Values dropped since start because the queue was full (the bench reports it). */
  droppedValues(): number;
  flush(): Promise<void>;
  stop(): Promise<void>;
  /** Counters for the metrics endpoint (src/metrics/), plain numbers. */
  readonly stats: HistoryStats;
  /**
   * Cluster mode: only the process holding the "history" role closes due windows (of
   * every process's values); the others only write values.
   */
  setClosesWindows(on: boolean): void;
  /** Values waiting for the next flush, and variables whose pipe is on. */
  queued(): number;
  activePipes(): number;
};

export type HistoryStats = {
  /** Single records (LastValue, NRecords, TimeWindow) and accepted values of open windows. */
  recordsWritten: number;
  windowValuesWritten: number;
  /** Records of closed Aggregation windows. */
  aggregatesWritten: number;
  flushes: number;
  flushErrors: number;
  flushSeconds: number;
  lastFlushSeconds: number;
};

export type HistoryWriterDeps = {
  db: DbLike;
  events: EventBus;
  log: Logger;
  flushMs: number;
  maxPayloadBytes: number;
  /** Queued values beyond this are dropped (the database is slower than the devices). */
  maxQueued?: number;
  /**
   * Other processes write window values too (cluster mode): the next window end is
   * re-read from the database every second instead of known from this process's writes.
   */
  sharedWindows?: boolean;
};

type Pipe = { unitUuid: string; config: DataPipeConfig; memory: PipeMemory };
type Queued = { nodeUuid: string; payload: Buffer; at: number };

/** How often TimeWindow records are also trimmed when no value arrives. */
const TIME_WINDOW_PRUNE_MS = 60_000;

export async function createHistoryWriter(deps: HistoryWriterDeps): Promise<HistoryWriter> {
  const { db, events, log } = deps;
  const maxQueued = deps.maxQueued ?? 100_000;
  const pipes = new Map<string, Pipe>();
  let clock = () => Date.now();
  let queue: Queued[] = [];
  let records: RecordRow[] = [];
  let windowValues: WindowValueRow[] = [];
  let dropped = 0;
  let droppedTotal = 0;
  // An upper bound of each NRecords / LastValue variable's stored records: a variable is
  // trimmed only when the bound says it may hold more than it keeps. Unknown (first
  // flush, after a delete or import, and every prune interval, in case another process
  // writes the same variable) means "trim it", after which the bound is the count kept
  // (records written meanwhile by another flush cannot exist: flushes run one at a time).
  let storedAtMost = new Map<string, number>();
  let nextClose: number | null = await nextWindowEnd(db);
  let lastPrune = 0;
  let closesWindows = true;
  let lastWindowCheck = 0;
  let flushing: Promise<void> | null = null;
  const stats: HistoryStats = {
    recordsWritten: 0,
    windowValuesWritten: 0,
    aggregatesWritten: 0,
    flushes: 0,
    flushErrors: 0,
    flushSeconds: 0,
    lastFlushSeconds: 0,
  };

  function install(row: PipeRow) {
    const parsed = parseDataPipeConfig(row.yaml, deps.maxPayloadBytes);
    if (!parsed.ok) {
      // Stored configs were checked when set; one that fails now (a lower payload limit) is off.
      log.warn(
        { nodeUuid: row.uuid, errors: parsed.errors },
        "history: stored data pipe config is invalid",
      );
      pipes.delete(row.uuid);
      return;
    }
    const memory = pipes.get(row.uuid)?.memory ?? { lastAcceptedAt: null, lastAcceptedValue: null };
    pipes.set(row.uuid, { unitUuid: row.unitUuid, config: parsed.config, memory });
  }

  for (const row of await loadActivePipes(db)) install(row);

  async function reload(nodeUuid: string) {
    const [row] = await loadActivePipes(db, nodeUuid);
    if (row) install(row);
    else pipes.delete(nodeUuid);
  }

  const onValue = (e: { nodeUuid: string; payload: Buffer }) => {
    if (!pipes.has(e.nodeUuid)) return;
    if (queue.length >= maxQueued) {
      dropped++;
      droppedTotal++;
      return;
    }
    queue.push({ nodeUuid: e.nodeUuid, payload: e.payload, at: clock() });
  };
  const onNodeChanged = (e: { nodeUuid: string }) => {
    reload(e.nodeUuid).catch((err: unknown) =>
      log.error({ err }, "history: reloading a data pipe failed"),
    );
  };
  const onNodesRemoved = (e: { removed: string[] }) => {
    for (const uuid of e.removed) pipes.delete(uuid);
  };
  const onUnitDeleted = (e: { unitUuid: string }) => {
    for (const [uuid, pipe] of pipes) if (pipe.unitUuid === e.unitUuid) pipes.delete(uuid);
  };
  events.on("unit-node.value-seen", onValue);
  events.on("unit-node.data-pipe-changed", onNodeChanged);
  events.on("unit-nodes.changed", onNodesRemoved);
  events.on("unit.deleted", onUnitDeleted);

  /** Runs the queue through the pipes into pending rows. */
  function processQueue() {
    const items = queue;
    queue = [];
    if (dropped) {
      // Once per flush interval, not per value: the log must not add to the overload.
      log.warn({ dropped, droppedTotal }, "history: queue full, values dropped");
      dropped = 0;
    }
    for (const item of items) {
      const pipe = pipes.get(item.nodeUuid);
      if (!pipe) continue;
      const out = runPipe(pipe.config, pipe.memory, storedValue(item.payload), item.at);
      if (out.kind === "record") {
        records.push({
          nodeUuid: item.nodeUuid,
          state: out.state,
          stateType: out.stateType,
          at: item.at,
        });
      } else if (out.kind === "window") {
        windowValues.push({ nodeUuid: item.nodeUuid, ...out });
      }
    }
  }

  /**
   * Trims of the variables that got records now (`added`: how many each), and of every
   * TimeWindow now and then.
   */
  function trims(added: Map<string, number>, now: number) {
    const keep: Array<{ nodeUuid: string; keep: number }> = [];
    const older: Array<{ nodeUuid: string; cutoff: number }> = [];
    const pruneAll = now - lastPrune >= TIME_WINDOW_PRUNE_MS || now < lastPrune;
    if (pruneAll) {
      lastPrune = now;
      storedAtMost = new Map();
    }
    for (const [uuid, pipe] of pipes) {
      const p = pipe.config.policy;
      if (p.type === "TimeWindow" && (pruneAll || added.has(uuid))) {
        older.push({ nodeUuid: uuid, cutoff: now - p.windowSize * 1000 });
      } else if (p.type === "NRecords" || p.type === "LastValue") {
        const n = added.get(uuid);
        if (n === undefined) continue;
        const limit = p.type === "NRecords" ? p.count : 1;
        const bound = storedAtMost.get(uuid);
        if (bound !== undefined && bound + n <= limit) {
          storedAtMost.set(uuid, bound + n);
        } else {
          keep.push({ nodeUuid: uuid, keep: limit });
        }
      }
    }
    return { keep, older };
  }

  async function flushOnce() {
    // Every value stamped before `now` is in this batch: windows ending by then are complete.
    const now = clock();
    processQueue();
    const recs = records;
    const wins = windowValues;
    try {
      if (wins.length) {
        await insertWindowValues(db, wins);
        stats.windowValuesWritten += wins.length;
        for (const w of wins) {
          if (nextClose === null || w.windowEnd < nextClose) nextClose = w.windowEnd;
        }
      }
      windowValues = [];
      if (recs.length) await insertRecords(db, recs);
      stats.recordsWritten += recs.length;
      records = [];
    } catch (err) {
      // Kept for the next flush (new rows join them), bounded like the queue.
      if (records.length > maxQueued) records = records.slice(-maxQueued);
      if (windowValues.length > maxQueued) windowValues = windowValues.slice(-maxQueued);
      throw err;
    }
    const added = new Map<string, number>();
    for (const r of recs) added.set(r.nodeUuid, (added.get(r.nodeUuid) ?? 0) + 1);
    const { keep, older } = trims(added, now);
    try {
      if (keep.length) {
        for (const [uuid, n] of await trimToNewest(db, keep)) storedAtMost.set(uuid, n);
      }
    } catch (err) {
      // Not trimmed: their counts are unknown again.
      for (const k of keep) storedAtMost.delete(k.nodeUuid);
      throw err;
    }
    if (older.length) await trimOlderThan(db, older);
    if (!closesWindows) return;
    if (deps.sharedWindows && Math.abs(now - lastWindowCheck) >= 1000) {
      lastWindowCheck = now;
      nextClose = await nextWindowEnd(db);
    }
    if (nextClose !== null && nextClose <= now) {
      stats.aggregatesWritten += await closeWindows(db, new Date(now));
      nextClose = await nextWindowEnd(db);
    }
  }

  async function timedFlush() {
    const started = performance.now();
    try {
      await flushOnce();
    } catch (err) {
      stats.flushErrors++;
      throw err;
    } finally {
      const seconds = (performance.now() - started) / 1000;
      stats.flushes++;
      stats.flushSeconds += seconds;
      stats.lastFlushSeconds = seconds;
    }
  }

  function flush(): Promise<void> {
    // One flush at a time; a call during a flush waits for it and then runs its own.
    const run = (flushing ?? Promise.resolve()).catch(() => {}).then(timedFlush);
    const tracked = run.finally(() => {
      if (flushing === tracked) flushing = null;
    });
    flushing = tracked;
    return tracked;
  }

  const timer = setInterval(() => {
    if (flushing) return;
    flush().catch((err: unknown) => log.error({ err }, "history: flush failed; will retry"));
  }, deps.flushMs);
  timer.unref();

  return {
    reload,
    resetMemory(nodeUuid) {
      storedAtMost.delete(nodeUuid);
      const pipe = pipes.get(nodeUuid);
      if (pipe) pipe.memory = { lastAcceptedAt: null, lastAcceptedValue: null };
    },
    now: () => clock(),
    setClosesWindows(on) {
      closesWindows = on;
      lastWindowCheck = 0;
    },
    droppedValues: () => droppedTotal,
    setClock(c) {
      clock = c;
    },
    flush,
    stats,
    queued: () => queue.length,
    activePipes: () => pipes.size,
    async stop() {
      clearInterval(timer);
      events.off("unit-node.value-seen", onValue);
      events.off("unit-node.data-pipe-changed", onNodeChanged);
      events.off("unit-nodes.changed", onNodesRemoved);
      events.off("unit.deleted", onUnitDeleted);
      await flush();
    },
  };
}
