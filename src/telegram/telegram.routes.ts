import { createRoute, z } from "@hono/zod-openapi";
import { createArchiveBuilder } from "../firmware/archive-builder.ts";
import { DEFAULT_LEVEL, parseCompression } from "../firmware/compression.ts";
import { requireSession } from "../http/auth.ts";
import { HttpError, notFound } from "../http/errors.ts";
import { createRouter, errorResponses, jsonResponse } from "../http/openapi.ts";
import type { AppDeps } from "../http/types.ts";
import { loadUnitArtifacts, readUnitEnv } from "../units/unit-artifacts.ts";
import { loadUnitForDevice } from "../units/units.access.ts";
import {
  consumeDownloadToken,
  createLinkCode,
  LINK_CODE_TTL_MS,
  unlinkUser,
} from "./telegram.store.ts";

const tags = ["telegram"];

const LinkOut = z
  .object({
    code: z
      .string()
      .openapi({ description: "send /start <code> to the bot; valid 10 minutes, once" }),
    link: z
      .string()
      .openapi({ description: "https://t.me/<bot>?start=<code>: opens the bot with the code" }),
    expires_in_s: z.number(),
  })
  .openapi("TelegramLink");

/** POST|DELETE /users/me/telegram: linking the caller's account to a Telegram chat. */
export function telegramUserRoutes(deps: AppDeps) {
  const db = deps.database.db;
  const app = createRouter();

  app.openapi(
    createRoute({
      method: "post",
      path: "/me/telegram",
      tags,
      summary: "A one-time code (and deep link) that links a Telegram chat to the caller",
      responses: {
        200: jsonResponse(LinkOut, "The code and the bot's deep link"),
        ...errorResponses(401, 403),
        503: { description: "The Telegram bot is not configured or not connected yet" },
      },
    }),
    async (c) => {
      // A personal access token cannot hand its account to a chat: a login session can.
      const user = requireSession(c.get("principal"));
      if (!deps.telegram)
        throw new HttpError(503, "the Telegram bot is not configured on this instance");
      const username = deps.telegram.username();
      if (!username) {
        throw new HttpError(
          503,
          "the Telegram bot has not reached the Bot API yet; try again later",
        );
      }
      const code = await createLinkCode(db, user.uuid);
      return c.json(
        {
          code,
          link: `https://t.me/${username}?start=${code}`,
          expires_in_s: LINK_CODE_TTL_MS / 1000,
        },
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/me/telegram",
      tags,
      summary: "Unlink the caller's Telegram chat",
      responses: { 204: { description: "Unlinked" }, ...errorResponses(401, 403, 404) },
    }),
    async (c) => {
      const user = requireSession(c.get("principal"));
      if (!(await unlinkUser(db, user.uuid))) throw notFound("telegram link");
      return c.body(null, 204);
    },
  );

  return app;
}

const TokenParam = z.object({
  token: z
    .string()
    .regex(/^[A-Za-z0-9_-]{16,64}$/)
    .openapi({ param: { name: "token", in: "path" } }),
});

/** /telegram/webhook (the Bot API's updates) and /telegram/downloads/{token}. */
export function telegramRoutes(deps: AppDeps) {
  const db = deps.database.db;
  const app = createRouter();
  const builder = createArchiveBuilder({
    git: deps.git,
    maxFirmwareBytes: deps.config.maxFirmwareSizeBytes,
  });

  // Not in the OpenAPI document: only the Bot API calls it, proving itself with the
  // secret token setWebhook gave it (X-Telegram-Bot-Api-Secret-Token).
  app.post("/webhook", async (c) => {
    const telegram = deps.telegram;
    if (!telegram || deps.config.telegram?.mode !== "webhook") throw notFound();
    let update: unknown;
    try {
      update = await c.req.json();
    } catch {
      update = undefined;
    }
    const status = await telegram.handleWebhook(
      c.req.header("x-telegram-bot-api-secret-token"),
      update,
    );
    if (status === 200) return c.body(null, 200);
    const detail =
      status === 401
        ? "wrong or missing secret token"
        : status === 503
          ? "the bot is not connected yet"
          : "not an update";
    return c.json({ detail }, status === 401 ? 401 : status === 503 ? 503 : 400);
  });

  app.openapi(
    createRoute({
      method: "get",
      path: "/downloads/{token}",
      tags,
      summary: "A one-time download the bot linked to: env.json or the firmware (.tar.gz)",
      description:
        "The link is valid 10 minutes and once; its user must still be the unit's creator or an admin.",
      request: { params: TokenParam },
      responses: {
        200: { description: "The file" },
        ...errorResponses(404, 422),
      },
    }),
    async (c) => {
      const grant = await consumeDownloadToken(db, c.req.valid("param").token);
      if (!grant) throw new HttpError(404, "this download link is wrong, used or expired");
      const { principal, unitUuid, kind } = grant;
      if (kind === "env") {
        const unit = await loadUnitForDevice(db, principal, unitUuid);
        return c.body(JSON.stringify(readUnitEnv(deps, unit), null, 2), 200, {
          "Content-Type": "application/json",
          "Content-Disposition": 'attachment; filename="env.json"',
          "Cache-Control": "no-store",
        });
      }
      const unit = await loadUnitArtifacts(deps, principal, unitUuid);
      // gzip (wbits 31): the .tar.gz people open with tar -xzf.
      const parts = await builder.tgzParts(unit, parseCompression(31, DEFAULT_LEVEL));
      const body = Buffer.concat(parts);
      return c.body(new Uint8Array(body), 200, {
        "Content-Type": "application/gzip",
        "Content-Length": String(body.length),
        "Content-Disposition": `attachment; filename="${unitUuid}.tar.gz"`,
        "Cache-Control": "no-store",
      });
    },
  );

  return app;
}
