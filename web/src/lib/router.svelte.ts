import { type EntityKind, hrefOf, parseHash, type Route } from "./routes.ts";

export type { EntityKind, Route } from "./routes.ts";

/** The current route, following location.hash. */
export class Router {
  route = $state<Route>(parseHash(location.hash));

  constructor() {
    addEventListener("hashchange", () => {
      this.route = parseHash(location.hash);
    });
  }

  go(route: Route): void {
    const href = hrefOf(route);
    if (location.hash !== href && !(href === "#/" && location.hash === "")) location.hash = href;
    else this.route = route;
  }

  focus(kind: EntityKind, uuid: string): void {
    this.go({ name: "graph", focus: { kind, uuid } });
  }
}

export const router = new Router();
