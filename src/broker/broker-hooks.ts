import { timingSafeEqual } from "node:crypto";
import type {
  Aedes,
  AedesPublishPacket,
  AuthenticateError,
  Client,
  ConnectPacket,
  PublishPacket,
  Subscription,
} from "aedes";
import type { Logger } from "pino";
import type { PrincipalResolver } from "../access/resolve-principal.ts";
import { type BrokerPrincipal, canPublish, canSubscribe } from "./acl-rules.ts";
import type { AclSync } from "./acl-sync.ts";
import { type Connections, registeredClients, samePrincipal } from "./connections.ts";
import { runHook } from "./hook-adapter.ts";
import type { MqttStats } from "./mqtt-stats.ts";
import { type Revocations, revokedSince } from "./user-revocations.ts";

// The Aedes hooks: who may connect, subscribe, publish and receive. Every decision
// denies by default; Aedes' own defaults allow everything.

/** Login name of the instance's own client; its password is a secret made at each start. */
export const INTERNAL_USERNAME = "pepeunit-internal";

/**
 * A publish that is not allowed is re-addressed here instead of disconnecting the
 * client: [MQTT-3.3.5-2] lets a server acknowledge and discard it, and a device still
 * publishing to a topic of its previous version should not be thrown into a reconnect
 * loop. Nobody may subscribe to `$` topics, so nothing is delivered.
 */
export const DROPPED_TOPIC = "$pepeunit/dropped";

// CONNACK return codes of MQTT 3.1.1 (§3.2.2.3).
const IDENTIFIER_REJECTED = 2;
const BAD_USERNAME_OR_PASSWORD = 4;

export type HookDeps = {
  domain: string;
  maxPayloadBytes: number;
  acl: AclSync;
  conns: Connections;
  resolvePrincipal: PrincipalResolver;
  internalSecret: Buffer;
  log: Logger;
  /** Global revocation counter, and when each unit (or owner's units) was last revoked on it. */
  revocations: Revocations;
  broker(): Aedes;
  /** Plain counters the metrics endpoint reads (src/broker/mqtt-stats.ts). */
  stats: MqttStats;
  /**
   * Cluster mode: a CONNECT with clean session 0 keeps its session (QoS 1 queue, in-flight
   * messages) in the shared store, so the device resumes it on whichever process it reaches.
   */
  persistentSessions?: boolean;
  /** Cluster mode: false when another principal holds the client id on another process. */
  claimClientId?(client: Client, principal: BrokerPrincipal): Promise<boolean>;
  /**
   * An allowed publish, before it is acknowledged: what is ingested here survives a
   * clean stop even if the PUBACK was the last thing that happened.
   */
  onPublishAccepted(principal: BrokerPrincipal, packet: PublishPacket): void;
};

class AuthError extends Error {
  readonly returnCode: number;
  constructor(returnCode: number, message: string) {
    super(message);
    this.returnCode = returnCode;
  }
}

function remoteOf(client: Client): string {
  return (client.conn as { remote?: string }).remote ?? "?";
}

