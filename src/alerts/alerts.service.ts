import type { Logger } from "pino";
import type { Config } from "../config.ts";
import type { Database } from "../db/database.ts";
import type { EventBus } from "../events.ts";
import type { Mailer } from "../mail/mailer.ts";
import { type AlertEvaluator, createAlertEvaluator } from "./alert-evaluator.ts";
import {
  createMailNotifier,
  createNotificationDispatch,
  type NotificationDispatch,
} from "./notifier.ts";
import { createUnitWatch, type UnitWatch } from "./unit-watch.ts";

// Alerts as one part of the instance: threshold rules on values, the unit watch (failed
// updates, offline units) and the dispatch that keeps every event and hands it to the
// delivery channels. The composition root builds it from this factory.

export type AlertService = {
  evaluator: AlertEvaluator;
  watch: UnitWatch;
  dispatch: NotificationDispatch;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Waits for evaluations' writes, notifications and deliveries in progress. */
  drain(): Promise<void>;
  /** A rule was created, edited or deleted: announced, and this process's evaluator reloads it. */
  ruleChanged(rule: { uuid: string; userUuid: string }): Promise<void>;
};

export function createAlertService(deps: {
  config: Config;
  database: Database;
  events: EventBus;
  log: Logger;
  mailer: Mailer;
  /** The broker's live unit connections (what `is_online` shows). */
  onlineUnits: () => string[];
}): AlertService {
  const db = deps.database.db;
  const log = deps.log;
  const dispatch = createNotificationDispatch({
    db,
    log,
    events: deps.events,
    channels: [createMailNotifier({ db, mailer: deps.mailer, log })],
  });
  const evaluator = createAlertEvaluator({ db, events: deps.events, log, dispatch });
  const watch = createUnitWatch({
    db,
    events: deps.events,
    log,
    config: deps.config,
    dispatch,
    onlineUnits: deps.onlineUnits,
    sweepMs: Math.min(1000, deps.config.stateSendIntervalS * 250),
  });
  return {
    evaluator,
    watch,
    dispatch,
    // The watch starts apart (the composition root's "alerts" role: one process of a cluster).
    async start() {
      await evaluator.start();
    },
    async stop() {
      await watch.stop();
      await evaluator.stop();
      await dispatch.drain();
    },
    async ruleChanged(rule) {
      deps.events.emit("alert-rule.changed", { ruleUuid: rule.uuid, userUuid: rule.userUuid });
      await evaluator.reloaded(rule.uuid);
    },
    async drain() {
      await evaluator.drain();
      await watch.drain();
      await dispatch.drain();
    },
  };
}
