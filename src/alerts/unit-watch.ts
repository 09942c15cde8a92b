import type { Logger } from "pino";
import type { Config } from "../config.ts";
import type { DbLike } from "../db/database.ts";
import type { EventBus } from "../events.ts";
import { stateIntervalS } from "../units/unit-env.ts";
import { unitWithOwner } from "./alerts.store.ts";
import type { NotificationDispatch } from "./notifier.ts";

// Notifications about a user's own units, each behind its switch: an update that ended
// in Error (the OTA outcome event), and a unit offline for longer than its grace period
// (2 × its PU_STATE_SEND_INTERVAL): the broker's live connections, the same `is_online`
// the API shows, are compared on each sweep. One message per outage; a unit back online
// is watched again. Outages are followed in memory: a unit that never came online
// since the instance started is not reported.

export type UnitWatch = {
  start(): void;
  stop(): Promise<void>;
  /** Compares the online units with the last sweep (also runs on a timer). */
  sweep(): Promise<void>;
  setClock(now: () => number): void;
  /** Waits for notifications in progress. */
  drain(): Promise<void>;
};

type Outage = { since: number; graceMs: number | null; reported: boolean };

export function createUnitWatch(deps: {
  db: DbLike;
  events: EventBus;
  log: Logger;
  config: Pick<Config, "encryptKey" | "stateSendIntervalS">;
  dispatch: NotificationDispatch;
  onlineUnits: () => string[];
  sweepMs?: number;
}): UnitWatch {
  const { db, events, log, dispatch } = deps;
  let now = () => Date.now();
  let online = new Set<string>();
  const outages = new Map<string, Outage>();
  const pending = new Set<Promise<unknown>>();
  let timer: NodeJS.Timeout | null = null;
  let sweeping: Promise<void> | null = null;

  async function drain() {
    while (pending.size) await Promise.all([...pending]);
    await dispatch.drain();
  }

  function track(p: Promise<unknown>) {
    pending.add(p);
    void p.finally(() => pending.delete(p));
  }

  async function onUpdateStatus(e: {
    unitUuid: string;
    commit: string;
    status: string;
    error: string | null;
  }) {
    if (e.status !== "Error") return;
    const unit = await unitWithOwner(db, e.unitUuid);
    if (!unit?.notifyUpdateFailed || unit.ownerStatus !== "Active") return;
    await dispatch.notify(
      unit.ownerUuid,
      {
        kind: "update_failed",
        message: `${unit.unitName}: update to ${e.commit.slice(0, 12)} failed: ${e.error ?? "unknown reason"}`,
        ruleUuid: null,
        unitUuid: e.unitUuid,
        nodeUuid: null,
      },
      new Date(now()),
    );
  }
  const onUpdate = (e: Parameters<typeof onUpdateStatus>[0]) =>
    track(
      onUpdateStatus(e).catch((err: unknown) =>
        log.error({ err }, "alerts: update-failed notification failed"),
      ),
    );
  const onUnitDeleted = ({ unitUuid }: { unitUuid: string }) => outages.delete(unitUuid);

  async function report(unitUuid: string, outage: Outage, at: number) {
    const unit = await unitWithOwner(db, unitUuid);
    if (!unit) {
      outages.delete(unitUuid);
      return;
    }
    if (outage.graceMs === null) {
      outage.graceMs =
        2 *
        1000 *
        stateIntervalS(deps.config, unit.envEnc, (err) =>
          log.warn({ err }, "alerts: a unit's env cannot be read; using the default interval"),
        );
    }
    if (at - outage.since < outage.graceMs) return;
    outage.reported = true;
    if (!unit.notifyUnitOffline || unit.ownerStatus !== "Active") return;
    await dispatch.notify(
      unit.ownerUuid,
      {
        kind: "unit_offline",
        message: `${unit.unitName} is offline: no connection since ${new Date(outage.since).toISOString()}`,
        ruleUuid: null,
        unitUuid,
        nodeUuid: null,
      },
      new Date(at),
    );
  }

  async function sweepOnce() {
    const at = now();
    const current = new Set(deps.onlineUnits());
    for (const unitUuid of online) {
      if (!current.has(unitUuid) && !outages.has(unitUuid)) {
        outages.set(unitUuid, { since: at, graceMs: null, reported: false });
      }
    }
    for (const unitUuid of current) outages.delete(unitUuid);
    online = current;
    for (const [unitUuid, outage] of outages) {
      if (outage.reported) continue;
      if (outage.graceMs !== null && at - outage.since < outage.graceMs) continue;
      await report(unitUuid, outage, at).catch((err: unknown) =>
        log.error({ err }, "alerts: offline notification failed"),
      );
    }
  }

  function sweep(): Promise<void> {
    // One sweep at a time: the timer's and a test's never interleave.
    const run = (sweeping ?? Promise.resolve()).then(sweepOnce);
    const tail = run.finally(() => {
      if (sweeping === tail) sweeping = null;
    });
    sweeping = tail;
    return run;
  }

  return {
    start() {
      events.on("unit.update-status", onUpdate);
      events.on("unit.deleted", onUnitDeleted);
      timer = setInterval(() => track(sweep()), deps.sweepMs ?? 1000);
      timer.unref();
    },
    async stop() {
      events.off("unit.update-status", onUpdate);
      events.off("unit.deleted", onUnitDeleted);
      if (timer) clearInterval(timer);
      timer = null;
      await drain();
    },
    sweep,
    setClock(fn) {
      now = fn;
    },
    drain,
  };
}
