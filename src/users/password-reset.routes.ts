import { createRoute } from "@hono/zod-openapi";
import type { PasswordHasher } from "../crypto/passwords.ts";
import { requireAdmin } from "../http/auth.ts";
import { notFound, unprocessable } from "../http/errors.ts";
import {
  createRouter,
  errorResponses,
  jsonBody,
  jsonResponse,
  UuidParam,
} from "../http/openapi.ts";
import type { AppDeps } from "../http/types.ts";
import { mailFailure } from "../mail/mailer.ts";
import type { LoginThrottle } from "./login-throttle.ts";
import { RESET_LINK_TTL_S, readResetToken, resetLink, signResetToken } from "./reset-links.ts";
import {
  DetailOut,
  PasswordResetBody,
  PasswordResetConfirmBody,
  ResetLinkOut,
} from "./users.schemas.ts";
import { findUser, findUserByLoginOrEmail, replacePasswordHash } from "./users.store.ts";

// Forgotten passwords: a one-time link by mail (or from the admin console) to the
// web UI's reset form. The request answers the same, as fast, whether the account
// exists or not: the mail is sent after the answer.

const tags = ["users"];
const ANSWER = {
  detail: "If the account exists and has an e-mail address, a reset link is on its way.",
};

const NOBODY = { uuid: "00000000-0000-0000-0000-000000000000", passwordHash: "" };

export type PasswordResetDeps = Pick<
  AppDeps,
  "config" | "database" | "events" | "log" | "mailer"
> & {
  hasher: PasswordHasher;
  throttle: LoginThrottle;
};

export function passwordResetRoutes(deps: PasswordResetDeps) {
  const { config, log, mailer, hasher } = deps;
  const db = deps.database.db;
  const app = createRouter();

  app.openapi(
    createRoute({
      method: "post",
      path: "/password_reset",
      tags,
      summary: "Mail a one-time password reset link (valid 30 minutes)",
      description: "The same answer whether the account exists or not.",
      request: { body: jsonBody(PasswordResetBody) },
      responses: { 202: jsonResponse(DetailOut, "Accepted"), ...errorResponses(422) },
    }),
    async (c) => {
      const { login } = c.req.valid("json");
      const user = await findUserByLoginOrEmail(db, login);
      // Signed whether or not the account exists: both answers cost the same.
      const token = await signResetToken(config.secretKey, user ?? NOBODY);
      if (!mailer.configured) {
        log.warn(
          "password reset asked, but no SMTP server is configured (PEPEUNIT_SMTP_URL): no mail sent; the admin can make a reset link in the admin console",
        );
      } else if (user?.status === "Active") {
        const link = resetLink(config.baseUrl, token);
        // Not awaited: the answer must not wait for (and so reveal) a mail being sent.
        mailer
          .send({
            to: user.email,
            subject: "Reset your Pepeunit password",
            text: `Hello ${user.login},\n\nsomeone (hopefully you) asked to reset the password of your Pepeunit account. Open this link within ${RESET_LINK_TTL_S / 60} minutes to choose a new one:\n${link}\n\nThe link works once. If you did not ask for it, ignore this mail: your password stays as it is.\n`,
          })
          .catch((err: unknown) =>
            log.error({ ...mailFailure(err), user: user.uuid }, "password reset mail failed"),
          );
      }
      return c.json(ANSWER, 202);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/password_reset/confirm",
      tags,
      summary: "Set a new password with a reset link's token; every session ends",
      request: { body: jsonBody(PasswordResetConfirmBody) },
      responses: { 200: jsonResponse(DetailOut, "Password changed"), ...errorResponses(422) },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const invalid = () => unprocessable("invalid, expired or already used reset link");
      const token = await readResetToken(config.secretKey, body.token);
      const user = token ? await findUser(db, token.userUuid) : undefined;
      if (!token || !user || !token.matches(user.passwordHash)) throw invalid();
      const newHash = await hasher.hash(body.new_password);
      // Only if the hash is still the one the link was made for: used twice at once, one wins.
      const updated = await replacePasswordHash(db, user.uuid, user.passwordHash, newHash, true);
      if (!updated) throw invalid();
      deps.events.emit("user.revoked", { userUuid: user.uuid });
      await deps.throttle.forgetAccount(user.uuid);
      return c.json({ detail: "password changed; log in with the new one" }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/{uuid}/password_reset_link",
      tags,
      summary: "A one-time password reset link for a user, to hand over by other means (admin)",
      request: { params: UuidParam },
      responses: {
        200: jsonResponse(ResetLinkOut, "The link (valid 30 minutes)"),
        ...errorResponses(401, 403, 404, 422),
      },
    }),
    async (c) => {
      requireAdmin(c.get("principal"));
      const user = await findUser(db, c.req.valid("param").uuid);
      if (!user) throw notFound("user");
      return c.json(
        { link: resetLink(config.baseUrl, await signResetToken(config.secretKey, user)) },
        200,
      );
    },
  );

  return app;
}
