import type { MiddlewareHandler } from "hono";
import type { FederationService } from "./federation.service.ts";

// Fedify as Hono middleware: federation requests (ActivityPub, WebFinger, NodeInfo)
// are answered by Fedify; everything else, and a browser asking an actor URL for
// HTML, falls through to the next handler (the API, the web UI).
export function federationMiddleware(federation: FederationService): MiddlewareHandler {
  return async (c, next) => {
    const res = await federation.fetch(c.req.raw);
    if (res) return res;
    await next();
  };
}
