// Hash routes (parsed without runes, so the logic is testable in Node), so deep links work on any static host and never reach the API:
//   #/                 the graph          #/unit/<uuid>   graph, unit focused and its pop-up open
//   #/repo/<uuid>      #/variable/<uuid>  #/edge/<uuid>   (same, for those entities)
//   #/login  #/register  #/account  #/admin

export type EntityKind = "repo" | "unit" | "variable" | "edge";
export type Route =
  | { name: "graph"; focus: { kind: EntityKind; uuid: string } | null }
  | { name: "login" }
  | { name: "register" }
  | { name: "account" }
  | { name: "admin" };

const UUID = "[0-9a-fA-F-]{36}";
const ENTITY_RE = new RegExp(`^/(repo|unit|variable|edge)/(${UUID})$`);

export function parseHash(hash: string): Route {
  const path = hash.replace(/^#/, "") || "/";
  const m = ENTITY_RE.exec(path);
  if (m?.[1] && m[2])
    return { name: "graph", focus: { kind: m[1] as EntityKind, uuid: m[2].toLowerCase() } };
  if (path === "/login") return { name: "login" };
  if (path === "/register") return { name: "register" };
  if (path === "/account") return { name: "account" };
  if (path === "/admin") return { name: "admin" };
  return { name: "graph", focus: null };
}

export function hrefOf(route: Route): string {
  if (route.name === "graph")
    return route.focus ? `#/${route.focus.kind}/${route.focus.uuid}` : "#/";
  return `#/${route.name}`;
}
