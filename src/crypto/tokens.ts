import { createHmac } from "node:crypto";
import { decodeJwt, jwtVerify, SignJWT } from "jose";

// Two kinds of JWT, both HS256 with keys derived from the instance secret.
// Unit tokens: payload exactly {"uuid":"<U>","type":"Unit"} (device-protocol §2),
// no expiry; the key mixes in the unit's salt so rotating the salt revokes the token.
// User tokens: {"uuid","type":"User","ver"} + iat/exp; "ver" is the user's token version.

export type UnitClaims = { uuid: string; type: "Unit" };
export type UserClaims = { uuid: string; type: "User"; ver: number };

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
      typeof payload.ver !== "number"
    ) {
      return null;
    }
    return { uuid: payload.uuid, type: "User", ver: payload.ver };
  } catch {
    return null;
  }
}

/** Purpose-bound short-lived tokens (e.g. e-mail verification links). */
export async function signPurposeToken(
  secret: Uint8Array,
  purpose: string,
  subject: string,
  ttlSeconds: number,
): Promise<string> {
  return new SignJWT({ sub: subject, purpose })
    .setProtectedHeader({ alg: "HS256" })
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
    .sign(new Uint8Array(createHmac("sha256", secret).update(`purpose:${purpose}`).digest()));
}

export async function verifyPurposeToken(
  secret: Uint8Array,
  purpose: string,
  token: string,
): Promise<string | null> {
  try {
    const key = new Uint8Array(createHmac("sha256", secret).update(`purpose:${purpose}`).digest());
    const { payload } = await jwtVerify(token, key, { algorithms: ["HS256"] });
    return payload.purpose === purpose && typeof payload.sub === "string" ? payload.sub : null;
  } catch {
    return null;
  }
}

/** Reads claims without verifying: only to find which key verifies the token. */
export function peekTokenType(token: string): { uuid: string; type: string } | null {
  try {
    const payload = decodeJwt(token);
    if (typeof payload.uuid !== "string" || typeof payload.type !== "string") return null;
    return { uuid: payload.uuid, type: payload.type };
  } catch {
    return null;
  }
}
