import { randomBytes } from "node:crypto";
import type { EventEmitter } from "node:events";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { Aedes, type Client } from "aedes";
import mqttPacket from "mqtt-packet";
import type { AppDeps } from "../http/types.ts";
import { createTemplateCache } from "./acl.store.ts";
import { type BrokerPrincipal, canSubscribe, nodeOfTopic } from "./acl-rules.ts";
import { createAclSync } from "./acl-sync.ts";
import { createHooks, INTERNAL_USERNAME } from "./broker-hooks.ts";
import { createClientIdClaims } from "./cluster-client-ids.ts";
import { createClusterPresence } from "./cluster-presence.ts";
import { Connections, registeredClients } from "./connections.ts";
import { EMITTER_CONCURRENCY } from "./emitter-concurrency.ts";
import { GuardedConnection, type ViolationHandler } from "./frame-guard.ts";
import { createIngest, type IngestStats } from "./ingest.ts";
import { leanParserBuffer } from "./lean-parser-buffer.ts";
import { attachWebSocket, type Listener, listenTcp, listenTls } from "./listeners.ts";
import { createMessageEmitter } from "./message-emitter.ts";
import { createMqttStats, type MqttStats, violationReason } from "./mqtt-stats.ts";
import { parseTopic } from "./topics.ts";
import { createRevocations, revokedSince, watchUserRevocations } from "./user-revocations.ts";

// The device plane: an Aedes MQTT broker on TCP, TLS and WebSocket, authorizing from
// an in-memory access index, ingesting what units report, and offering the rest of
// the instance an internal publish API. In cluster mode (config.cluster) the processes
// share one Aedes message fabric and session store in Redis (cluster-fabric.ts), and
// whether a unit is online is answered for the whole cluster (cluster-presence.ts).

export type BrokerDeps = Pick<
  AppDeps,
  "config" | "database" | "log" | "events" | "resolvePrincipal" | "git"
>;

export type PublishOptions = { qos?: 0 | 1 };

export type Broker = {
  /**
   * Federation: lets units subscribe to a remote output's home topic (`REMOTE_D/N[/pepeunit]`)
   * while `check` says an ACTIVE remote edge links it into one of their inputs.
   */
  setRemoteTopicAccess(check: ((unitUuid: string, topic: string) => boolean) | null): void;
  /** Publishes as the instance itself (commands, set-input); no access check. */
  publish(topic: string, payload: string | Uint8Array, opts?: PublishOptions): Promise<void>;
  /** Whether the unit has at least one live MQTT connection (on any process of a cluster). */
  isOnline(unitUuid: string): boolean;
  /** The units online on any process (a cluster's others as of its last read of Redis). */
  onlineUnits(): string[];
  /**
   * Opens the TCP (and TLS) listeners. Called once the rest of the access rules are wired
   * (federation's remote topics), so a device reconnecting right after a restart is not
   * refused a subscription it is entitled to.
   */
  listen(): Promise<void>;
  /** Serves MQTT over WebSocket at /mqtt on the instance's HTTP server (its "upgrade" events). */
  attachWebSocket(server: EventEmitter): void;
  /** The bound TCP port (the configured one, or the one chosen for port 0). */
  readonly tcpPort: number;
  readonly tlsPort: number | null;
  /** Login of the instance's own MQTT client (a secret made at start, never stored). */
  readonly internalCredentials: { username: string; password: string };
  /** Writes buffered device data now (tests, shutdown). */
  flush(): Promise<void>;
  pruneLogs(): Promise<number>;
  close(): Promise<void>;
  /** What the metrics endpoint reads at scrape time (src/metrics/). */
  readonly stats: BrokerStats;
};

export type ClientKind = BrokerPrincipal["kind"] | "connecting";

export type BrokerStats = {
  mqtt: MqttStats;
  ingest: IngestStats;
  /** Rows the ingest holds for its next flush. */
  ingestPending(): number;
  /** Open connections by who is behind them ("connecting": not logged in yet). */
  clientsByKind(): Record<ClientKind, number>;
};

