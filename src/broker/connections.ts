import type { Aedes, Client } from "aedes";
import type { BrokerPrincipal } from "./acl-rules.ts";

// Who is behind each MQTT connection, and which units are online.

export type ConnInfo = {
  principal: BrokerPrincipal;
  /** A user's JWT, re-checked periodically; null for units and the internal client. */
  token: string | null;
  remote: string;
  /** The revocation counter when its login began: a later revocation of its unit closes it. */
  epoch: number;
};

export function samePrincipal(a: BrokerPrincipal, b: BrokerPrincipal): boolean {
  if (a.kind === "internal" || b.kind === "internal") return a.kind === b.kind;
  return a.kind === b.kind && a.uuid === b.uuid;
}

export class Connections {
  private readonly info = new WeakMap<Client, ConnInfo>();
  // A unit almost always has one connection: a Set (~170 bytes) only while it has two.
  private readonly byUnit = new Map<string, Client | Set<Client>>();

  set(client: Client, info: ConnInfo): void {
    this.info.set(client, info);
  }

  get(client: Client): ConnInfo | undefined {
    return this.info.get(client);
  }

  /** The session is established (CONNACK sent). True when it is the unit's first: it came online. */
  ready(client: Client): boolean {
    const p = this.info.get(client)?.principal;
    if (p?.kind !== "unit") return false;
    const held = this.byUnit.get(p.uuid);
    if (held === undefined) {
      this.byUnit.set(p.uuid, client);
      return true;
    }
    if (held instanceof Set) held.add(client);
    else if (held !== client) this.byUnit.set(p.uuid, new Set([held, client]));
    return false;
  }

  /** True when this was the unit's last connection: it went offline. */
  gone(client: Client): boolean {
    const p = this.info.get(client)?.principal;
    if (p?.kind !== "unit") return false;
    const held = this.byUnit.get(p.uuid);
    // A client may be reported gone twice (an error, then the disconnect).
    if (held instanceof Set) {
      if (!held.delete(client)) return false;
      const [last] = held;
      if (held.size === 1 && last) this.byUnit.set(p.uuid, last);
      return false;
    }
    if (held !== client) return false;
    this.byUnit.delete(p.uuid);
    return true;
  }

  isOnline(unitUuid: string): boolean {
    return this.byUnit.has(unitUuid);
  }

  onlineUnits(): string[] {
    return [...this.byUnit.keys()];
  }
}

/** The broker's logged-in clients by client id (Aedes keeps them in `clients`; its typings omit it). */
export function registeredClients(aedes: Aedes): Record<string, Client> {
  return (aedes as unknown as { clients: Record<string, Client> }).clients;
}
