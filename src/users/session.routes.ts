import { createRoute } from "@hono/zod-openapi";
import type { PasswordHasher } from "../crypto/passwords.ts";
import { signUserToken, verifyUserToken } from "../crypto/tokens.ts";
import { readToken, requireUser } from "../http/auth.ts";
import type { createClientAddress } from "../http/client-address.ts";
import { forbidden, unauthorized } from "../http/errors.ts";
import { createRouter, errorResponses, jsonBody, jsonResponse } from "../http/openapi.ts";
import type { AppDeps } from "../http/types.ts";
import type { LoginThrottle } from "./login-throttle.ts";
import { loginSubject } from "./login-throttle.ts";
import { retryLater, tooManyAttemptsResponse } from "./throttle.http.ts";
import { AuthBody, TokenOut } from "./users.schemas.ts";
import {
  bumpTokenVersion,
  findUserByLoginOrEmail,
  replacePasswordHash,
  revokeTokenId,
} from "./users.store.ts";

// Logging in (with a brute-force brake) and out.

const tags = ["users"];

export type SessionDeps = Pick<AppDeps, "config" | "database" | "events" | "log"> & {
  hasher: PasswordHasher;
  throttle: LoginThrottle;
  clientAddress: ReturnType<typeof createClientAddress>;
};

export function sessionRoutes(deps: SessionDeps) {
  const { config, hasher, throttle } = deps;
  const db = deps.database.db;
  const app = createRouter();

  app.openapi(
    createRoute({
      method: "post",
      path: "/auth",
      tags,
      summary: "Log in with login (or e-mail) and password",
      description:
        "After a few failed attempts for one account or from one address, each further failure doubles the wait (at most 15 minutes): 429 with Retry-After until then.",
      request: { body: jsonBody(AuthBody) },
      responses: {
        200: jsonResponse(TokenOut, "A user token"),
        ...errorResponses(401, 403, 422),
        ...tooManyAttemptsResponse,
      },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const user = await findUserByLoginOrEmail(db, body.login);
      const subject = loginSubject(user, body.login, deps.clientAddress(c));
      const wait = await throttle.retryAfter(subject);
      if (wait > 0) return retryLater(c, wait);
      // An unknown login costs one hash too: its answer must not come sooner.
      const ok = user
        ? await hasher.verify(body.password, user.passwordHash)
        : await hasher.verifyNobody(body.password);
      if (!user || !ok) {
        await throttle.failed(subject);
        throw unauthorized("wrong login or password");
      }
      await throttle.succeeded(subject);
      if (hasher.needsRehash(user.passwordHash)) {
        // Stored with older parameters: redo it with the configured ones while we have the password.
        const rehashed = await hasher.hash(body.password);
        await replacePasswordHash(db, user.uuid, user.passwordHash, rehashed, false);
      }
      if (user.status === "PendingEmail") throw forbidden("e-mail address not verified yet");
      if (user.status === "PendingApproval")
        throw forbidden("account awaiting approval by the admin");
      if (user.status === "Blocked") throw forbidden("account blocked");
      return c.json(
        { token: await signUserToken(config.secretKey, user.uuid, user.tokenVersion) },
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/logout",
      tags,
      summary: "Revoke the calling token",
      description:
        "The token is refused from now on (REST and MQTT). A token issued before tokens carried an id (jti) cannot be revoked alone: logging out with one ends every session of the user.",
      responses: { 204: { description: "Logged out" }, ...errorResponses(401, 403) },
    }),
    async (c) => {
      const me = requireUser(c.get("principal"));
      const token = readToken(c.req.raw.headers);
      const claims = token ? await verifyUserToken(config.secretKey, token) : null;
      if (!claims) throw unauthorized();
      if (claims.jti) {
        await revokeTokenId(db, claims.jti, new Date(claims.exp * 1000));
        deps.events.emit("user.token-revoked", { userUuid: me.uuid, jti: claims.jti });
      } else {
        await bumpTokenVersion(db, me.uuid);
        deps.events.emit("user.revoked", { userUuid: me.uuid });
      }
      return c.body(null, 204);
    },
  );

  return app;
}
