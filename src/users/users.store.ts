import { and, count, eq, inArray, lt, ne, or, sql } from "drizzle-orm";
import type { DbLike } from "../db/database.ts";
import {
  instanceSettings,
  type RegistrationMode,
  repos,
  revokedTokens,
  type UserStatus,
  units,
  users,
} from "../db/schema.ts";

export async function findUserByLoginOrEmail(db: DbLike, loginOrEmail: string) {
  const key = loginOrEmail.toLowerCase();
  const [u] = await db
    .select()
    .from(users)
    .where(or(eq(sql`lower(${users.login})`, key), eq(sql`lower(${users.email})`, key)));
  return u;
}

export async function findUser(db: DbLike, uuid: string) {
  const [u] = await db.select().from(users).where(eq(users.uuid, uuid));
  return u;
}

export async function loginOrEmailTaken(
  db: DbLike,
  login: string,
  email: string,
): Promise<"login" | "email" | null> {
  const rows = await db
    .select({ login: users.login, email: users.email })
    .from(users)
    .where(
      or(
        eq(sql`lower(${users.login})`, login.toLowerCase()),
        eq(sql`lower(${users.email})`, email.toLowerCase()),
      ),
    );
  if (rows.some((r) => r.login.toLowerCase() === login.toLowerCase())) return "login";
  if (rows.length) return "email";
  return null;
}

export async function countUsers(db: DbLike): Promise<number> {
  const [row] = await db.select({ n: count() }).from(users);
  return row?.n ?? 0;
}

export async function setUserStatus(
  db: DbLike,
  uuid: string,
  status: UserStatus,
  bumpTokens = false,
) {
  const [u] = await db
    .update(users)
    .set({
      status,
      updatedAt: new Date(),
      ...(bumpTokens ? { tokenVersion: sql`${users.tokenVersion} + 1` } : {}),
    })
    .where(eq(users.uuid, uuid))
    .returning();
  return u;
}

export async function getRegistrationMode(db: DbLike): Promise<RegistrationMode> {
  const [row] = await db.select().from(instanceSettings).where(eq(instanceSettings.id, 1));
  return row?.registrationMode ?? "Open";
}

export async function setRegistrationMode(db: DbLike, mode: RegistrationMode): Promise<void> {
  await db
    .insert(instanceSettings)
    .values({ id: 1, registrationMode: mode })
    .onConflictDoUpdate({
      target: instanceSettings.id,
      set: { registrationMode: mode, updatedAt: new Date() },
    });
}

/** Repos of this user that other users' units are built from: they block deleting the user. */
export async function reposUsedByOthers(db: DbLike, userUuid: string) {
  return db
    .selectDistinct({ uuid: repos.uuid, name: repos.name })
    .from(repos)
    .innerJoin(units, eq(units.repoUuid, repos.uuid))
    .where(and(eq(repos.creatorUuid, userUuid), ne(units.creatorUuid, userUuid)));
}

/** Deletes the user's units (edges and variables cascade), repos, then the user. */
export async function deleteUserCascade(
  db: DbLike,
  userUuid: string,
): Promise<{ repoUuids: string[]; unitUuids: string[] }> {
  return db.transaction(async (tx) => {
    const ownUnits = await tx
      .delete(units)
      .where(eq(units.creatorUuid, userUuid))
      .returning({ uuid: units.uuid });
    const ownRepos = await tx
      .select({ uuid: repos.uuid })
      .from(repos)
      .where(eq(repos.creatorUuid, userUuid));
    if (ownRepos.length)
      await tx.delete(repos).where(
        inArray(
          repos.uuid,
          ownRepos.map((r) => r.uuid),
        ),
      );
    await tx.delete(users).where(eq(users.uuid, userUuid));
    return { repoUuids: ownRepos.map((r) => r.uuid), unitUuids: ownUnits.map((u) => u.uuid) };
  });
}

// Any constant will do: it names the one advisory lock every registration takes.
const REGISTRATION_LOCK = 7_301_001;

/**
 * Runs `fn` in a transaction holding the registration lock, so "is this the first
 * user?" and the insert that acts on the answer happen as one step: parallel
 * registrations on a fresh instance make exactly one admin.
 */
export async function withRegistrationLock<T>(
  db: DbLike,
  fn: (tx: DbLike) => Promise<T>,
): Promise<T> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${REGISTRATION_LOCK})`);
    return fn(tx);
  });
}

/**
 * Sets a new password hash only if the stored one is still `expectedHash` (a reset link
 * or a rehash raced by another change does nothing); `revoke` also ends every session.
 */
export async function replacePasswordHash(
  db: DbLike,
  uuid: string,
  expectedHash: string,
  newHash: string,
  revoke: boolean,
) {
  const [u] = await db
    .update(users)
    .set({
      passwordHash: newHash,
      updatedAt: new Date(),
      ...(revoke ? { tokenVersion: sql`${users.tokenVersion} + 1` } : {}),
    })
    .where(and(eq(users.uuid, uuid), eq(users.passwordHash, expectedHash)))
    .returning();
  return u;
}

/** Ends every session of the user (their token version moves on). */
export async function bumpTokenVersion(db: DbLike, uuid: string): Promise<void> {
  await db
    .update(users)
    .set({ tokenVersion: sql`${users.tokenVersion} + 1`, updatedAt: new Date() })
    .where(eq(users.uuid, uuid));
}

/** Refuses one token until it expires anyway; expired entries are dropped on the way. */
export async function revokeTokenId(db: DbLike, jti: string, expiresAt: Date): Promise<void> {
  await db.insert(revokedTokens).values({ jti, expiresAt }).onConflictDoNothing();
  await db.delete(revokedTokens).where(lt(revokedTokens.expiresAt, sql`now()`));
}