export function createHooks(deps: HookDeps) {
  const { domain, acl, conns, log, stats } = deps;
  const callbackFailed = (err: unknown) => log.error({ err }, "mqtt: broker callback threw");
  // The CONNECT packet stays with its connection for good (mqtt-packet's parser keeps it
  // for the protocol level): its credentials are dropped once checked, so a device's JWT
  // is not held for as long as the device is online (nor its ~0.4 KB, per connection).
  const connectPackets = new WeakMap<Client, ConnectPacket>();
  const forgetCredentials = (client: Client) => {
    const packet = connectPackets.get(client);
    if (!packet) return;
    connectPackets.delete(client);
    packet.username = undefined;
    packet.password = undefined;
  };

  async function login(client: Client, username: string | undefined, password?: Buffer) {
    const startedAt = deps.revocations.counter;
    let principal: BrokerPrincipal;
    let token: string | null = null;
    if (username === INTERNAL_USERNAME) {
      const secret = deps.internalSecret;
      const ok = password?.length === secret.length && timingSafeEqual(password, secret);
      if (!ok) throw new AuthError(BAD_USERNAME_OR_PASSWORD, "bad internal credentials");
      principal = { kind: "internal" };
    } else {
      // Devices send the unit JWT as the username with an empty password (§4).
      if (!username) throw new AuthError(BAD_USERNAME_OR_PASSWORD, "no token");
      const p = await deps.resolvePrincipal(username);
      if (!p || p.kind === "anonymous") throw new AuthError(BAD_USERNAME_OR_PASSWORD, "bad token");
      // Personal access tokens are for REST integrations only: a live session would
      // outlive the token's deletion and widen what a leaked read token can watch.
      if (p.kind === "user" && p.scope !== "session")
        throw new AuthError(BAD_USERNAME_OR_PASSWORD, "access tokens are not accepted on MQTT");
      if (p.kind === "unit" && !(await acl.ensureUnit(p.uuid)))
        throw new AuthError(BAD_USERNAME_OR_PASSWORD, "no unit");
      // Rotated, deleted or its owner blocked while this login was being checked.
      if (revokedSince(deps.revocations, p, startedAt)) {
        throw new AuthError(BAD_USERNAME_OR_PASSWORD, "token revoked");
      }
      principal = p;
      // Only a user's login is checked again later (src/broker/user-revocations.ts); a
      // unit's is ended by the revocation counter, so its JWT is not kept per connection.
      if (p.kind === "user") token = username;
    }
    // [MQTT-3.1.4-2] a new connection with a client id in use takes the old one over:
    // only the same principal may do that, or anyone could kick a device off by its uuid.
    const existing = registeredClients(deps.broker())[client.id];
    if (existing && existing !== client) {
      const other = conns.get(existing);
      if (!other || !samePrincipal(other.principal, principal)) {
        throw new AuthError(IDENTIFIER_REJECTED, "client id in use by another principal");
      }
    }
    // Aedes closes a client id's connection on the other processes by itself.
    if (deps.claimClientId && !(await deps.claimClientId(client, principal))) {
      throw new AuthError(IDENTIFIER_REJECTED, "client id in use by another principal");
    }
    conns.set(client, { principal, token, remote: remoteOf(client), epoch: startedAt });
    return true;
  }

  return {
    preConnect(
      client: Client,
      packet: ConnectPacket,
      done: (e: Error | null, ok: boolean) => void,
    ) {
      // One process: sessions are never persisted: the MicroPython client accepts only
      // the exact CONNACK 20 02 00 00, i.e. session-present 0 [MQTT-3.2.2-1], and devices
      // subscribe again after every connect anyway. A cluster keeps them (the session
      // store never reports subscriptions, so session-present stays 0: cluster-fabric.ts).
      if (!deps.persistentSessions) packet.clean = true;
      connectPackets.set(client, packet);
      done(null, true);
    },

    authenticate(
      client: Client,
      username: Readonly<string | undefined>,
      password: Readonly<Buffer | undefined>,
      done: (e: AuthenticateError | null, ok: boolean | null) => void,
    ) {
      runHook(
        () => login(client, username, password),
        () => {
          forgetCredentials(client);
          done(null, true);
        },
        (err) => {
          forgetCredentials(client);
          const code = err instanceof AuthError ? err.returnCode : BAD_USERNAME_OR_PASSWORD;
          log.info(
            { clientId: client.id, remote: remoteOf(client), reason: (err as Error).message },
            "mqtt: connection refused",
          );
          if (!(err instanceof AuthError)) log.error({ err }, "mqtt: login check failed");
          done(new AuthError(code, "refused") as unknown as AuthenticateError, false);
        },
        callbackFailed,
      );
    },

    authorizeSubscribe(
      client: Client,
      sub: Subscription,
      done: (e: Error | null, sub?: Subscription | null) => void,
    ) {
      const info = conns.get(client);
      const decide = () =>
        info !== undefined && canSubscribe(acl.index, domain, info.principal, sub.topic);
      runHook(
        () => {
          const pending = acl.settled();
          return pending ? pending.then(decide) : decide();
        },
        (allowed) => {
          if (!allowed) {
            log.info({ clientId: client.id, topic: sub.topic }, "mqtt: subscription refused");
          }
          // null: SUBACK 0x80 for this topic, the connection stays [MQTT-3.9.3].
          done(null, allowed ? sub : null);
        },
        (err) => {
          log.error({ err }, "mqtt: subscribe check failed");
          done(null, null);
        },
        callbackFailed,
      );
    },

    authorizePublish(
      client: Client | null,
      packet: PublishPacket,
      done: (e?: Error | null) => void,
    ) {
      const info = client ? conns.get(client) : undefined;
      if (!client || !info) return done(new Error("publish without a logged-in client"));
      stats.messagesIn++;
      if (packet.payload.length > deps.maxPayloadBytes) {
        stats.dropped.payload_too_large++;
        log.warn(
          { clientId: client.id, remote: info.remote, bytes: packet.payload.length },
          "mqtt: payload over the limit, disconnecting",
        );
        return done(new Error("payload too large"));
      }
      // Retained messages are not part of the protocol (§4) and would pile up per topic.
      packet.retain = false;
      const decide = () => canPublish(acl.index, domain, info.principal, packet.topic);
      runHook(
        () => {
          const pending = acl.settled();
          return pending ? pending.then(decide) : decide();
        },
        (allowed) => {
          if (allowed) {
            try {
              deps.onPublishAccepted(info.principal, packet);
            } catch (err) {
              log.error({ err, topic: packet.topic }, "mqtt: ingest failed");
            }
          } else {
            stats.dropped.not_allowed++;
            log.info({ clientId: client.id, topic: packet.topic }, "mqtt: publish dropped");
            packet.topic = DROPPED_TOPIC;
          }
          done(null);
        },
        (err) => {
          log.error({ err }, "mqtt: publish check failed");
          stats.dropped.check_failed++;
          packet.topic = DROPPED_TOPIC;
          done(null);
        },
        callbackFailed,
      );
    },

    /** Last check at delivery: a revoked link stops at once, even before its subscription is removed. */
    authorizeForward(client: Client, packet: AedesPublishPacket): AedesPublishPacket | null {
      const info = conns.get(client);
      let allowed = false;
      try {
        allowed =
          info !== undefined && canSubscribe(acl.index, domain, info.principal, packet.topic);
      } catch (err) {
        log.error({ err }, "mqtt: forward check failed");
      }
      if (!allowed) {
        stats.dropped.forward_denied++;
        return null;
      }
      stats.messagesOut++;
      return packet;
    },
  };
}
