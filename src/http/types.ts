import type { Logger } from "pino";
import type { Principal } from "../access/principal.ts";
import type { PrincipalResolver } from "../access/resolve-principal.ts";
import type { AlertService } from "../alerts/alerts.service.ts";
import type { BackupService } from "../backup/backup.service.ts";
import type { Broker } from "../broker/broker.ts";
import type { Cluster } from "../cluster/cluster.ts";
import type { Config } from "../config.ts";
import type { Database } from "../db/database.ts";
import type { EventBus } from "../events.ts";
import type { FederationService } from "../federation/federation.service.ts";
import type { GitStore } from "../git/git-store.ts";
import type { HistoryWriter } from "../history/history-writer.ts";
import type { LiveHub } from "../live/live-hub.ts";
import type { Mailer } from "../mail/mailer.ts";
import type { InstanceMetrics } from "../metrics/metrics.ts";
import type { OtaService } from "../ota/ota.service.ts";
import type { ReadModel } from "../read-model/read-model.ts";
import type { TelegramService } from "../telegram/telegram.service.ts";

/** Hono environment shared by every sub-app. */
export type AppEnv = { Variables: { principal: Principal } };

/** What the composition root hands to every feature's routes. */
export type AppDeps = {
  config: Config;
  database: Database;
  log: Logger;
  events: EventBus;
  resolvePrincipal: PrincipalResolver;
  git: GitStore;
  mailer: Mailer;
  /** This process among the cluster's (src/cluster/); absent in tools (one process, every role). */
  cluster?: Cluster;
  /** The MQTT device plane: internal publish (commands, set-input) and online state. */
  broker: Broker;
  /** The federation bridge (src/federation/); absent in tools that build an app without it. */
  federation?: FederationService;
  /** Firmware updates (src/ota/): Update commands, their outcome, mass updates; absent in tools. */
  ota?: OtaService;
  /** Value history (src/history/): the data pipes' writer; absent in tools. */
  history?: HistoryWriter;
  /** Alerts (src/alerts/): threshold rules, unit notifications, their delivery; absent in tools. */
  alerts?: AlertService;
  /** The UI's live entity-state channel (src/live/); absent in tools. */
  live?: LiveHub;
  /** Backups (src/backup/): scheduled, admin-started and the CLI's over the local socket; absent in tools. */
  backups?: BackupService;
  /** The Telegram bot (src/telegram/): only when PEPEUNIT_TELEGRAM_BOT_TOKEN is set. */
  telegram?: TelegramService;
  /** The hot reads from memory (src/read-model/); absent in tools (they read the database). */
  readModel?: ReadModel;
  /** Prometheus metrics (src/metrics/): only when PEPEUNIT_METRICS_TOKEN is set. */
  metrics?: InstanceMetrics;
};
