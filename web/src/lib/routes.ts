// Hash routes (parsed without runes, so the logic is testable in Node), so deep links work on any static host and never reach the API:
//   #/                 the graph          #/unit/<uuid>   graph, unit focused and its pop-up open
//   #/repo/<uuid>      #/variable/<uuid>  #/edge/<uuid>   (same, for those entities)
//   #/login  #/register  #/account  #/admin
//   #/boards           the user's boards  #/boards/<uuid>  one board
//   #/forgot           ask for a password reset link
//   #/reset/<token>    the form a reset link opens (the token never reaches a server log)

export type EntityKind = "repo" | "unit" | "variable" | "edge";
export type Route =
  | { name: "graph"; focus: { kind: EntityKind; uuid: string } | null }
  | { name: "login" }
  | { name: "register" }
  | { name: "account" }
  | { name: "admin" }
  | { name: "boards"; uuid: string | null }
  | { name: "forgot" }
  | { name: "reset"; token: string };

const UUID = "[0-9a-fA-F-]{36}";
const ENTITY_RE = new RegExp(`^/(repo|unit|variable|edge)/(${UUID})$`);
// A JWT: base64url parts joined by dots.
const BOARD_RE = new RegExp(`^/boards/(${UUID})$`);
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
  if (path === "/boards") return { name: "boards", uuid: null };
  const board = BOARD_RE.exec(path);
  if (board?.[1]) return { name: "boards", uuid: board[1].toLowerCase() };
  const reset = RESET_RE.exec(path);
  if (reset?.[1]) return { name: "reset", token: reset[1] };
  return { name: "graph", focus: null };
}

export function hrefOf(route: Route): string {
  if (route.name === "graph")
    return route.focus ? `#/${route.focus.kind}/${route.focus.uuid}` : "#/";
  if (route.name === "reset") return `#/reset/${route.token}`;
  if (route.name === "boards") return route.uuid ? `#/boards/${route.uuid}` : "#/boards";
  return `#/${route.name}`;
}
