import { randomUUID } from "node:crypto";
import { createRoute, z } from "@hono/zod-openapi";
import { requireSession } from "../http/auth.ts";
import { conflict, notFound } from "../http/errors.ts";
import { createRouter, errorResponses, jsonBody, jsonResponse } from "../http/openapi.ts";
import type { AppDeps } from "../http/types.ts";
import {
  AccessTokenOut,
  CreateAccessTokenBody,
  CreatedAccessTokenOut,
  toAccessTokenOut,
} from "./access-tokens.schemas.ts";
import {
  deleteAccessToken,
  insertAccessToken,
  listAccessTokens,
  pruneRevokedAccessTokens,
} from "./access-tokens.store.ts";
import { hashAccessToken, newAccessTokenSecret } from "./token-secret.ts";

// Personal access tokens, managed only from a login's session (never with a token).
// Mounted under /users, before its /{uuid} routes.

const MAX_TOKENS_PER_USER = 100;
const DAY_MS = 24 * 3600 * 1000;
const tags = ["users"];
const TokenParam = z.object({
  token_uuid: z.uuid().openapi({ param: { name: "token_uuid", in: "path" } }),
});

export function accessTokensRoutes(deps: Pick<AppDeps, "database" | "events">) {
  const db = deps.database.db;
  const app = createRouter();

  app.openapi(
    createRoute({
      method: "post",
      path: "/me/tokens",
      tags,
      summary: "Create a personal access token (its secret is shown only in this answer)",
      request: { body: jsonBody(CreateAccessTokenBody) },
      responses: {
        201: jsonResponse(CreatedAccessTokenOut, "The token, with its secret"),
        ...errorResponses(401, 403, 409, 422),
      },
    }),
    async (c) => {
      const me = requireSession(c.get("principal"));
      const body = c.req.valid("json");
      await pruneRevokedAccessTokens(db, me.uuid);
      if ((await listAccessTokens(db, me.uuid)).length >= MAX_TOKENS_PER_USER)
        throw conflict(`at most ${MAX_TOKENS_PER_USER} access tokens; delete one first`);
      const token = newAccessTokenSecret();
      const row = await insertAccessToken(db, {
        uuid: randomUUID(),
        userUuid: me.uuid,
        name: body.name,
        scope: body.scope,
        secretHash: hashAccessToken(token),
        expiresAt: body.expires_in_days
          ? new Date(Date.now() + body.expires_in_days * DAY_MS)
          : null,
      });
      if (!row) throw notFound("user");
      return c.json({ ...toAccessTokenOut(row), token }, 201);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/me/tokens",
      tags,
      summary: "List my personal access tokens (never their secrets)",
      responses: {
        200: jsonResponse(z.object({ tokens: z.array(AccessTokenOut) }), "The tokens"),
        ...errorResponses(401, 403),
      },
    }),
    async (c) => {
      const me = requireSession(c.get("principal"));
      await pruneRevokedAccessTokens(db, me.uuid);
      const rows = await listAccessTokens(db, me.uuid);
      return c.json({ tokens: rows.map(toAccessTokenOut) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/me/tokens/{token_uuid}",
      tags,
      summary: "Delete a personal access token: refused from this moment",
      request: { params: TokenParam },
      responses: { 204: { description: "Deleted" }, ...errorResponses(401, 403, 404, 422) },
    }),
    async (c) => {
      const me = requireSession(c.get("principal"));
      const { token_uuid } = c.req.valid("param");
      if (!(await deleteAccessToken(db, me.uuid, token_uuid))) throw notFound("access token");
      // Drops it from the principal cache here (and in other processes, via the bridge).
      deps.events.emit("user.token-revoked", { userUuid: me.uuid, jti: token_uuid });
      return c.body(null, 204);
    },
  );

  return app;
}
