import { and, eq, gt, inArray, lt, sql } from "drizzle-orm";
import type { DbLike } from "../db/database.ts";
import { loginAttempts } from "../db/schema.ts";

/** How failed logins turn into a wait; see login-throttle.ts. */
export type FailurePolicy = {
  /** Failures allowed before any wait. */
  freeFailures: number;
  /** The first wait; each further failure doubles it. */
  baseDelayS: number;
  /** No wait is ever longer: an account is slowed down, never locked out for good. */
  maxDelayS: number;
  /** A counter whose last failure is older than this starts again from zero. */
  forgetAfterS: number;
};

/** Seconds until every one of `keys` may try again (0: now). Database time, so processes agree. */
export async function secondsBlocked(db: DbLike, keys: string[]): Promise<number> {
  const [row] = await db
    .select({
      wait: sql<number | null>`max(extract(epoch from (${loginAttempts.blockedUntil} - now())))`,
    })
    .from(loginAttempts)
    .where(and(inArray(loginAttempts.key, keys), gt(loginAttempts.blockedUntil, sql`now()`)));
  const wait = Number(row?.wait ?? 0);
  return wait > 0 ? Math.ceil(wait) : 0;
}

/** Counts one failure of `key` atomically (parallel failures all count) and sets its wait. */
export async function recordFailure(db: DbLike, key: string, policy: FailurePolicy) {
  const t = loginAttempts;
  // In ON CONFLICT DO UPDATE the column names are the old row: the new count is spelled out.
  const failures = sql`(case when ${t.lastFailureAt} < now() - make_interval(secs => ${policy.forgetAfterS}) then 1 else ${t.failures} + 1 end)`;
  const delay = sql`least(${policy.maxDelayS}::float8, ${policy.baseDelayS}::float8 * power(2::float8, ${failures} - ${policy.freeFailures} - 1))`;
  await db
    .insert(t)
    .values({ key, failures: 1, lastFailureAt: sql`now()`, blockedUntil: null })
    .onConflictDoUpdate({
      target: t.key,
      set: {
        failures,
        lastFailureAt: sql`now()`,
        blockedUntil: sql`case when ${failures} > ${policy.freeFailures} then now() + make_interval(secs => ${delay}) else null end`,
      },
    });
}

export async function clearFailures(db: DbLike, key: string): Promise<void> {
  await db.delete(loginAttempts).where(eq(loginAttempts.key, key));
}

/** Drops counters nobody has failed on for `forgetAfterS` (they would restart from zero anyway). */
export async function trimFailures(db: DbLike, forgetAfterS: number): Promise<void> {
  await db
    .delete(loginAttempts)
    .where(lt(loginAttempts.lastFailureAt, sql`now() - make_interval(secs => ${forgetAfterS})`));
}
