import type { MiddlewareHandler } from "hono";

/**
 * The policy of every page we serve (the graph UI, the API docs) and, harmlessly,
 * of every API answer. Scripts only from our origin (Svelte needs no eval, the docs
 * page has no inline script); styles may be inline because Svelte Flow and Swagger
 * UI position elements with style attributes; connect-src 'self' covers the API
 * and the same-origin MQTT WebSocket (/mqtt); no framing by anyone.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

const HEADERS: Record<string, string> = {
  "content-security-policy": CONTENT_SECURITY_POLICY,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

/** Sets the security headers on every response that did not set its own. */
export function securityHeaders(): MiddlewareHandler {
  return async (c, next) => {
    await next();
    const missing = Object.entries(HEADERS).filter(([name]) => !c.res.headers.has(name));
    try {
      for (const [name, value] of missing) c.res.headers.set(name, value);
    } catch {
      // Headers of a response made by fetch() are immutable: answer with a copy.
      const res = new Response(c.res.body, c.res);
      for (const [name, value] of missing) res.headers.set(name, value);
      c.res = res;
    }
  };
}
