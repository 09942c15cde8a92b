import { eq } from "drizzle-orm";
import type { Config } from "../config.ts";
import { peekTokenType, verifyUnitToken, verifyUserToken } from "../crypto/tokens.ts";
import type { Db } from "../db/database.ts";
import { units, users } from "../db/schema.ts";
import type { Principal } from "./principal.ts";

export type PrincipalResolver = (token: string) => Promise<Principal | null>;

/**
 * Turns a raw JWT into a principal, or null when the token is not (or no longer)
 * valid: a deleted unit, a rotated unit token, a blocked user, a changed password.
 */
export function createPrincipalResolver(deps: { db: Db; config: Config }): PrincipalResolver {
  const { db, config } = deps;
  return async (token) => {
    const peek = peekTokenType(token);
    if (!peek || !/^[0-9a-f-]{36}$/.test(peek.uuid)) return null;
    if (peek.type === "Unit") {
      const [unit] = await db
        .select({ uuid: units.uuid, creatorUuid: units.creatorUuid, tokenSalt: units.tokenSalt })
        .from(units)
        .where(eq(units.uuid, peek.uuid));
      if (!unit || !(await verifyUnitToken(config.secretKey, token, unit.tokenSalt))) return null;
      return { kind: "unit", uuid: unit.uuid, creatorUuid: unit.creatorUuid };
    }
    if (peek.type === "User") {
      const claims = await verifyUserToken(config.secretKey, token);
      if (!claims) return null;
      const [user] = await db
        .select({
          uuid: users.uuid,
          role: users.role,
          login: users.login,
          status: users.status,
          ver: users.tokenVersion,
        })
        .from(users)
        .where(eq(users.uuid, claims.uuid));
      if (!user || user.ver !== claims.ver || user.status !== "Active") return null;
      return { kind: "user", uuid: user.uuid, role: user.role, login: user.login };
    }
    return null;
  };
}
