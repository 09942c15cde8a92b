import { serve } from "@hono/node-server";
import { Hono } from "hono";

// The REST ceiling: a bare Hono app on @hono/node-server (the instance's HTTP stack,
// nothing else) answering every GET with the body it was given, as JSON. Started by
// bench/suites/rest.ts like a bench server (its own process, pinned to core 0), so the
// reads' req/s can be read as a fraction of what the HTTP layer alone does.

// Parsed once, serialized per request: what a route answering c.json(...) pays too.
const body: unknown = JSON.parse(process.env.CEILING_BODY ?? "{}");
const port = Number(process.env.CEILING_PORT);
const app = new Hono();
app.get("*", (c) => c.json(body as object));
serve({ fetch: app.fetch, port, hostname: "127.0.0.1" }, () => {
  process.send?.("listening");
});
