import type { Context, Federation, SenderKeyPair } from "@fedify/fedify";
import type { Logger } from "pino";
import type { Broker } from "../broker/broker.ts";
import type { Config } from "../config.ts";
import type { Database, DbLike } from "../db/database.ts";
import type { EventBus } from "../events.ts";
import type { KeyStore } from "./keys.ts";
import type { Outbox } from "./outbox.ts";
import type { PeerPolicy } from "./policy.ts";

// What every part of the federation bridge shares (built once in federation.ts).

export type FederationDeps = {
  config: Config;
  database: Database;
  log: Logger;
  events: EventBus;
  broker: Pick<Broker, "publish">;
};

export const INSTANCE_ACTOR = "instance";
/** Ordering key of every activity to one peer: Accept before readings, readings in order. */
export const PEER_ORDERING_KEY = "peer";

export type Core = {
  deps: FederationDeps;
  db: DbLike;
  log: Logger;
  fed: Federation<void>;
  policy: PeerPolicy;
  keys: KeyStore;
  /** What each local actor sent (its ActivityPub outbox). */
  outbox: Outbox;
  ctx(): Context<void>;
  instanceUri(): URL;
  /** The instance actor's RSA key alone (no Ed25519 proof: readings stay cheap to sign). */
  instanceRsaSender(): Promise<SenderKeyPair>;
};

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A fresh id for an activity this instance sends (same origin as its actors). */
export function newActivityId(core: Core): URL {
  return new URL(`/ap/activities/${crypto.randomUUID()}`, core.deps.config.baseUrl);
}
