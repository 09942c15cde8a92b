import { eq, sql } from "drizzle-orm";
import { findAccessTokenOwner, touchAccessToken } from "../access-tokens/access-tokens.store.ts";
import { hashAccessToken, isAccessToken } from "../access-tokens/token-secret.ts";
import type { Config } from "../config.ts";
import { peekTokenType, verifyUnitToken, verifyUserToken } from "../crypto/tokens.ts";
import type { Db } from "../db/database.ts";
import { revokedTokens, units, users } from "../db/schema.ts";
import type { EventBus } from "../events.ts";
import type { Principal } from "./principal.ts";

export type PrincipalResolver = (token: string) => Promise<Principal | null>;

/** A resolver that remembers: `size` is how many tokens it holds right now. */
export type CachingPrincipalResolver = PrincipalResolver & { readonly size: number };

/**
 * A personal access token: refused once deleted, expired, or revoked with the rest of
 * the user's tokens (password change, block: the user's token version moved on).
 */
async function resolveAccessToken(db: Db, token: string): Promise<Principal | null> {
  const row = await findAccessTokenOwner(db, hashAccessToken(token));
  if (!row || row.tokenVersion !== row.userVersion || row.status !== "Active") return null;
  if (row.expiresAt && row.expiresAt.getTime() <= Date.now()) return null;
  await touchAccessToken(db, row.tokenUuid, row.lastUsedAt);
  return {
    kind: "user",
    uuid: row.userUuid,
    role: row.role,
    login: row.login,
    scope: row.scope,
    tokenId: row.tokenUuid,
  };
}

/**
 * Turns a raw JWT into a principal, or null when the token is not (or no longer)
 * valid: a deleted unit, a rotated unit token, a blocked user (their own tokens and
 * their units' tokens, the latter until unblocked), a changed password, a logout,
 * a deleted or expired personal access token.
 */
export function createPrincipalResolver(deps: { db: Db; config: Config }): PrincipalResolver {
  const { db, config } = deps;
  return async (token) => {
    if (isAccessToken(token)) return resolveAccessToken(db, token);
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
      return {
        kind: "user",
        uuid: user.uuid,
        role: user.role,
        login: user.login,
        scope: "session",
        tokenId: claims.jti,
      };
    }
    return null;
  };
}

/**
 * Remembers resolved tokens for a few seconds so a busy device or UI does not cost a
 * database read per request. Revocations in this process (unit deleted, token rotated,
 * user blocked / password changed / deleted / logged out) drop the entries at once;
 * other processes sharing the database see them within `ttlMs`. Expired entries leave
 * the map, on a timer too: a token is not held longer than that after its last use
 * (1 000 devices connecting once left 0.3 MB of them for good).
 */
export function cachePrincipals(
  resolve: PrincipalResolver,
  events: EventBus,
  opts: { ttlMs?: number; maxEntries?: number } = {},
): CachingPrincipalResolver {
  const ttlMs = opts.ttlMs ?? 5_000;
  const maxEntries = opts.maxEntries ?? 10_000;
  // `tokenId`: a session's jti or an access token's uuid, named by "user.token-revoked".
  // In insertion order, which is expiry order (an entry is re-inserted, never updated).
  const cache = new Map<
    string,
    { principal: Principal; expires: number; tokenId: string | null }
  >();
  let sweepTimer: NodeJS.Timeout | null = null;
  const sweep = () => {
    const now = Date.now();
    for (const [token, entry] of cache) {
      if (entry.expires > now) break;
      cache.delete(token);
    }
  };
  const sweepLater = () => {
    if (sweepTimer) return;
    const first = cache.values().next().value;
    if (!first) return;
    sweepTimer = setTimeout(
      () => {
        sweepTimer = null;
        sweep();
        sweepLater();
      },
      Math.max(first.expires - Date.now(), 0) + 1,
    );
    sweepTimer.unref();
  };
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
    for (const [token, entry] of cache) if (entry.tokenId === jti) cache.delete(token);
  });
  const cached: PrincipalResolver = async (token) => {
    const now = Date.now();
    const hit = cache.get(token);
    if (hit && hit.expires > now) return hit.principal;
    const seen = revocations;
    const principal = await resolve(token);
    cache.delete(token);
    // Only valid tokens are kept: an attacker's garbage must not fill the map.
    if (principal && seen === revocations) {
      sweep();
      if (cache.size >= maxEntries) cache.delete(cache.keys().next().value as string);
      const tokenId = principal.kind === "user" ? principal.tokenId : null;
      cache.set(token, { principal, expires: Date.now() + ttlMs, tokenId });
      sweepLater();
    }
    return principal;
  };
  return Object.defineProperty(cached, "size", {
    get: () => cache.size,
  }) as CachingPrincipalResolver;
}
