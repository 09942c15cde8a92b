import { eq, sql } from "drizzle-orm";
import type { Config } from "../config.ts";
import { peekTokenType, verifyUnitToken, verifyUserToken } from "../crypto/tokens.ts";
import type { Db } from "../db/database.ts";
import { revokedTokens, units, users } from "../db/schema.ts";
import type { EventBus } from "../events.ts";
import type { Principal } from "./principal.ts";

export type PrincipalResolver = (token: string) => Promise<Principal | null>;

/**
 * Turns a raw JWT into a principal, or null when the token is not (or no longer)
 * valid: a deleted unit, a rotated unit token, a blocked user (their own tokens and
 * their units' tokens, the latter until unblocked), a changed password, a logout.
 */
export function createPrincipalResolver(deps: { db: Db; config: Config }): PrincipalResolver {
  const { db, config } = deps;
  return async (token) => {
    const peek = peekTokenType(token);
    if (!peek || !/^[0-9a-f-]{36}$/.test(peek.uuid)) return null;
    if (peek.type === "Unit") {
      const [unit] = await db
        .select({
          uuid: units.uuid,
          creatorUuid: units.creatorUuid,
          tokenSalt: units.tokenSalt,
          creatorStatus: users.status,
        })
        .from(units)
        .innerJoin(users, eq(users.uuid, units.creatorUuid))
        .where(eq(units.uuid, peek.uuid));
      if (!unit || !(await verifyUnitToken(config.secretKey, token, unit.tokenSalt))) return null;
      // A blocked owner's devices go quiet with them; unblocking brings them back unchanged.
      if (unit.creatorStatus !== "Active") return null;
      return { kind: "unit", uuid: unit.uuid, creatorUuid: unit.creatorUuid };
    }
    if (peek.type === "User") {
      const claims = await verifyUserToken(config.secretKey, token);
      if (!claims) return null;
      const [user] = await db
        .select({
          uuid: users.uuid,
          role: users.role,
          login: users.login,
          status: users.status,
          ver: users.tokenVersion,
          // Logged out: one query answers both (tokens without a jti cannot be revoked alone).
          revoked: claims.jti
            ? sql<boolean>`exists (select 1 from ${revokedTokens} where ${revokedTokens.jti} = ${claims.jti})`
            : sql<boolean>`false`,
        })
        .from(users)
        .where(eq(users.uuid, claims.uuid));
      if (!user || user.ver !== claims.ver || user.status !== "Active" || user.revoked) return null;
      return { kind: "user", uuid: user.uuid, role: user.role, login: user.login };
    }
    return null;
  };
}

/**
 * Remembers resolved tokens for a few seconds so a busy device or UI does not cost a
 * database read per request. Revocations in this process (unit deleted, token rotated,
 * user blocked / password changed / deleted / logged out) drop the entries at once;
 * other processes sharing the database see them within `ttlMs`.
 */
export function cachePrincipals(
  resolve: PrincipalResolver,
  events: EventBus,
  opts: { ttlMs?: number; maxEntries?: number } = {},
): PrincipalResolver {
  const ttlMs = opts.ttlMs ?? 5_000;
  const maxEntries = opts.maxEntries ?? 10_000;
  const cache = new Map<string, { principal: Principal; expires: number; jti: string | null }>();
  // Bumped by every revocation: a lookup that overlapped one may have read the old state.
  let revocations = 0;
  const dropSubject = (uuid: string) => {
    revocations++;
    for (const [token, entry] of cache) {
      const p = entry.principal;
      if ((p.kind === "unit" || p.kind === "user") && p.uuid === uuid) cache.delete(token);
      else if (p.kind === "unit" && p.creatorUuid === uuid) cache.delete(token);
    }
  };
  events.on("unit.deleted", ({ unitUuid }) => dropSubject(unitUuid));
  events.on("unit.token-rotated", ({ unitUuid }) => dropSubject(unitUuid));
  events.on("user.revoked", ({ userUuid }) => dropSubject(userUuid));
  events.on("user.blocked", ({ userUuid }) => dropSubject(userUuid));
  events.on("user.token-revoked", ({ jti }) => {
    revocations++;
    for (const [token, entry] of cache) if (entry.jti === jti) cache.delete(token);
  });
  return async (token) => {
    const now = Date.now();
    const hit = cache.get(token);
    if (hit && hit.expires > now) return hit.principal;
    const seen = revocations;
    const principal = await resolve(token);
    // Only valid tokens are kept: an attacker's garbage must not fill the map.
    if (principal && seen === revocations) {
      if (cache.size >= maxEntries) cache.delete(cache.keys().next().value as string);
      const jti = peekTokenType(token)?.jti ?? null;
      cache.set(token, { principal, expires: now + ttlMs, jti });
    } else if (!principal) {
      cache.delete(token);
    }
    return principal;
  };
}