export const WEBSOCKET_PATH = "/mqtt";
// Room for the topic (≤ 64 KB), packet id and MQTT 5 properties around a maximal payload.
const PACKET_OVERHEAD = 65_536 + 1_024;
const USER_RECHECK_MS = 60_000;

export async function createBroker(deps: BrokerDeps): Promise<Broker> {
  const { config, log, events } = deps;
  // mqtt-packet (the encoder of Aedes and MQTT.js) otherwise fills a cache of 65 536
  // two-byte Buffers when it writes its first packet: ~7.5 MB of heap held for good,
  // half of what 1 000 connected devices cost. Uncached, a packet id or topic length
  // takes a 2-byte slice of Node's buffer pool.
  mqttPacket.writeToStream.cacheNumbers = false;
  const db = deps.database.db;
  const domain = config.domain;
  const conns = new Connections();
  const revocations = createRevocations();
  const internalSecret = randomBytes(32).toString("base64url");
  const ingest = createIngest({ db, events, log, logRetentionMs: config.logRetentionMs });
  const sockets = new Set<GuardedConnection>();
  const stats = createMqttStats();
  let aedes: Aedes | undefined;
  let enforceQueued = false;
  // Redis and its Aedes adapters are loaded only in cluster mode (~5 MB of heap otherwise idle).
  const fabric = config.cluster
    ? (await import("./cluster-fabric.ts")).createClusterFabric(config.cluster, log)
    : undefined;
  const claims = fabric && createClientIdClaims(fabric.redis, config.nodeName);
  const presence =
    fabric &&
    createClusterPresence({
      redis: fabric.redis,
      nodeName: config.nodeName,
      localUnits: () => conns.onlineUnits(),
      log,
      // The claims of the client ids this process serves are renewed with its presence.
      onTick: async () => {
        if (claims && aedes) await claims.refresh(Object.values(registeredClients(aedes)));
      },
    });

  const closeClient = (client: Client, reason: string) => {
    log.info({ clientId: client.id, reason }, "mqtt: disconnecting client");
    client.close();
  };

  /** Drops subscriptions the index no longer allows; closes connections of units that are gone. */
  function enforce(): void {
    enforceQueued = false;
    if (!aedes || aedes.closed) return;
    for (const client of Object.values(registeredClients(aedes))) {
      const info = conns.get(client);
      if (!info) continue;
      const p = info.principal;
      if (p.kind === "unit" && !acl.index.units.has(p.uuid)) {
        closeClient(client, "unit deleted");
        continue;
      }
      // Not in Aedes' typings; the topic → subscription map of the live session.
      const subs = (client as unknown as { subscriptions: Record<string, unknown> }).subscriptions;
      const revoked = Object.keys(subs).filter(
        (topic) => !canSubscribe(acl.index, domain, p, topic),
      );
      if (revoked.length) {
        log.info({ clientId: client.id, topics: revoked }, "mqtt: access revoked, unsubscribing");
        client.unsubscribe(revoked as never, () => {});
      }
    }
  }

  const acl = createAclSync({
    db,
    events,
    log,
    templates: createTemplateCache(deps.git, log),
    // Several events of one change (a unit delete emits each edge) are enforced once.
    onChanged() {
      if (enforceQueued) return;
      enforceQueued = true;
      queueMicrotask(enforce);
    },
  });

  const hooks = createHooks({
    domain,
    maxPayloadBytes: config.mqttMaxPayloadBytes,
    acl,
    conns,
    resolvePrincipal: deps.resolvePrincipal,
    internalSecret: Buffer.from(internalSecret),
    log,
    revocations,
    broker: () => aedes as Aedes,
    stats,
    persistentSessions: fabric !== undefined,
    claimClientId: claims && ((client, principal) => claims.claim(client, principal)),
    onPublishAccepted: (principal, packet) =>
      ingestPublish(packet.topic, packet.payload as Buffer, principal),
  });

  // The UI's live channel (src/live/) shows online/offline as it happens.
  function emitOnline(unitUuid: string, online: boolean) {
    try {
      events.emit("unit.online", { unitUuid, online });
    } catch (err) {
      log.error({ err, unitUuid }, "mqtt: a unit.online listener failed");
    }
  }
  // In a cluster the change is in Redis before the event goes out (and is bridged): a
  // process that reads the presence sets on seeing the event finds it there. One chain
  // keeps the events in the order of the changes.
  let presenceChain = Promise.resolve();
  function announceOnline(unitUuid: string, online: boolean) {
    if (!presence) return emitOnline(unitUuid, online);
    presenceChain = presenceChain
      .then(() => presence.changed(unitUuid, online))
      .catch((err: unknown) =>
        log.warn({ unitUuid, reason: (err as Error).message }, "mqtt: presence write failed"),
      )
      .then(() => emitOnline(unitUuid, online));
  }
  function clientGone(client: Client) {
    const p = conns.get(client)?.principal;
    if (conns.gone(client) && p?.kind === "unit") announceOnline(p.uuid, false);
    claims
      ?.release(client)
      .catch((err: unknown) =>
        log.warn({ reason: (err as Error).message }, "mqtt: releasing a client id failed"),
      );
  }
  const onOnlineEvent = () => presence?.refresh();

  function revokeUnit(unitUuid: string, reason: string) {
    revocations.counter++;
    revocations.unitRevokedAt.set(unitUuid, revocations.counter);
    if (!aedes) return;
    for (const client of Object.values(registeredClients(aedes))) {
      const p = conns.get(client)?.principal;
      if (p?.kind === "unit" && p.uuid === unitUuid) closeClient(client, reason);
    }
  }

  const onUnitDeleted = ({ unitUuid }: { unitUuid: string }) => {
    revokeUnit(unitUuid, "unit deleted");
    ingest.forgetUnit(unitUuid);
    // Its persistent session, under the client id devices use (the unit uuid; a client
    // with an id of its own keeps its stored subscriptions until it connects clean).
    fabric
      ?.forgetSession(unitUuid)
      .catch((err: unknown) =>
        log.warn({ unitUuid, reason: (err as Error).message }, "mqtt: forgetting a session failed"),
      );
  };
  const onTokenRotated = ({ unitUuid }: { unitUuid: string }) =>
    revokeUnit(unitUuid, "unit token rotated");

  /** Users' tokens expire without an event (revocations are followed in user-revocations.ts). */
  async function recheckUsers() {
    if (!aedes) return;
    for (const client of Object.values(registeredClients(aedes))) {
      const info = conns.get(client);
      if (info?.principal.kind !== "user" || !info.token) continue;
      const p = await deps.resolvePrincipal(info.token);
      if (p?.kind !== "user") closeClient(client, "user token no longer valid");
      else info.principal = p;
    }
    enforce();
  }

  /** Device data into the database (batched): states, logs, variable values. */
  function ingestPublish(topic: string, payload: Buffer, publisher: BrokerPrincipal) {
    if (publisher.kind === "unit") ingest.seen(publisher.uuid);
    if (!topic.startsWith(`${domain}/`)) return;
    const parsed = parseTopic(domain, topic);
    if (!parsed) return;
    if (parsed.kind === "variable") {
      const node = nodeOfTopic(acl.index, domain, topic);
      if (node) {
        ingest.value(node.uuid, payload);
        events.emit("unit-node.value-seen", {
          nodeUuid: node.uuid,
          unitUuid: node.unitUuid,
          payload,
        });
        // Federation relays values of followed outputs to other instances (src/federation/relay.ts).
        if (node.type === "Output") {
          events.emit("unit-node.value", { nodeUuid: node.uuid, unitUuid: node.unitUuid, payload });
        }
      }
      return;
    }
    if (parsed.section !== "output_base_topic" || !acl.index.units.has(parsed.unitUuid)) return;
    if (parsed.name === "state/pepeunit") ingest.state(parsed.unitUuid, payload);
    else if (parsed.name === "log/pepeunit") ingest.logs(parsed.unitUuid, payload);
  }

  const limits = {
    maxPacketBytes: config.mqttMaxPayloadBytes + PACKET_OVERHEAD,
    maxPerSecond: config.mqttMaxMsgPerS,
  };
  // One of each for every connection, not a closure per connection (see frame-guard.ts).
  const onViolation: ViolationHandler = (reason, guarded) => {
    stats.dropped[violationReason(reason)]++;
    const clientId = (guarded as unknown as { client?: Client }).client?.id;
    log.warn(
      { clientId, remote: guarded.remote, reason },
      "mqtt: connection refused, disconnecting",
    );
  };
  function forgetSocket(this: GuardedConnection) {
    sockets.delete(this);
  }
  const handle = (stream: Duplex, remote: string, req?: IncomingMessage) => {
    if (!aedes || aedes.closed) {
      stream.destroy();
      return;
    }
    const guarded = new GuardedConnection(stream, limits, onViolation, stats);
    guarded.remote = remote;
    sockets.add(guarded);
    // A stream emits "close" once: a plain listener, without once()'s wrapper.
    guarded.on("close", forgetSocket);
    leanParserBuffer(aedes.handle(guarded, req));
  };

  const listeners: Listener[] = [];
  let detachWs: (() => void) | undefined;
  let userTimer: NodeJS.Timeout | undefined;
  let stopUserRevocations: (() => void) | undefined;

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= shutdown();
    return closing;
  };
  async function shutdown() {
    if (userTimer) clearInterval(userTimer);
    acl.stop();
    events.off("unit.deleted", onUnitDeleted);
    events.off("unit.token-rotated", onTokenRotated);
    stopUserRevocations?.();
    events.off("federation.remote-edges.changed", enforce);
    events.off("unit.online", onOnlineEvent);
    detachWs?.();
    const closing = listeners.splice(0).map((l) => l.close());
    if (aedes && !aedes.closed) {
      const a = aedes;
      await new Promise<void>((resolve) => a.close(() => resolve()));
    }
    // Connections that never finished CONNECT are not Aedes clients yet.
    for (const s of sockets) s.destroy();
    await Promise.all(closing);
    await presenceChain;
    await presence?.close();
    await fabric?.close();
    await ingest.close();
  }

  try {
    await acl.start();
    aedes = await Aedes.createBroker({
      ...hooks,
      // Cluster: nothing of a session only in this process's memory (another process
      // resumes it); every publish reaches the subscribers of every process.
      ...(fabric
        ? { mq: fabric.mq, persistence: fabric.persistence }
        : { mq: createMessageEmitter() }),
      maxTopicLevels: fabric
        ? fabric.maxTopicLevels(config.mqttMaxTopicLevels)
        : config.mqttMaxTopicLevels,
      // Unit uuids are 36 characters; the 23 of MQTT 3.1 would refuse them.
      maxClientsIdLength: 128,
      connectTimeout: 10_000,
      concurrency: EMITTER_CONCURRENCY,
    });
    aedes.on("clientReady", (client) => {
      // Closed while its session was being set up (a takeover from another process during
      // the session store's read): its disconnect was already handled, it must not count.
      if ((client as unknown as { closed: boolean }).closed) return;
      const info = conns.get(client);
      const p = info?.principal;
      // Revoked between its login check and now.
      if (info && p && revokedSince(revocations, p, info.epoch)) {
        closeClient(client, "token revoked");
        return;
      }
      if (p?.kind === "unit") ingest.seen(p.uuid);
      if (conns.ready(client) && p?.kind === "unit") announceOnline(p.uuid, true);
    });
    aedes.on("clientDisconnect", (client) => clientGone(client));
    aedes.on("clientError", (client, err) => {
      clientGone(client);
      log.info({ clientId: client.id, reason: err.message }, "mqtt: client disconnected on error");
    });
    aedes.on("connectionError", (_client, err) =>
      log.debug({ reason: err.message }, "mqtt: connection failed before login"),
    );
    events.on("unit.deleted", onUnitDeleted);
    events.on("unit.token-rotated", onTokenRotated);
    if (presence) {
      events.on("unit.online", onOnlineEvent);
      await presence.tick();
    }
    stopUserRevocations = watchUserRevocations({
      events,
      conns,
      revocations,
      resolvePrincipal: deps.resolvePrincipal,
      log,
      clients: () => (aedes ? Object.values(registeredClients(aedes)) : []),
      close: closeClient,
    });

    userTimer = setInterval(() => {
      recheckUsers().catch((err: unknown) => log.error({ err }, "mqtt: user re-check failed"));
    }, USER_RECHECK_MS);
    userTimer.unref();
  } catch (err) {
    await close().catch(() => {});
    throw err;
  }

  async function listen(): Promise<void> {
    try {
      listeners.push(await listenTcp(config.mqttBindHost, config.mqttPort, handle));
      if (config.tlsCertFile && config.tlsKeyFile) {
        listeners.push(
          await listenTls(
            config.mqttBindHost,
            config.mqttsPort,
            { cert: config.tlsCertFile, key: config.tlsKeyFile },
            handle,
            (err, remote) =>
              log.debug({ remote, reason: err.message }, "mqtt: TLS handshake failed"),
          ),
        );
      }
    } catch (err) {
      await close().catch(() => {});
      throw err;
    }
    const [tcp, tlsListener] = listeners;
    log.info(
      { tcpPort: tcp?.port, tlsPort: tlsListener?.port ?? null, bind: config.mqttBindHost },
      "mqtt broker listening",
    );
  }

  // Federation's remote edges change which remote topics units may hold.
  events.on("federation.remote-edges.changed", enforce);

  return {
    setRemoteTopicAccess(check) {
      acl.index.remoteTopicAccess = check;
      enforce();
    },
    publish(topic, payload, opts = {}) {
      return new Promise((resolve, reject) => {
        if (!aedes || aedes.closed) return reject(new Error("the MQTT broker is closed"));
        const bytes = Buffer.from(payload);
        ingestPublish(topic, bytes, { kind: "internal" });
        aedes.publish(
          {
            cmd: "publish",
            topic,
            payload: bytes,
            qos: opts.qos ?? 0,
            retain: false,
            dup: false,
          },
          (err) => (err ? reject(err) : resolve()),
        );
      });
    },
    isOnline: (unitUuid) => conns.isOnline(unitUuid) || (presence?.has(unitUuid) ?? false),
    onlineUnits() {
      const local = conns.onlineUnits();
      if (!presence) return local;
      return [...new Set([...local, ...presence.units()])];
    },
    attachWebSocket(server) {
      detachWs?.();
      detachWs = attachWebSocket(server, WEBSOCKET_PATH, limits.maxPacketBytes, handle);
    },
    listen,
    get tcpPort() {
      return listeners[0]?.port ?? config.mqttPort;
    },
    get tlsPort() {
      return listeners[1]?.port ?? null;
    },
    internalCredentials: { username: INTERNAL_USERNAME, password: internalSecret },
    flush: () => ingest.flush(),
    pruneLogs: () => ingest.pruneLogs(),
    close,
    stats: {
      mqtt: stats,
      ingest: ingest.stats,
      ingestPending: () => ingest.pending(),
      clientsByKind() {
        const counts: Record<ClientKind, number> = { unit: 0, user: 0, internal: 0, connecting: 0 };
        const clients = aedes ? Object.values(registeredClients(aedes)) : [];
        for (const client of clients) {
          const kind = conns.get(client)?.principal.kind;
          if (kind) counts[kind]++;
        }
        // Sockets whose CONNECT is not through yet (or never will be).
        counts.connecting = Math.max(0, sockets.size - clients.length);
        return counts;
      },
    },
  };
}
