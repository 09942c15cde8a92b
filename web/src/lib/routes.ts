// Hash routes (parsed without runes, so the logic is testable in Node), so deep links work on any static host and never reach the API:
//   #/                 the graph          #/unit/<uuid>   graph, unit focused and its pop-up open
//   #/repo/<uuid>      #/variable/<uuid>  #/edge/<uuid>   (same, for those entities)
//   #/login  #/register  #/account  #/admin
//   #/forgot           ask for a password reset link
//   #/reset/<token>    the form a reset link opens (the token never reaches a server log)

export type EntityKind = "repo" | "unit" | "variable" | "edge";
export type Route =
  | { name: "graph"; focus: { kind: EntityKind; uuid: string } | null }
  | { name: "login" }
  | { name: "register" }
  | { name: "account" }
  | { name: "admin" }
  | { name: "forgot" }
  | { name: "reset"; token: string };

const UUID = "[0-9a-fA-F-]{36}";
const ENTITY_RE = new RegExp(`^/(repo|unit|variable|edge)/(${UUID})$`);
// A JWT: base64url parts joined by dots.
const RESET_RE = /^\/reset\/([A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*)$/;

export function parseHash(hash: string): Route {
  const path = hash.replace(/^#/, "") || "/";
  const m = ENTITY_RE.exec(path);
  if (m?.[1] && m[2])
    return { name: "graph", focus: { kind: m[1] as EntityKind, uuid: m[2].toLowerCase() } };
  if (path === "/login") return { name: "login" };
  if (path === "/register") return { name: "register" };
  if (path === "/account") return { name: "account" };
  if (path === "/admin") return { name: "admin" };
  if (path === "/forgot") return { name: "forgot" };
  const reset = RESET_RE.exec(path);
  if (reset?.[1]) return { name: "reset", token: reset[1] };
  return { name: "graph", focus: null };
}

export function hrefOf(route: Route): string {
  if (route.name === "graph")
    return route.focus ? `#/${route.focus.kind}/${route.focus.uuid}` : "#/";
  if (route.name === "reset") return `#/reset/${route.token}`;
  return `#/${route.name}`;
}
