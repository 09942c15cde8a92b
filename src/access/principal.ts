import type { UserRole } from "../db/schema.ts";

/** Who is calling: resolved once per request (and per MQTT connection) from the token. */
export type Principal =
  | { kind: "anonymous" }
  | { kind: "user"; uuid: string; role: UserRole; login: string }
  | { kind: "unit"; uuid: string; creatorUuid: string };

export const ANONYMOUS: Principal = { kind: "anonymous" };
