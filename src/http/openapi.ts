import { OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "./types.ts";

// NUL and the other C0 control characters, except tab, line feed and carriage return.
// PostgreSQL text cannot hold NUL, and none of them belongs in a name, a search or a value.
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point
const CONTROL_CHAR = /[\u0000-\u0008\u000b\u000c\u000e-\u001f]/;

/** Where in validated input (query, path, JSON body) a string holds a control character. */
export function controlCharAt(value: unknown, loc: string[] = []): string[] | null {
  if (typeof value === "string") return CONTROL_CHAR.test(value) ? loc : null;
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) {
      const found = controlCharAt(item, [...loc, String(i)]);
      if (found) return found;
    }
    return null;
  }
  if (value && typeof value === "object") {
    for (const [key, item] of Object.entries(value)) {
      const found = controlCharAt(key, [...loc, key]) ?? controlCharAt(item, [...loc, key]);
      if (found) return found;
    }
  }
  return null;
}

/**
 * Every sub-app answers a validation failure with 422 {"detail": [...issues]}, and
 * so it answers input that passed its schema but carries control characters.
 */
export function createRouter(): OpenAPIHono<AppEnv> {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result, c) => {
      if (!result.success) {
        const detail = result.error.issues.map((i) => ({
          loc: i.path.map(String),
          msg: i.message,
        }));
        return c.json({ detail }, 422);
      }
      const loc = controlCharAt(result.data, [result.target]);
      if (loc) return c.json({ detail: [{ loc, msg: "control characters are not allowed" }] }, 422);
    },
  });
}

export const ErrorSchema = z.object({ detail: z.unknown() }).openapi("Error");

export const Pagination = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(100).openapi({ example: 100 }),
  offset: z.coerce.number().int().min(0).default(0),
});

export const UuidParam = z.object({
  uuid: z.uuid().openapi({ param: { name: "uuid", in: "path" } }),
});

export const VisibilitySchema = z.enum(["Public", "Internal", "Private"]).openapi("Visibility");

/** Standard error responses to list in a route's OpenAPI entry. */
export function errorResponses(...codes: Array<400 | 401 | 403 | 404 | 409 | 422 | 503>) {
  const descriptions: Record<number, string> = {
    400: "Bad request",
    401: "Missing or invalid token",
    403: "Not allowed",
    404: "Not found (or not visible to the caller)",
    409: "Conflict",
    422: "Invalid input",
    503: "A service the answer needs is unreachable",
  };
  return Object.fromEntries(
    codes.map((code) => [
      code,
      {
        description: descriptions[code] ?? "Error",
        content: { "application/json": { schema: ErrorSchema } },
      },
    ]),
  );
}

export const jsonBody = <T extends z.ZodType>(schema: T) => ({
  required: true,
  content: { "application/json": { schema } },
});

export const jsonResponse = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

// Statuses the shared layers answer for every operation, whatever the route declares:
// the token check and an access token's scope (src/http/auth.ts), the body limit
// (body-limit.ts), the media-type gate of a JSON body and the validation of parameters
// and bodies (createRouter).
const SHARED_RESPONSES: Array<{
  code: number;
  description: string;
  applies: (op: { parameters?: unknown[]; requestBody?: unknown }) => boolean;
}> = [
  { code: 401, description: "Invalid or revoked token", applies: () => true },
  {
    code: 403,
    description: "Not allowed (an access token outside its scope is refused on every route)",
    applies: () => true,
  },
  { code: 413, description: "Request body too large", applies: () => true },
  { code: 415, description: "Body is not JSON", applies: (op) => Boolean(op.requestBody) },
  {
    code: 422,
    description: "Invalid input",
    applies: (op) => Boolean(op.requestBody) || (op.parameters?.length ?? 0) > 0,
  },
];

type DocOperation = {
  parameters?: unknown[];
  requestBody?: unknown;
  responses?: Record<string, unknown>;
};

/** The document with the shared layers' statuses added to each operation that lacks them. */
export function withSharedResponses<T extends { paths?: object }>(doc: T): T {
  for (const byMethod of Object.values(doc.paths ?? {}) as Array<Record<string, DocOperation>>) {
    for (const op of Object.values(byMethod)) {
      op.responses ??= {};
      for (const shared of SHARED_RESPONSES) {
        if (!shared.applies(op) || String(shared.code) in op.responses) continue;
        op.responses[String(shared.code)] = {
          description: shared.description,
          content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
        };
      }
    }
  }
  return doc;
}
