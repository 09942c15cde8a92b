import type { Client } from "aedes";
import type { Logger } from "pino";
import type { PrincipalResolver } from "../access/resolve-principal.ts";
import type { EventBus } from "../events.ts";
import type { BrokerPrincipal } from "./acl-rules.ts";
import type { Connections } from "./connections.ts";

// How revocations reach live MQTT sessions. A unit token is revoked by deleting the
// unit or rotating its token; every unit of a user stops (and starts again) with the
// user's block (and unblock). A user's own sessions (the UI's live values) end with
// a block, a password change, a deletion or the logout of the token they use.

/**
 * A global revocation counter and when each unit (or each owner's units, at a block)
 * was last revoked on it: a login checked before a revocation and finished after it
 * compares its starting count with these.
 */
export type Revocations = {
  counter: number;
  unitRevokedAt: Map<string, number>;
  ownerBlockedAt: Map<string, number>;
};

export function createRevocations(): Revocations {
  return { counter: 0, unitRevokedAt: new Map(), ownerBlockedAt: new Map() };
}

/** Whether this principal was revoked after its login check began (at count `since`). */
export function revokedSince(r: Revocations, p: BrokerPrincipal, since: number): boolean {
  if (p.kind === "unit") {
    return (
      (r.unitRevokedAt.get(p.uuid) ?? -1) > since ||
      (r.ownerBlockedAt.get(p.creatorUuid) ?? -1) > since
    );
  }
  if (p.kind === "user") return (r.ownerBlockedAt.get(p.uuid) ?? -1) > since;
  return false;
}

export type UserRevocationDeps = {
  events: EventBus;
  conns: Connections;
  revocations: Revocations;
  resolvePrincipal: PrincipalResolver;
  log: Logger;
  /** The broker's logged-in clients right now. */
  clients(): Client[];
  close(client: Client, reason: string): void;
};

/** Follows the user events; returns the function that stops following them. */
export function watchUserRevocations(deps: UserRevocationDeps): () => void {
  const { conns, revocations } = deps;

  const onBlocked = ({ userUuid }: { userUuid: string }) => {
    revocations.counter++;
    revocations.ownerBlockedAt.set(userUuid, revocations.counter);
    for (const client of deps.clients()) {
      const p = conns.get(client)?.principal;
      if (p?.kind === "unit" && p.creatorUuid === userUuid) deps.close(client, "owner blocked");
      else if (p?.kind === "user" && p.uuid === userUuid) deps.close(client, "user blocked");
    }
  };

  /** The user's own sessions: each token is checked again (the principal cache was dropped first). */
  async function recheckUser(userUuid: string) {
    for (const client of deps.clients()) {
      const info = conns.get(client);
      if (info?.principal.kind !== "user" || info.principal.uuid !== userUuid || !info.token)
        continue;
      const p = await deps.resolvePrincipal(info.token);
      if (p?.kind !== "user") deps.close(client, "user token revoked");
    }
  }
  const onRevoked = ({ userUuid }: { userUuid: string }) => {
    recheckUser(userUuid).catch((err: unknown) =>
      deps.log.error({ err }, "mqtt: user token re-check failed"),
    );
  };

  deps.events.on("user.blocked", onBlocked);
  deps.events.on("user.revoked", onRevoked);
  deps.events.on("user.token-revoked", onRevoked);
  return () => {
    deps.events.off("user.blocked", onBlocked);
    deps.events.off("user.revoked", onRevoked);
    deps.events.off("user.token-revoked", onRevoked);
  };
}
