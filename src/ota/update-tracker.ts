import type { Logger } from "pino";
import type { DbLike } from "../db/database.ts";
import type { EventBus } from "../events.ts";
import { findUnit } from "../units/units.store.ts";
import {
  listAwaitingTarget,
  listRequestSent,
  markFinished,
  markReachedTarget,
} from "./update-status.store.ts";

// Waits for the outcome of every Update sent (device-protocol §7): a state message
// whose pu_commit_version equals the target is Success; no such state within the
// window (2 × PU_STATE_SEND_INTERVAL) is Error. Pending requests live in memory and
// one periodic sweep expires them, so thousands of units in a mass update cost one
// timer, not thousands. The database stays the truth: on start, every unit still
// RequestSent is re-armed.
//
// A unit left in Error, or whose target moved without a request, is watched too: its
// device reporting the target (a late update, a unit pinned to what it already runs)
// turns it into a Success. Only those units are watched, so a state message costs a
// map lookup, not a query.

export type UpdateOutcome = {
  unitUuid: string;
  commit: string;
  status: "Success" | "Error";
  error: string | null;
};

type Pending = { commit: string; requestedAt: Date; deadline: number; windowS: number };

export type UpdateTracker = {
  /** Starts waiting for the unit to report `commit` within `windowS` seconds. */
  arm(unitUuid: string, commit: string, requestedAt: Date, windowS: number): void;
  /** Settles the request at once (e.g. the publish failed). */
  fail(unitUuid: string, error: string): Promise<void>;
  isPending(unitUuid: string): boolean;
  /** Stops waiting for the unit without an outcome (it was deleted). */
  forget(unitUuid: string): void;
  /** Watches for the device reporting `commit` (its target, after an Error outside a request). */
  awaitTarget(unitUuid: string, commit: string): void;
  /**
   * The unit's target moved: a pending request for the old one is void (its timeout
   * would blame the device for a version nobody asks for any more); the unit is
   * watched for its new target as the database now has it. Never rejects (failures are logged).
   */
  retarget(unitUuid: string): Promise<void>;
  /** Re-arms units left RequestSent by a previous run; `windowOf` reads a unit's window. */
  restore(windowOf: (envEnc: string) => number): Promise<void>;
  /** Called once per settled request, after the database has recorded it. */
  onOutcome(listener: (o: UpdateOutcome) => void): void;
  stop(): Promise<void>;
};

export type TrackerDeps = {
  db: DbLike;
  events: EventBus;
  log: Logger;
  /** Sweep period; a request expires at most this late. */
  sweepMs?: number;
};

