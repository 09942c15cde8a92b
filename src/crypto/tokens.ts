import { createHmac, randomUUID } from "node:crypto";
import { decodeJwt, jwtVerify, SignJWT } from "jose";

// Two kinds of JWT, both HS256 with keys derived from the instance secret.
// Unit tokens: payload exactly {"uuid":"<U>","type":"Unit"} (device-protocol §2),
// no expiry; the key mixes in the unit's salt so rotating the salt revokes the token.
// User tokens: {"uuid","type":"User","ver"} + iat/exp/jti; "ver" is the user's token
// version, "jti" names this one token so logout can revoke it alone. Tokens issued
// before jti existed carry none: they stay valid until they expire (7 days at most).

export type UnitClaims = { uuid: string; type: "Unit" };
export type UserClaims = {
  uuid: string;
  type: "User";
  ver: number;
  /** Absent on tokens issued before logout existed. */
  jti: string | null;
  /** Expiry, seconds since the epoch. */
  exp: number;
};

function unitKey(secret: Uint8Array, salt: string): Uint8Array {
  return new Uint8Array(createHmac("sha256", secret).update(`unit:${salt}`).digest());
}

function userKey(secret: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac("sha256", secret).update("user").digest());
}

export async function signUnitToken(
  secret: Uint8Array,
  unitUuid: string,
  salt: string,
): Promise<string> {
  // Insertion order gives the exact compact payload the MicroPython client searches.
  return new SignJWT({ uuid: unitUuid, type: "Unit" })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .sign(unitKey(secret, salt));
}

export async function verifyUnitToken(
  secret: Uint8Array,
  token: string,
  salt: string,
): Promise<boolean> {
  try {
    await jwtVerify(token, unitKey(secret, salt), { algorithms: ["HS256"] });
    return true;
  } catch {
    return false;
  }
}

export async function signUserToken(
  secret: Uint8Array,
  userUuid: string,
  tokenVersion: number,
  ttlSeconds = 7 * 24 * 3600,
): Promise<string> {
  return new SignJWT({ uuid: userUuid, type: "User", ver: tokenVersion })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setJti(randomUUID())
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
    .sign(userKey(secret));
}

export async function verifyUserToken(
  secret: Uint8Array,
  token: string,
): Promise<UserClaims | null> {
  try {
    const { payload } = await jwtVerify(token, userKey(secret), { algorithms: ["HS256"] });
    if (
      payload.type !== "User" ||
      typeof payload.uuid !== "string" ||
      typeof payload.ver !== "number" ||
      typeof payload.exp !== "number"
    ) {
      return null;
    }
    const jti = typeof payload.jti === "string" ? payload.jti : null;
    return { uuid: payload.uuid, type: "User", ver: payload.ver, jti, exp: payload.exp };
  } catch {
    return null;
  }
}

function purposeKey(secret: Uint8Array, purpose: string): Uint8Array {
  return new Uint8Array(createHmac("sha256", secret).update(`purpose:${purpose}`).digest());
}

/**
 * Purpose-bound short-lived tokens (e.g. e-mail verification links); `extra` claims
 * (strings) are signed along, e.g. to bind a token to a state it must still find.
 */
export async function signPurposeToken(
  secret: Uint8Array,
  purpose: string,
  subject: string,
  ttlSeconds: number,
  extra: Record<string, string> = {},
): Promise<string> {
  return new SignJWT({ ...extra, sub: subject, purpose })
    .setProtectedHeader({ alg: "HS256" })
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
    .sign(purposeKey(secret, purpose));
}

/** The verified claims of a purpose token (`sub` is its subject), or null. */
export async function verifyPurposeClaims(
  secret: Uint8Array,
  purpose: string,
  token: string,
): Promise<(Record<string, unknown> & { sub: string }) | null> {
  try {
    const { payload } = await jwtVerify(token, purposeKey(secret, purpose), {
      algorithms: ["HS256"],
    });
    const sub = payload.sub;
    return payload.purpose === purpose && typeof sub === "string" ? { ...payload, sub } : null;
  } catch {
    return null;
  }
}

export async function verifyPurposeToken(
  secret: Uint8Array,
  purpose: string,
  token: string,
): Promise<string | null> {
  return (await verifyPurposeClaims(secret, purpose, token))?.sub ?? null;
}

/** Reads claims without verifying: only to find which key verifies the token. */
export function peekTokenType(
  token: string,
): { uuid: string; type: string; jti: string | null } | null {
  try {
    const payload = decodeJwt(token);
    if (typeof payload.uuid !== "string" || typeof payload.type !== "string") return null;
    const jti = typeof payload.jti === "string" ? payload.jti : null;
    return { uuid: payload.uuid, type: payload.type, jti };
  } catch {
    return null;
  }
}
