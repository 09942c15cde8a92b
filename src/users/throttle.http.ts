import type { Context } from "hono";
import { ErrorSchema } from "../http/openapi.ts";

// The HTTP face of the login throttle: what routes that check a password declare and answer.

export const tooManyAttemptsResponse = {
  429: {
    description: "Too many failed attempts: wait Retry-After seconds",
    headers: { "Retry-After": { schema: { type: "integer" as const } } },
    content: { "application/json": { schema: ErrorSchema } },
  },
};

export function retryLater(c: Context, waitS: number) {
  return c.json({ detail: `too many failed attempts; try again in ${waitS} s` }, 429, {
    "Retry-After": String(waitS),
  });
}