export function createUpdateTracker(deps: TrackerDeps): UpdateTracker {
  const { db, events, log } = deps;
  const pending = new Map<string, Pending>();
  /** Unit → target commit, for units in Error or retargeted without a request. */
  const awaiting = new Map<string, string>();
  const listeners: Array<(o: UpdateOutcome) => void> = [];
  const writes = new Set<Promise<void>>();
  let stopped = false;

  function settle(unitUuid: string, p: Pending, status: "Success" | "Error", error: string | null) {
    if (pending.get(unitUuid) === p) pending.delete(unitUuid);
    const write = markFinished(
      db,
      unitUuid,
      p.requestedAt,
      status === "Success" ? { status, commit: p.commit } : { status, error: error ?? "" },
    )
      .then((current) => {
        // A newer request replaced this one meanwhile: its outcome is not this one's.
        if (!current) return;
        if (status === "Error") awaiting.set(unitUuid, p.commit);
        else awaiting.delete(unitUuid);
        const outcome = { unitUuid, commit: p.commit, status, error };
        events.emit("unit.update-status", outcome);
        for (const l of listeners) l(outcome);
      })
      .catch((err: unknown) => log.error({ err, unitUuid }, "ota: recording an outcome failed"))
      .finally(() => writes.delete(write));
    writes.add(write);
    return write;
  }

  function reached(unitUuid: string, commit: string) {
    awaiting.delete(unitUuid);
    const write = markReachedTarget(db, unitUuid, commit)
      .then((changed) => {
        if (changed) {
          events.emit("unit.update-status", { unitUuid, commit, status: "Success", error: null });
        }
      })
      .catch((err: unknown) => log.error({ err, unitUuid }, "ota: recording a success failed"))
      .finally(() => writes.delete(write));
    writes.add(write);
  }

  const onState = ({ unitUuid, commit }: { unitUuid: string; commit: string | null }) => {
    const p = pending.get(unitUuid);
    if (p) {
      if (commit === p.commit) void settle(unitUuid, p, "Success", null);
      return;
    }
    if (commit && awaiting.get(unitUuid) === commit) reached(unitUuid, commit);
  };
  events.on("unit.state-received", onState);

  function sweep() {
    const now = Date.now();
    for (const [unitUuid, p] of pending) {
      if (p.deadline <= now) {
        void settle(unitUuid, p, "Error", `no state reporting ${p.commit} within ${p.windowS} s`);
      }
    }
  }
  const timer = setInterval(sweep, deps.sweepMs ?? 1000);
  timer.unref();

  return {
    arm(unitUuid, commit, requestedAt, windowS) {
      if (stopped) return;
      awaiting.delete(unitUuid);
      pending.set(unitUuid, {
        commit,
        requestedAt,
        windowS,
        deadline: requestedAt.getTime() + windowS * 1000,
      });
    },
    async fail(unitUuid, error) {
      const p = pending.get(unitUuid);
      if (p) await settle(unitUuid, p, "Error", error);
    },
    isPending: (unitUuid) => pending.has(unitUuid),
    forget(unitUuid) {
      pending.delete(unitUuid);
      awaiting.delete(unitUuid);
    },
    awaitTarget(unitUuid, commit) {
      if (!stopped && !pending.has(unitUuid)) awaiting.set(unitUuid, commit);
    },
    async retarget(unitUuid) {
      pending.delete(unitUuid);
      awaiting.delete(unitUuid);
      const follow = findUnit(db, unitUuid)
        .then((unit) => {
          // RequestSent: a request for the new target is already armed (updateUnit sends one).
          if (stopped || !unit || pending.has(unitUuid)) return;
          const { commit, updateStatus } = unit;
          if (updateStatus === null || updateStatus === "Error") awaiting.set(unitUuid, commit);
          // The device already runs the new target (retargetedStatus): say so like any outcome.
          if (updateStatus === "Success") {
            events.emit("unit.update-status", { unitUuid, commit, status: "Success", error: null });
          }
        })
        .catch((err: unknown) => log.error({ err, unitUuid }, "ota: following a new target failed"))
        .finally(() => writes.delete(follow));
      writes.add(follow);
      await follow;
    },
    async restore(windowOf) {
      const now = new Date();
      for (const row of await listRequestSent(db)) {
        const requestedAt = row.requestedAt ?? now;
        const windowS = windowOf(row.envEnc);
        const p: Pending = {
          commit: row.commit,
          requestedAt,
          windowS,
          // The instance was down meanwhile, and devices report right after reconnecting:
          // each gets a full window from now rather than an Error for our own downtime.
          deadline: Math.max(requestedAt.getTime(), now.getTime()) + windowS * 1000,
        };
        pending.set(row.uuid, p);
        // It reported the target while we were not listening (or just before the stop).
        if (row.currentCommit === row.commit) void settle(row.uuid, p, "Success", null);
      }
      for (const row of await listAwaitingTarget(db)) {
        if (row.currentCommit === row.commit) reached(row.uuid, row.commit);
        else awaiting.set(row.uuid, row.commit);
      }
    },
    onOutcome(listener) {
      listeners.push(listener);
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      events.off("unit.state-received", onState);
      pending.clear();
      awaiting.clear();
      await Promise.all([...writes]);
    },
  };
}
