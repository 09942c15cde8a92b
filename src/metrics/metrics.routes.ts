import { createHash, timingSafeEqual } from "node:crypto";
import { Hono } from "hono";
import type { AppEnv } from "../http/types.ts";
import type { InstanceMetrics } from "./metrics.ts";

export const METRICS_PATH = "/metrics";

const digest = (text: string) => createHash("sha256").update(text).digest();

/**
 * GET /metrics for Prometheus. Off (404, as if absent) without PEPEUNIT_METRICS_TOKEN;
 * with it, only `Authorization: Bearer <token>` gets in. The comparison runs over
 * digests, so it takes the same time whatever the length or content of the guess.
 */
export function metricsRoutes(metrics: InstanceMetrics | undefined, token: string | undefined) {
  const app = new Hono<AppEnv>();
  const expected = token ? digest(token) : null;
  app.get(METRICS_PATH, async (c) => {
    if (!metrics || !expected) return c.json({ detail: "not found" }, 404);
    const m = /^Bearer\s+(.+)$/i.exec(c.req.header("authorization") ?? "");
    if (!m?.[1] || !timingSafeEqual(digest(m[1].trim()), expected)) {
      c.header("WWW-Authenticate", 'Bearer realm="metrics"');
      return c.json({ detail: "a valid metrics bearer token is required" }, 401);
    }
    const body = await metrics.scrape();
    return c.body(body, 200, { "content-type": metrics.registry.contentType });
  });
  return app;
}
