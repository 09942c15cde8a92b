import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { Logger } from "pino";

/** A domain error with the HTTP status it maps to; its message is shown to the caller. */
export class HttpError extends Error {
  readonly status: ContentfulStatusCode;
  constructor(status: ContentfulStatusCode, detail: string) {
    super(detail);
    this.status = status;
  }
}

export const badRequest = (detail: string) => new HttpError(400, detail);
export const unauthorized = (detail = "authentication required") => new HttpError(401, detail);
export const forbidden = (detail = "not allowed") => new HttpError(403, detail);
export const notFound = (what = "entity") => new HttpError(404, `${what} not found`);
export const conflict = (detail: string) => new HttpError(409, detail);
export const unprocessable = (detail: string) => new HttpError(422, detail);

/**
 * What of an unexpected error may go to the log: its name, message, code and stack
 * frames, and the same of its causes. Never the rest: drizzle's DrizzleQueryError
 * and the drivers' errors carry the query parameters (`params`, `parameters`, a
 * `detail` quoting a key's value, and drizzle repeats the params in its message and
 * so in its stack), which hold password hashes, tokens and request bodies.
 */
export function loggableError(err: unknown, depth = 0): Record<string, unknown> {
  if (!(err instanceof Error)) return { message: typeof err === "string" ? err : typeof err };
  const message = err.message.split("\nparams:")[0] ?? "";
  const frames = (err.stack ?? "").split("\n").filter((line) => /^\s+at /.test(line));
  const code = (err as { code?: unknown }).code;
  const out: Record<string, unknown> = {
    type: err.name,
    message,
    stack: [`${err.name}: ${message}`, ...frames].join("\n"),
  };
  if (typeof code === "string" || typeof code === "number") out.code = code;
  if (err.cause !== undefined && depth < 3) out.cause = loggableError(err.cause, depth + 1);
  return out;
}

/** Every error leaves as {"detail": ...}; anything unexpected is logged and becomes a 500. */
export function errorHandler(log: Logger) {
  return (err: Error, c: Context) => {
    if (err instanceof HttpError) {
      // A body refused part-way is still arriving: closing (rather than keeping the
      // connection alive and draining it briefly) lets the client read the 413
      // instead of losing it to a reset.
      const close = err.status === 413 ? { Connection: "close" } : undefined;
      return c.json({ detail: err.message }, err.status, close);
    }
    // hono's validator refuses a body that is not JSON with a 400: for the API it is
    // invalid input like any other, a 422.
    if (err instanceof HTTPException && err.status === 400 && /^Malformed/.test(err.message)) {
      return c.json({ detail: [{ loc: ["body"], msg: err.message }] }, 422);
    }
    if (err instanceof HTTPException) {
      return c.json({ detail: err.message || "bad request" }, err.status as ContentfulStatusCode);
    }
    // The path only: a query string may carry a search or a token.
    // Under `error`, not `err`: pino's err serializer would add back what was left out.
    log.error(
      { error: loggableError(err), method: c.req.method, path: c.req.path },
      "unhandled error",
    );
    return c.json({ detail: "internal server error" }, 500);
  };
}
