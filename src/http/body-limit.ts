import type { Context, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";

/**
 * A route that needs a larger request body than the global limit.
 * `path` is matched against the full request path (API prefix included).
 * `streamedByRoute`: the route reads its body as a stream and caps it itself
 * (after checking the caller), so nothing is buffered here; only a declared
 * Content-Length over `maxBytes` is refused up front.
 */
export type LargerBodyRoute = {
  method: string;
  path: RegExp;
  maxBytes: number;
  streamedByRoute?: boolean;
};

/**
 * Routes that may receive more than PEPEUNIT_MAX_BODY_KB. To let a route take a
 * bigger body, add a line here (and nowhere else: the limit is enforced before
 * authentication, so the route's own middleware would run too late).
 */
export const LARGER_BODY_ROUTES: LargerBodyRoute[] = [
  // History CSV import (src/history/): up to 20 MB, parsed as it streams.
  {
    method: "POST",
    path: /^\/pepeunit\/api\/v1\/unit_nodes\/set_data_pipe_data_csv\/[^/]+$/,
    maxBytes: 20 * 1024 * 1024,
    streamedByRoute: true,
  },
];

// Connection: close, so the client reads the 413 while its body is still arriving
// (kept alive, the server drains the rest only briefly and then resets the socket).
const tooLarge = (c: Context) =>
  c.json({ detail: "request body too large" }, 413, { Connection: "close" });

/**
 * Refuses request bodies over the limit before anything reads them: a declared
 * Content-Length over the limit is answered 413 at once, a chunked body is
 * counted as it streams and refused as soon as it passes the limit (hono's
 * bodyLimit; it keeps at most `maxBytes` in memory).
 */
export function requestBodyLimit(
  defaultMaxBytes: number,
  larger: LargerBodyRoute[] = LARGER_BODY_ROUTES,
): MiddlewareHandler {
  const fallback = bodyLimit({ maxSize: defaultMaxBytes, onError: tooLarge });
  const overrides = larger.map((r) => ({
    ...r,
    method: r.method.toUpperCase(),
    limit: r.streamedByRoute
      ? declaredLengthLimit(r.maxBytes)
      : bodyLimit({ maxSize: r.maxBytes, onError: tooLarge }),
  }));
  return (c, next) => {
    const method = c.req.method;
    // No body can arrive with these (the request has none), and asking for it would
    // build the full WHATWG Request of @hono/node-server: the hot reads' largest cost.
    if (method === "GET" || method === "HEAD") return next();
    const override = overrides.find((r) => r.method === method && r.path.test(c.req.path));
    return (override?.limit ?? fallback)(c, next);
  };
}

function declaredLengthLimit(maxBytes: number): MiddlewareHandler {
  return (c, next) => {
    const declared = Number(c.req.header("content-length") ?? "NaN");
    return declared > maxBytes ? Promise.resolve(tooLarge(c)) : next();
  };
}

export class BodyTooLargeError extends Error {}

/**
 * The whole body of a request, read chunk by chunk and abandoned (stream
 * cancelled) as soon as it passes `maxBytes`, whatever Content-Length says.
 */
export async function readBodyCapped(
  request: Request,
  maxBytes: number,
): Promise<Uint8Array<ArrayBuffer>> {
  const declared = Number(request.headers.get("content-length") ?? "NaN");
  if (declared > maxBytes) throw new BodyTooLargeError();
  if (!request.body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = request.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > maxBytes) {
      await reader.cancel().catch(() => {});
      throw new BodyTooLargeError();
    }
    chunks.push(value);
  }
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.length;
  }
  return body;
}
