import type { AddressInfo } from "node:net";
import { type ServerType, serve } from "@hono/node-server";
import { type Logger, pino } from "pino";
import { cachePrincipals, createPrincipalResolver } from "./access/resolve-principal.ts";
import { createAlertService } from "./alerts/alerts.service.ts";
import { createBackupService } from "./backup/backup.service.ts";
import { listenBackupSocket } from "./backup/backup-socket.ts";
import { type Broker, createBroker } from "./broker/broker.ts";
import { createCluster } from "./cluster/cluster.ts";
import { startCommandListeners } from "./commands/command-listeners.ts";
import type { Config } from "./config.ts";
import { verifyEncryptKey } from "./crypto/key-check.ts";
import { createDatabase, type Database } from "./db/database.ts";
import { startEdgeRecheck } from "./edges/edges.recheck.ts";
import { createEventBus } from "./events.ts";
import { createFederationService } from "./federation/federation.service.ts";
import { createGitStore } from "./git/git-store.ts";
import { createHistoryWriter } from "./history/history-writer.ts";
import { createHttpApp } from "./http/app.ts";
import type { AppDeps } from "./http/types.ts";
import { createLiveHub } from "./live/live-hub.ts";
import { createMailer } from "./mail/mailer.ts";
import { createOtaService } from "./ota/ota.service.ts";
import { createReadModel } from "./read-model/read-model.ts";
import { createRepoSyncWorker } from "./repos/sync-worker.ts";

/** Longer than the idle timeout of the clients and proxies in front (see serve below). */
const HTTP_KEEP_ALIVE_MS = 65_000;

export type Instance = {
  deps: AppDeps;
  broker: Broker;
  /** Base URL the HTTP server listens on (the real port when 0 was asked). */
  httpUrl: string;
  stop(): Promise<void>;
};

export type InstanceOptions = {
  logger?: Logger;
  /** Use this database instead of opening one from the config (tests share a template). */
  database?: Database;
};

/**
 * The composition root: config → db → broker → federation → HTTP → workers.
 * Nothing heavy happens on import; everything is built here, in order, and torn
 * down in reverse by stop().
 */
