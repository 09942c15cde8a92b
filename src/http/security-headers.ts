import type { ServerResponse } from "node:http";
import type { MiddlewareHandler } from "hono";

/**
 * The policy of every page we serve (the graph UI, the API docs) and, harmlessly,
 * of every API answer. Scripts only from our origin (Svelte needs no eval, the docs
 * page has no inline script); style attributes are allowed because Svelte Flow
 * positions nodes with them; connect-src 'self' covers the API and the
 * same-origin MQTT WebSocket (/mqtt); no framing by anyone. Checked in Chromium
 * by test/e2e/csp.test.ts.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  // Svelte Flow places nodes with style attributes; <style> elements stay refused.
  "style-src-attr 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self' data:",
  "connect-src 'self'",
  // mqtt.js keeps its timers in a worker it makes from a blob of its own code.
  "worker-src 'self' blob:",
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

const ENTRIES = Object.entries(HEADERS);

/** Sets the security headers on every response that did not set its own. */
export function securityHeaders(): MiddlewareHandler {
  return async (c, next) => {
    // Served by @hono/node-server: set on Node's response, where the headers the answer
    // carries itself take precedence (writeHead merges them over these). Going through
    // the WHATWG Headers of every answer cost more than a hot read's own work.
    const outgoing = (c.env as { outgoing?: { setHeader?: unknown } } | undefined)?.outgoing;
    if (outgoing && typeof outgoing.setHeader === "function") {
      for (const [name, value] of ENTRIES) (outgoing as ServerResponse).setHeader(name, value);
      return next();
    }
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
