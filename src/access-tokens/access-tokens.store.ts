import { and, asc, eq, lt, ne, or, sql } from "drizzle-orm";
import type { DbLike } from "../db/database.ts";
import { type AccessTokenScope, accessTokens, users } from "../db/schema.ts";

// Last use is recorded at most this often: a Grafana dashboard refreshing every few
// seconds must not turn every read into a write.
const LAST_USED_GRANULARITY_MS = 60_000;

export type AccessTokenRow = typeof accessTokens.$inferSelect;

export async function insertAccessToken(
  db: DbLike,
  row: {
    uuid: string;
    userUuid: string;
    name: string;
    scope: AccessTokenScope;
    secretHash: string;
    expiresAt: Date | null;
  },
): Promise<AccessTokenRow | undefined> {
  // The user's current token version, read in the same statement: a password change
  // racing this insert leaves a row it already revokes.
  const [inserted] = await db
    .insert(accessTokens)
    .values({
      ...row,
      tokenVersion: sql`(select ${users.tokenVersion} from ${users} where ${users.uuid} = ${row.userUuid})`,
    })
    .returning();
  return inserted;
}

/**
 * Drops the user's tokens a password change, block or logout of every session revoked
 * (their version is older than the user's) and the expired ones: they are refused
 * anyway; this keeps the list showing only tokens that still work.
 */
export async function pruneRevokedAccessTokens(db: DbLike, userUuid: string): Promise<void> {
  await db
    .delete(accessTokens)
    .where(
      and(
        eq(accessTokens.userUuid, userUuid),
        or(
          ne(
            accessTokens.tokenVersion,
            sql`(select ${users.tokenVersion} from ${users} where ${users.uuid} = ${userUuid})`,
          ),
          lt(accessTokens.expiresAt, new Date()),
        ),
      ),
    );
}

export async function listAccessTokens(db: DbLike, userUuid: string): Promise<AccessTokenRow[]> {
  return db
    .select()
    .from(accessTokens)
    .where(eq(accessTokens.userUuid, userUuid))
    .orderBy(asc(accessTokens.createdAt), asc(accessTokens.uuid));
}

/** Deletes one of the user's tokens; false when the user has no token with that uuid. */
export async function deleteAccessToken(
  db: DbLike,
  userUuid: string,
  tokenUuid: string,
): Promise<boolean> {
  const removed = await db
    .delete(accessTokens)
    .where(and(eq(accessTokens.userUuid, userUuid), eq(accessTokens.uuid, tokenUuid)))
    .returning({ uuid: accessTokens.uuid });
  return removed.length > 0;
}

/** The token with this secret hash and its user's current state, for the resolver. */
export async function findAccessTokenOwner(db: DbLike, secretHash: string) {
  const [row] = await db
    .select({
      tokenUuid: accessTokens.uuid,
      scope: accessTokens.scope,
      tokenVersion: accessTokens.tokenVersion,
      expiresAt: accessTokens.expiresAt,
      lastUsedAt: accessTokens.lastUsedAt,
      userUuid: users.uuid,
      role: users.role,
      login: users.login,
      status: users.status,
      userVersion: users.tokenVersion,
    })
    .from(accessTokens)
    .innerJoin(users, eq(users.uuid, accessTokens.userUuid))
    .where(eq(accessTokens.secretHash, secretHash));
  return row;
}

export async function touchAccessToken(
  db: DbLike,
  tokenUuid: string,
  lastUsedAt: Date | null,
): Promise<void> {
  const now = new Date();
  if (lastUsedAt && now.getTime() - lastUsedAt.getTime() < LAST_USED_GRANULARITY_MS) return;
  await db.update(accessTokens).set({ lastUsedAt: now }).where(eq(accessTokens.uuid, tokenUuid));
}
