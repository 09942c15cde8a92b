import type { Redis } from "ioredis";
import type { BrokerPrincipal } from "./acl-rules.ts";

// Who holds each MQTT client id across the cluster. Aedes hands a client id over between
// processes by itself (a CONNECT with an id in use elsewhere closes the other process's
// client, [MQTT-3.1.4-2]) and knows nothing of principals: without this record anyone
// logged in on one process could kick a device off another by its client id. Each claim
// expires unless its process refreshes it, so a dead process's ids are free again.

const CLAIM_TTL_MS = 10_000;

// Deletes the claim only if it is still this connection's (a takeover replaced it).
const RELEASE = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) end return 0`;

type Holder = { id: string };

export type ClientIdClaims = {
  /** False when a live connection of another principal holds the client's id. */
  claim(client: Holder, principal: BrokerPrincipal): Promise<boolean>;
  release(client: Holder): Promise<void>;
  /** Renews the claims of this process's live connections. */
  refresh(clients: Holder[]): Promise<void>;
};

function principalKey(p: BrokerPrincipal): string {
  return p.kind === "internal" ? "internal" : `${p.kind}:${p.uuid}`;
}

export function createClientIdClaims(redis: Redis, nodeName: string): ClientIdClaims {
  const key = (clientId: string) => `client-id:${encodeURIComponent(clientId)}`;
  // Each connection's claim is its own (node and a serial): when a later connection of the
  // same principal took the id over, the old one's release must not free the new claim.
  const values = new WeakMap<Holder, string>();
  let serial = 0;

  return {
    async claim(client, principal) {
      const held = await redis.get(key(client.id));
      if (held !== null && held.split(" ")[0] !== principalKey(principal)) return false;
      const value = `${principalKey(principal)} ${nodeName} ${++serial}`;
      values.set(client, value);
      await redis.set(key(client.id), value, "PX", CLAIM_TTL_MS);
      return true;
    },
    async release(client) {
      const value = values.get(client);
      if (value === undefined) return;
      values.delete(client);
      await redis.eval(RELEASE, 1, key(client.id), value);
    },
    async refresh(clients) {
      const pipe = redis.pipeline();
      for (const client of clients) {
        const value = values.get(client);
        if (value !== undefined) pipe.set(key(client.id), value, "PX", CLAIM_TTL_MS);
      }
      if (pipe.length) await pipe.exec();
    },
  };
}
