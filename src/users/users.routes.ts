import { randomUUID } from "node:crypto";
import { createRoute, z } from "@hono/zod-openapi";
import { and, count, desc, eq } from "drizzle-orm";
import { canManage } from "../access/visibility.ts";
import { toNotificationsOut } from "../alerts/alerts.schemas.ts";
import { createPasswordHasher } from "../crypto/passwords.ts";
import { signPurposeToken, signUserToken, verifyPurposeToken } from "../crypto/tokens.ts";
import { uniqueViolation } from "../db/pg-errors.ts";
import { users } from "../db/schema.ts";
import { requireAdmin, requireUser } from "../http/auth.ts";
import { createClientAddress } from "../http/client-address.ts";
import { conflict, forbidden, HttpError, notFound } from "../http/errors.ts";
import {
  createRouter,
  errorResponses,
  jsonBody,
  jsonResponse,
  Pagination,
  UuidParam,
} from "../http/openapi.ts";
import type { AppDeps } from "../http/types.ts";
import { mailFailure } from "../mail/mailer.ts";
import { chatOfUser } from "../telegram/telegram.store.ts";
import { createLoginThrottle, loginSubject } from "./login-throttle.ts";
import { passwordResetRoutes } from "./password-reset.routes.ts";
import { sessionRoutes } from "./session.routes.ts";
import { retryLater, tooManyAttemptsResponse } from "./throttle.http.ts";
import {
  ChangePasswordBody,
  MeOut,
  RegisterBody,
  TokenOut,
  toUserOut,
  UserOut,
  UserStatusSchema,
} from "./users.schemas.ts";
import {
  countUsers,
  deleteUserCascade,
  findUser,
  getRegistrationMode,
  loginOrEmailTaken,
  reposUsedByOthers,
  setUserStatus,
  withRegistrationLock,
} from "./users.store.ts";

const EMAIL_TOKEN_TTL_S = 2 * 24 * 3600;
const tags = ["users"];

