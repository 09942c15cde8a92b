import type { MiddlewareHandler } from "hono";
import { ANONYMOUS, type Principal } from "../access/principal.ts";
import type { PrincipalResolver } from "../access/resolve-principal.ts";
import { scopeRefusal } from "../access-tokens/token-scope.ts";
import { forbidden, unauthorized } from "./errors.ts";
import type { AppEnv } from "./types.ts";

/** `x-auth-token: <JWT>` (devices send it raw) or `Authorization: Bearer <JWT>`. */
export function readToken(headers: {
  get(name: string): string | null | undefined;
}): string | null {
  const raw = headers.get("x-auth-token")?.trim();
  if (raw) return raw;
  const auth = headers.get("authorization")?.trim();
  if (auth && /^bearer\s+/i.test(auth)) return auth.replace(/^bearer\s+/i, "").trim() || null;
  return null;
}

/**
 * Resolves the caller once per request; a token that is present but invalid is a 401.
 * A personal access token is narrowed to its scope here, before any route: 403.
 */
export function principalMiddleware(resolve: PrincipalResolver): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const token = readToken(c.req.raw.headers);
    let principal: Principal = ANONYMOUS;
    if (token) {
      const resolved = await resolve(token);
      if (!resolved) throw unauthorized("invalid or revoked token");
      principal = resolved;
    }
    // Mounted as `use("*")` under the API prefix: its route path is "<prefix>/*".
    const prefix = c.req.routePath.replace(/\/\*$/, "");
    const refusal = scopeRefusal(principal, c.req.method, c.req.path.slice(prefix.length));
    if (refusal) throw forbidden(refusal);
    c.set("principal", principal);
    await next();
  };
}

export function requireUser(p: Principal): Extract<Principal, { kind: "user" }> {
  if (p.kind === "anonymous") throw unauthorized();
  if (p.kind !== "user") throw forbidden("this endpoint is for users, not units");
  return p;
}

/** An admin logged in with a password: admin settings are never reachable with an access token. */
export function requireAdmin(p: Principal): Extract<Principal, { kind: "user" }> {
  const user = requireUser(p);
  if (user.role !== "Admin") throw forbidden("admin only");
  if (user.scope !== "session") throw forbidden("admin actions need a login session");
  return user;
}

export function requireAuthenticated(p: Principal): Exclude<Principal, { kind: "anonymous" }> {
  if (p.kind === "anonymous") throw unauthorized();
  return p;
}

/** A user logged in with a password (a session), not a personal access token. */
export function requireSession(p: Principal): Extract<Principal, { kind: "user" }> {
  const user = requireUser(p);
  if (user.scope !== "session") throw forbidden("only a login session may do this");
  return user;
}
