import type { DbLike } from "../db/database.ts";
import {
  clearFailures,
  type FailurePolicy,
  recordFailure,
  secondsBlocked,
  trimFailures,
} from "./login-attempts.store.ts";

// Brute-force brake for POST /users/auth. Failures are counted per account (or per
// login string that names no account, so unknown logins behave the same) and per
// client address; past a few free failures every further one doubles the wait, up
// to 15 minutes. A success clears the account's counter (not the address's: an
// attacker logging into their own account must not reset it).

const FORGET_AFTER_S = 3600;
const MAX_DELAY_S = 15 * 60;

export const ACCOUNT_POLICY: FailurePolicy = {
  freeFailures: 5,
  baseDelayS: 1,
  maxDelayS: MAX_DELAY_S,
  forgetAfterS: FORGET_AFTER_S,
};
/** Many people may share one address (NAT, an office): more failures before a wait. */
export const ADDRESS_POLICY: FailurePolicy = {
  freeFailures: 20,
  baseDelayS: 1,
  maxDelayS: MAX_DELAY_S,
  forgetAfterS: FORGET_AFTER_S,
};
const TRIM_EVERY_MS = 60_000;

/** The wait after `failures` failures (what recordFailure computes in SQL). */
export function delayAfter(failures: number, policy: FailurePolicy): number {
  if (failures <= policy.freeFailures) return 0;
  return Math.min(policy.maxDelayS, policy.baseDelayS * 2 ** (failures - policy.freeFailures - 1));
}

export type LoginSubject = {
  /** `user:<uuid>` for an account, `login:<lowercased login>` for a name that is none. */
  account: string;
  address: string;
};

export function loginSubject(
  user: { uuid: string } | undefined,
  login: string,
  address: string,
): LoginSubject {
  return {
    account: user ? `user:${user.uuid}` : `login:${login.toLowerCase()}`,
    address: `addr:${address}`,
  };
}

export function createLoginThrottle(db: DbLike) {
  let lastTrim = 0;
  return {
    /** Seconds the caller must wait before trying again (0: go ahead). */
    retryAfter: (s: LoginSubject) => secondsBlocked(db, [s.account, s.address]),
    async failed(s: LoginSubject): Promise<void> {
      await recordFailure(db, s.account, ACCOUNT_POLICY);
      await recordFailure(db, s.address, ADDRESS_POLICY);
      if (Date.now() - lastTrim > TRIM_EVERY_MS) {
        lastTrim = Date.now();
        await trimFailures(db, FORGET_AFTER_S);
      }
    },
    succeeded: (s: LoginSubject) => clearFailures(db, s.account),
    /** A new password (reset): earlier failures against the account no longer matter. */
    forgetAccount: (userUuid: string) => clearFailures(db, `user:${userUuid}`),
  };
}

export type LoginThrottle = ReturnType<typeof createLoginThrottle>;