export function usersRoutes(deps: AppDeps) {
  const { config, log, mailer } = deps;
  const db = deps.database.db;
  const app = createRouter();
  const hasher = createPasswordHasher(config.scrypt);
  const throttle = createLoginThrottle(db);
  const clientAddress = createClientAddress(config.trustedProxies);
  // Before the /{uuid} routes below, whose paths would otherwise be tried first.
  app.route("/", sessionRoutes({ ...deps, hasher, throttle, clientAddress }));
  app.route("/", passwordResetRoutes({ ...deps, hasher, throttle }));

  app.openapi(
    createRoute({
      method: "post",
      path: "/",
      tags,
      summary: "Register; the first user of an instance becomes its admin",
      request: { body: jsonBody(RegisterBody) },
      responses: { 201: jsonResponse(UserOut, "Registered"), ...errorResponses(403, 409, 422) },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const taken = await loginOrEmailTaken(db, body.login, body.email);
      if (taken) throw conflict(`${taken} is already registered`);
      // Cheap refusal before the costly hash; decided again under the lock below.
      if ((await countUsers(db)) > 0 && (await getRegistrationMode(db)) === "Closed")
        throw forbidden("registration is closed on this instance");
      const passwordHash = await hasher.hash(body.password);
      const user = await withRegistrationLock(db, async (tx) => {
        const isFirst = (await countUsers(tx)) === 0;
        const mode = isFirst ? "Open" : await getRegistrationMode(tx);
        if (mode === "Closed") throw forbidden("registration is closed on this instance");
        const status =
          mode === "EmailVerification"
            ? "PendingEmail"
            : mode === "ManualApproval"
              ? "PendingApproval"
              : "Active";
        const [inserted] = await tx
          .insert(users)
          .values({
            uuid: randomUUID(),
            login: body.login,
            email: body.email,
            passwordHash,
            role: isFirst ? "Admin" : "User",
            status,
          })
          .returning();
        return inserted;
      }).catch((err: unknown) => {
        // The same login or e-mail registered in parallel, after the check above. The
        // driver's error carries the statement's values (the hash, the e-mail): never pass it on.
        const constraint = uniqueViolation(err);
        if (constraint === null) throw err;
        throw conflict(`${constraint.includes("email") ? "email" : "login"} is already registered`);
      });
      if (!user) throw new Error("insert returned nothing");
      if (user.status === "PendingEmail") {
        const token = await signPurposeToken(
          config.secretKey,
          "verify-email",
          user.uuid,
          EMAIL_TOKEN_TTL_S,
        );
        const link = `${config.baseUrl}/pepeunit/api/v1/users/verify_email?token=${encodeURIComponent(token)}`;
        try {
          await mailer.send({
            to: user.email,
            subject: "Confirm your Pepeunit account",
            text: `Hello ${user.login},\n\nconfirm your e-mail address to activate your account:\n${link}\n\nThe link is valid for 48 hours.\n`,
          });
        } catch (err) {
          // The account exists; the admin can still verify it by hand.
          log.error({ ...mailFailure(err), user: user.uuid }, "verification mail failed");
        }
      }
      return c.json(toUserOut(user), 201);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/verify_email",
      tags,
      summary: "Confirms an e-mail address from the link sent at registration",
      request: { query: z.object({ token: z.string().min(1).max(2048) }) },
      responses: {
        200: jsonResponse(z.object({ detail: z.string() }), "Verified"),
        ...errorResponses(422),
      },
    }),
    async (c) => {
      const uuid = await verifyPurposeToken(
        config.secretKey,
        "verify-email",
        c.req.valid("query").token,
      );
      const user = uuid ? await findUser(db, uuid) : undefined;
      if (!user) throw new HttpError(422, "invalid or expired verification link");
      if (user.status === "PendingEmail") await setUserStatus(db, user.uuid, "Active");
      return c.json({ detail: "e-mail verified" }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/me",
      tags,
      summary: "The calling user",
      responses: {
        200: jsonResponse(MeOut, "The user, with their notification switches"),
        ...errorResponses(401, 403),
      },
    }),
    async (c) => {
      const me = requireUser(c.get("principal"));
      const user = await findUser(db, me.uuid);
      if (!user) throw notFound("user");
      const telegram_linked = (await chatOfUser(db, user.uuid)) !== undefined;
      return c.json(
        { ...toUserOut(user), notifications: toNotificationsOut(user), telegram_linked },
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/me/password",
      tags,
      summary: "Change password; every older token stops working, the new one is returned",
      request: { body: jsonBody(ChangePasswordBody) },
      responses: {
        200: jsonResponse(TokenOut, "A new token"),
        ...errorResponses(401, 403, 404, 422),
        ...tooManyAttemptsResponse,
      },
    }),
    async (c) => {
      const me = requireUser(c.get("principal"));
      const body = c.req.valid("json");
      const user = await findUser(db, me.uuid);
      if (!user) throw notFound("user");
      // A stolen session must not become a way to guess the password: the login's brake applies.
      const subject = loginSubject(user, user.login, clientAddress(c));
      const wait = await throttle.retryAfter(subject);
      if (wait > 0) return retryLater(c, wait);
      if (!(await hasher.verify(body.old_password, user.passwordHash))) {
        await throttle.failed(subject);
        throw forbidden("old password is wrong");
      }
      const [updated] = await db
        .update(users)
        .set({
          passwordHash: await hasher.hash(body.new_password),
          tokenVersion: user.tokenVersion + 1,
          updatedAt: new Date(),
        })
        .where(eq(users.uuid, user.uuid))
        .returning();
      if (!updated) throw notFound("user");
      deps.events.emit("user.revoked", { userUuid: updated.uuid });
      return c.json(
        { token: await signUserToken(config.secretKey, updated.uuid, updated.tokenVersion) },
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/",
      tags,
      summary: "List users (admin)",
      request: { query: Pagination.extend({ status: UserStatusSchema.optional() }) },
      responses: {
        200: jsonResponse(z.object({ count: z.number(), users: z.array(UserOut) }), "Users"),
        ...errorResponses(401, 403, 422),
      },
    }),
    async (c) => {
      requireAdmin(c.get("principal"));
      const q = c.req.valid("query");
      const where = q.status ? and(eq(users.status, q.status)) : undefined;
      const [total] = await db.select({ n: count() }).from(users).where(where);
      const rows = await db
        .select()
        .from(users)
        .where(where)
        .orderBy(desc(users.createdAt))
        .limit(q.limit)
        .offset(q.offset);
      return c.json({ count: total?.n ?? 0, users: rows.map(toUserOut) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/{uuid}",
      tags,
      summary: "One user (self or admin)",
      request: { params: UuidParam },
      responses: { 200: jsonResponse(UserOut, "The user"), ...errorResponses(401, 403, 404) },
    }),
    async (c) => {
      const me = requireUser(c.get("principal"));
      const { uuid } = c.req.valid("param");
      const user = canManage(me, uuid) ? await findUser(db, uuid) : undefined;
      if (!user) throw notFound("user");
      return c.json(toUserOut(user), 200);
    },
  );

  for (const [action, status] of [
    ["verify", "Active"],
    ["block", "Blocked"],
    ["unblock", "Active"],
  ] as const) {
    app.openapi(
      createRoute({
        method: "post",
        path: `/{uuid}/${action}`,
        tags,
        summary: `${action[0]?.toUpperCase()}${action.slice(1)} a user (admin)`,
        request: { params: UuidParam },
        responses: {
          200: jsonResponse(UserOut, "The user"),
          ...errorResponses(401, 403, 404, 409),
        },
      }),
      async (c) => {
        const admin = requireAdmin(c.get("principal"));
        const { uuid } = c.req.valid("param");
        if (uuid === admin.uuid && action === "block")
          throw conflict("an admin cannot block themselves");
        const user = await findUser(db, uuid);
        if (!user) throw notFound("user");
        if (action === "unblock" && user.status !== "Blocked")
          throw conflict("user is not blocked");
        if (action === "verify" && user.status === "Blocked")
          throw conflict("user is blocked; unblock instead");
        // Blocking revokes every token the user holds at once.
        const updated = await setUserStatus(db, uuid, status, action === "block");
        if (!updated) throw notFound("user");
        if (action === "block") {
          deps.events.emit("user.revoked", { userUuid: uuid });
          deps.events.emit("user.blocked", { userUuid: uuid });
        }
        return c.json(toUserOut(updated), 200);
      },
    );
  }

  app.openapi(
    createRoute({
      method: "delete",
      path: "/{uuid}",
      tags,
      summary: "Delete a user and everything they own (self or admin)",
      request: { params: UuidParam },
      responses: { 204: { description: "Deleted" }, ...errorResponses(401, 403, 404, 409) },
    }),
    async (c) => {
      const me = requireUser(c.get("principal"));
      const { uuid } = c.req.valid("param");
      if (!canManage(me, uuid)) throw notFound("user");
      const user = await findUser(db, uuid);
      if (!user) throw notFound("user");
      if (user.role === "Admin" && me.uuid === uuid) {
        const [admins] = await db.select({ n: count() }).from(users).where(eq(users.role, "Admin"));
        if ((admins?.n ?? 0) <= 1) throw conflict("the last admin cannot delete themselves");
      }
      const blocking = await reposUsedByOthers(db, uuid);
      if (blocking.length) {
        throw conflict(
          `other users' units are built from this user's repos (${blocking.map((r) => r.name).join(", ")}); delete those units first`,
        );
      }
      const removed = await deleteUserCascade(db, uuid);
      for (const unitUuid of removed.unitUuids) deps.events.emit("unit.deleted", { unitUuid });
      for (const repoUuid of removed.repoUuids) deps.events.emit("repo.deleted", { repoUuid });
      deps.events.emit("user.revoked", { userUuid: uuid });
      await Promise.all(removed.repoUuids.map((r) => deps.git.remove(r)));
      return c.body(null, 204);
    },
  );

  return app;
}
