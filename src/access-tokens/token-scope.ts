import type { Principal } from "../access/principal.ts";

// What a personal access token may reach, decided once per request before any route
// runs (src/http/auth.ts), so a new route is safe by default:
// - a read token reaches only the GET routes listed here: metadata and value history.
//   Never env.json, firmware archives, state storage, unit logs (they carry secrets or
//   device output), nor the token, password and admin routes;
// - a write token acts as its user everywhere except the account itself: its tokens,
//   password, sessions and deletion, and the admin routes. Only a login's session may.
// Paths are relative to the API prefix.

const UUID = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";

const route = (pattern: string) => new RegExp(`^${pattern.replaceAll("{uuid}", UUID)}/?$`);

/** GET routes a read token may call. */
const READABLE = [
  "/users/me",
  "/units",
  "/units/{uuid}",
  "/unit_nodes",
  "/unit_nodes/{uuid}",
  "/unit_node_edges",
  "/repos",
  "/repos/{uuid}",
  "/repos/{uuid}/versions",
  "/unit_nodes/get_data_pipe_data",
  "/unit_nodes/get_data_pipe_data_csv/{uuid}",
  "/unit_nodes/get_data_pipe_config/{uuid}",
  "/boards",
  "/boards/{uuid}",
].map(route);

/** Routes of /users a write token may call (GET only): the rest manage the account. */
const WRITE_TOKEN_USER_ROUTES = ["/users/me", "/users/{uuid}"].map(route);

const ADMIN = /^\/admin(\/|$)/;
const USERS = /^\/users(\/|$)/;

/** Why this principal may not make this request, or null when its scope allows it. */
export function scopeRefusal(principal: Principal, method: string, path: string): string | null {
  if (principal.kind !== "user" || principal.scope === "session") return null;
  const reading = method === "GET" || method === "HEAD";
  if (principal.scope === "read") {
    if (!reading) return "a read-only access token cannot change anything";
    if (!READABLE.some((r) => r.test(path)))
      return "a read-only access token cannot read this (only metadata and history)";
    return null;
  }
  if (ADMIN.test(path)) return "access tokens cannot use the admin routes; log in instead";
  if (USERS.test(path) && !(reading && WRITE_TOKEN_USER_ROUTES.some((r) => r.test(path))))
    return "access tokens cannot manage the account (tokens, password, sessions); log in instead";
  return null;
}
