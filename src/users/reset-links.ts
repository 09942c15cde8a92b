import { createHmac, timingSafeEqual } from "node:crypto";
import { signPurposeToken, verifyPurposeClaims } from "../crypto/tokens.ts";

// Password reset links: a signed token naming the user and a fingerprint of their
// password hash when it was made. Setting a new password changes the hash, so a
// link works once; any other password change also voids older links.

const PURPOSE = "password-reset";
export const RESET_LINK_TTL_S = 30 * 60;

/** Keyed with the instance secret: the (only signed, readable) token reveals nothing of the hash. */
function fingerprint(secret: Uint8Array, passwordHash: string): string {
  return createHmac("sha256", secret).update(`pwf:${passwordHash}`).digest("base64url");
}

export async function signResetToken(
  secret: Uint8Array,
  user: { uuid: string; passwordHash: string },
): Promise<string> {
  return signPurposeToken(secret, PURPOSE, user.uuid, RESET_LINK_TTL_S, {
    pwf: fingerprint(secret, user.passwordHash),
  });
}

/** The SPA's reset form, with the token in the fragment (never sent to a server). */
export function resetLink(baseUrl: string, token: string): string {
  return `${baseUrl}/#/reset/${token}`;
}

/** The user uuid a valid, unexpired token names; check `matches` against their hash too. */
export async function readResetToken(
  secret: Uint8Array,
  token: string,
): Promise<{ userUuid: string; matches(passwordHash: string): boolean } | null> {
  const claims = await verifyPurposeClaims(secret, PURPOSE, token);
  const pwf = claims?.pwf;
  if (!claims || typeof pwf !== "string") return null;
  return {
    userUuid: claims.sub,
    matches(passwordHash) {
      const expected = Buffer.from(fingerprint(secret, passwordHash));
      const given = Buffer.from(pwf);
      return expected.length === given.length && timingSafeEqual(expected, given);
    },
  };
}