export async function startInstance(config: Config, opts: InstanceOptions = {}): Promise<Instance> {
  const log =
    opts.logger ??
    pino({ level: config.logLevel, redact: ["*.password", "*.credentials", "*.token"] });
  const database =
    opts.database ??
    (await createDatabase({
      url: config.databaseUrl,
      pgliteDir: `${config.dataDir}/pglite`,
      pgliteSharedBuffersMb: config.pgliteSharedBuffersMb,
      pgliteThread: config.pgliteThread,
    }));
  try {
    await verifyEncryptKey(database.db, config.encryptKey);
  } catch (err) {
    if (!opts.database) await database.close();
    throw err;
  }
  const events = createEventBus();
  // Before anything emits: in cluster mode every domain event crosses the bridge.
  const cluster = await createCluster({ config, events, log }).catch(async (err: unknown) => {
    if (!opts.database) await database.close();
    throw err;
  });
  const base = {
    config,
    database,
    log,
    events,
    cluster,
    // Created before the broker so its revocation listeners run first.
    resolvePrincipal: cachePrincipals(createPrincipalResolver({ db: database.db, config }), events),
    // Listens from the start; loads on the first hot read (src/read-model/).
    readModel: createReadModel({ db: database.db, events }),
    git: createGitStore({
      repositoriesDir: config.repositoriesDir,
      allowLocal: config.gitAllowLocal,
      childPath: config.childPath,
    }),
  };
  // Before the broker: it listens for the values the broker sees from the first one on.
  const history = await createHistoryWriter({
    db: database.db,
    events,
    log,
    flushMs: config.historyFlushMs,
    maxPayloadBytes: config.mqttMaxPayloadBytes,
    sharedWindows: cluster.enabled,
  });
  // Closing due windows is the "history" role's (all processes' windows, by one of them).
  history.setClosesWindows(false);
  cluster.lead("history", {
    start: () => history.setClosesWindows(true),
    stop: () => history.setClosesWindows(false),
  });
  const broker = await createBroker(base).catch(async (err: unknown) => {
    await history.stop();
    throw err;
  });
  const mailer = createMailer({ smtpUrl: config.smtpUrl, from: config.mailFrom, log });
  // Before devices get in: threshold rules see the first value the broker accepts.
  const alerts = createAlertService({ ...base, mailer, onlineUnits: () => broker.onlineUnits() });
  await alerts.start();
  cluster.lead("alerts", alerts.watch);
  const federation = await createFederationService({ ...base, broker });
  broker.setRemoteTopicAccess((unitUuid, topic) => federation.remoteTopicAllowed(unitUuid, topic));
  // Devices get in only now that every access rule (remote topics too) is in place.
  try {
    await broker.listen();
  } catch (err) {
    await federation.stop();
    await alerts.stop();
    await history.stop();
    if (!opts.database) await database.close();
    throw err;
  }
  // Prometheus metrics only with a token (GET /metrics answers 404 otherwise).
  const metrics = config.metricsToken
    ? (await import("./metrics/metrics.ts")).createMetrics({
        db: database.db,
        log,
        events,
        databaseKind: database.kind,
      })
    : undefined;
  metrics?.observeBroker(broker.stats);
  metrics?.observeHistory(history);
  metrics?.observeFederation(federation.deliveryStats);
  const deps: AppDeps = {
    ...base,
    mailer,
    broker,
    federation,
    history,
    alerts,
    metrics,
  };
  // Device commands the instance sends on its own (SchemaUpdate, EnvUpdate) and OTA.
  const commandListeners = startCommandListeners(deps);
  // Links out of an output whose visibility was lowered lose access (src/edges/edges.recheck.ts).
  const edgeRecheck = startEdgeRecheck(deps);
  const ota = createOtaService(deps);
  deps.ota = ota;
  cluster.lead("ota", ota);
  const live = createLiveHub({
    db: database.db,
    events,
    log,
    resolvePrincipal: base.resolvePrincipal,
  });
  await live.start();
  deps.live = live;
  // Off without a token; with one it reaches the Bot API in the background (never blocks start).
  // Optional features are imported only when configured (grammy, prom-client: idle heap).
  const telegram = config.telegram
    ? (await import("./telegram/telegram.service.ts")).createTelegramService(deps, config.telegram)
    : undefined;
  deps.telegram = telegram;
  if (telegram) {
    const { bridgeAlertsToTelegram } = await import("./alerts/telegram-bridge.ts");
    bridgeAlertsToTelegram({ db: database.db, alerts, telegram });
    cluster.lead("telegram", {
      start: () => telegram.startReceiving(),
      stop: () => telegram.stopReceiving(),
    });
  }
  const backups = createBackupService({ config, database, log });
  deps.backups = backups;
  cluster.lead("backups", backups);

  const app = createHttpApp(deps);
  const server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch: app.fetch, port: config.httpPort, hostname: config.httpHost }, () =>
      resolve(s),
    );
  });
  // Node closes an idle keep-alive socket after 5 s; a client (a reverse proxy, undici,
  // a device library) that reuses it in the same moment gets ECONNRESET. Idle sockets
  // live longer here than in the clients and proxies in front (nginx keeps them 60 s),
  // so the client is always the side that closes.
  if ("keepAliveTimeout" in server) server.keepAliveTimeout = HTTP_KEEP_ALIVE_MS;
  broker.attachWebSocket(server);
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const httpUrl = `http://${host === "0.0.0.0" ? "127.0.0.1" : host}:${address.port}`;

  const syncWorker = createRepoSyncWorker(deps);
  metrics?.observeSyncWorker(syncWorker.stats);
  cluster.lead("sync", syncWorker);
  cluster.lead("federation-queue", {
    start: () => federation.startQueue(),
    stop: () => federation.stopQueue(),
  });
  telegram?.start();
  // The once-only workers: all of them here, or those whose role this process wins.
  await cluster.start();
  // `npm run backup` asks the running instance for its snapshot (src/backup/backup-socket.ts).
  const backupSocket = await listenBackupSocket(config.dataDir, backups, log);
  log.info(
    { httpUrl, database: database.kind, domain: config.domain, node: cluster.nodeName },
    "pepeunit instance started",
  );

  return {
    deps,
    broker,
    httpUrl,
    async stop() {
      await backupSocket?.close();
      // The role workers (sync, OTA, backups, federation queue, …) stop first.
      await cluster.stop();
      await telegram?.stop();
      await edgeRecheck.stop();
      await commandListeners.stop();
      await federation.stop();
      // Open event streams would hold the HTTP server open.
      live.stop();
      broker.setRemoteTopicAccess(null);
      // Before HTTP: WebSocket clients hold the HTTP server open; flushes device data.
      await broker.close();
      // After the broker: every value it accepted is in its window's record.
      await history.stop();
      // After the broker: the last values' state changes and messages are saved.
      await alerts.stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Keep-alive sockets would hold close() open.
        if ("closeAllConnections" in server) server.closeAllConnections();
      });
      deps.mailer.close();
      metrics?.stop();
      await cluster.close();
      if (!opts.database) await database.close();
    },
  };
}
