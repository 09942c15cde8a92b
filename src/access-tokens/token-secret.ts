import { createHash, randomBytes } from "node:crypto";

// A personal access token is `pu_pat_` + 32 random bytes (base64url). The prefix tells
// it from a JWT at a glance (and to secret scanners); only its SHA-256 is stored: the
// secret has 256 bits of entropy, so a fast hash is enough and lookups stay one index read.

export const ACCESS_TOKEN_PREFIX = "pu_pat_";

export function newAccessTokenSecret(): string {
  return `${ACCESS_TOKEN_PREFIX}${randomBytes(32).toString("base64url")}`;
}

export function isAccessToken(token: string): boolean {
  return token.startsWith(ACCESS_TOKEN_PREFIX);
}

export function hashAccessToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}
