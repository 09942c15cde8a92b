import type { UserRole } from "../db/schema.ts";

/**
 * How a user authenticated: "session" is a login's JWT (may do everything the user may);
 * "read" and "write" are personal access tokens (src/access-tokens/), narrowed centrally
 * by src/access-tokens/token-scope.ts before any route runs.
 */
export type UserScope = "session" | "read" | "write";

/** Who is calling: resolved once per request (and per MQTT connection) from the token. */
export type Principal =
  | { kind: "anonymous" }
  | {
      kind: "user";
      uuid: string;
      role: UserRole;
      login: string;
      scope: UserScope;
      /** The token's own id (a session's jti or an access token's uuid), to revoke it alone. */
      tokenId: string | null;
    }
  | { kind: "unit"; uuid: string; creatorUuid: string };

export const ANONYMOUS: Principal = { kind: "anonymous" };
