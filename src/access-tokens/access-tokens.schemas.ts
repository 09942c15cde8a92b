import { z } from "@hono/zod-openapi";
import type { AccessTokenRow } from "./access-tokens.store.ts";

export const AccessTokenScopeSchema = z.enum(["read", "write"]).openapi("AccessTokenScope", {
  description:
    "read: metadata and value history only (GET); write: acts as the user, except managing the account (tokens, password, sessions) and the admin routes",
});

export const CreateAccessTokenBody = z
  .object({
    name: z.string().trim().min(1).max(100).openapi({ example: "grafana" }),
    scope: AccessTokenScopeSchema,
    expires_in_days: z
      .number()
      .int()
      .min(1)
      .max(3650)
      .optional()
      .openapi({ description: "Never expires when absent" }),
  })
  .openapi("CreateAccessToken");

export const AccessTokenOut = z
  .object({
    uuid: z.uuid(),
    name: z.string(),
    scope: AccessTokenScopeSchema,
    created_at: z.string(),
    expires_at: z.string().nullable(),
    last_used_at: z.string().nullable().openapi({ description: "To the minute" }),
  })
  .openapi("AccessToken");

export const CreatedAccessTokenOut = AccessTokenOut.extend({
  token: z.string().openapi({
    description:
      "The secret (pu_pat_...): shown only in this answer, send it as x-auth-token or Authorization: Bearer",
  }),
}).openapi("CreatedAccessToken");

export function toAccessTokenOut(row: AccessTokenRow): z.infer<typeof AccessTokenOut> {
  return {
    uuid: row.uuid,
    name: row.name,
    scope: row.scope,
    created_at: row.createdAt.toISOString(),
    expires_at: row.expiresAt?.toISOString() ?? null,
    last_used_at: row.lastUsedAt?.toISOString() ?? null,
  };
}
