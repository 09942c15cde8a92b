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

/** Every error leaves as {"detail": ...}; anything unexpected is logged and becomes a 500. */
export function errorHandler(log: Logger) {
  return (err: Error, c: Context) => {
    if (err instanceof HttpError) return c.json({ detail: err.message }, err.status);
    if (err instanceof HTTPException) {
      return c.json({ detail: err.message || "bad request" }, err.status as ContentfulStatusCode);
    }
    log.error({ err, path: c.req.path }, "unhandled error");
    return c.json({ detail: "internal server error" }, 500);
  };
}
