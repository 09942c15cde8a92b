import { randomUUID } from "node:crypto";
import { createRoute, z } from "@hono/zod-openapi";
import { requireUser } from "../http/auth.ts";
import { notFound, unprocessable } from "../http/errors.ts";
import {
  createRouter,
  errorResponses,
  jsonBody,
  jsonResponse,
  Pagination,
  UuidParam,
} from "../http/openapi.ts";
import type { AppDeps } from "../http/types.ts";
import { findVisibleNode } from "../unit-nodes/unit-nodes.store.ts";
import { findUser } from "../users/users.store.ts";
import { limitsProblem } from "./alert-rule.ts";
import {
  AlertEventOut,
  AlertRuleOut,
  CreateAlertBody,
  MarkReadBody,
  NotificationsBody,
  NotificationsOut,
  toAlertEventOut,
  toAlertRuleOut,
  toNotificationsOut,
  UpdateAlertBody,
} from "./alerts.schemas.ts";
import {
  countOwnRules,
  deleteRule,
  findOwnRule,
  insertRule,
  listEvents,
  listOwnRules,
  markEventsRead,
  setNotificationSwitches,
  updateRule,
} from "./alerts.store.ts";

// Alert rules are personal: everyone, admins included, lists and edits only their own
// (an admin may put a rule on any variable, since an admin reads every one). A rule on
// a variable its owner can no longer read stays listed but does not fire.

const tags = ["alerts"];
/** Rules per user: far beyond a dashboard's worth, short of a memory problem. */
export const MAX_RULES_PER_USER = 5000;

export function alertsRoutes(deps: AppDeps) {
  const db = deps.database.db;
  const app = createRouter();
  /** Announces the change and waits until this process's evaluator holds it. */
  const changed = async (rule: { uuid: string; userUuid: string }) => {
    if (deps.alerts) await deps.alerts.ruleChanged(rule);
    else deps.events.emit("alert-rule.changed", { ruleUuid: rule.uuid, userUuid: rule.userUuid });
  };

  // The events first: /events would otherwise be taken for a rule's {uuid}.
  app.openapi(
    createRoute({
      method: "get",
      path: "/events",
      tags,
      summary: "The caller's alert events, newest first",
      request: { query: Pagination },
      responses: {
        200: jsonResponse(
          z.object({
            count: z.number(),
            unread: z.number().openapi({ description: "events not marked read" }),
            alert_events: z.array(AlertEventOut),
          }),
          "Alert events",
        ),
        ...errorResponses(401, 422),
      },
    }),
    async (c) => {
      const user = requireUser(c.get("principal"));
      const { count, unread, rows } = await listEvents(db, user.uuid, c.req.valid("query"));
      return c.json({ count, unread, alert_events: rows.map(toAlertEventOut) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/events/read",
      tags,
      summary: "Mark alert events read: the listed ones, or all of the caller's",
      request: { body: jsonBody(MarkReadBody) },
      responses: {
        200: jsonResponse(
          z.object({ marked: z.number().openapi({ description: "events that were unread" }) }),
          "Marked",
        ),
        ...errorResponses(401, 422),
      },
    }),
    async (c) => {
      const user = requireUser(c.get("principal"));
      const marked = await markEventsRead(db, user.uuid, c.req.valid("json").uuids);
      return c.json({ marked }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/",
      tags,
      summary: "Create a threshold rule on a variable the caller may read",
      description:
        "Evaluated on each value as published (before any data pipe); non-numeric values are ignored.",
      request: { body: jsonBody(CreateAlertBody) },
      responses: {
        201: jsonResponse(AlertRuleOut, "Created"),
        ...errorResponses(401, 404, 422),
      },
    }),
    async (c) => {
      const user = requireUser(c.get("principal"));
      const body = c.req.valid("json");
      const limits = { min: body.min ?? null, max: body.max ?? null, hysteresis: body.hysteresis };
      const problem = limitsProblem(limits);
      if (problem) throw unprocessable(problem);
      const found = await findVisibleNode(db, user, body.unit_node_uuid);
      if (!found) throw notFound("unit node");
      if ((await countOwnRules(db, user.uuid)) >= MAX_RULES_PER_USER)
        throw unprocessable(`at most ${MAX_RULES_PER_USER} alert rules per user`);
      const rule = await insertRule(db, {
        uuid: randomUUID(),
        userUuid: user.uuid,
        nodeUuid: found.node.uuid,
        ...limits,
        minIntervalS: body.min_interval_s,
        enabled: body.enabled,
      });
      await changed(rule);
      return c.json(toAlertRuleOut(rule, found.unit.uuid), 201);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/",
      tags,
      summary: "The caller's alert rules, newest first",
      request: { query: Pagination },
      responses: {
        200: jsonResponse(
          z.object({ count: z.number(), alerts: z.array(AlertRuleOut) }),
          "Alert rules",
        ),
        ...errorResponses(401, 422),
      },
    }),
    async (c) => {
      const user = requireUser(c.get("principal"));
      const { count, rows } = await listOwnRules(db, user.uuid, c.req.valid("query"));
      return c.json({ count, alerts: rows.map((r) => toAlertRuleOut(r.rule, r.unitUuid)) }, 200);
    },
  );

  async function loadOwn(userUuid: string, uuid: string) {
    const found = await findOwnRule(db, userUuid, uuid);
    if (!found) throw notFound("alert rule");
    return found;
  }

  app.openapi(
    createRoute({
      method: "get",
      path: "/{uuid}",
      tags,
      summary: "One of the caller's alert rules",
      request: { params: UuidParam },
      responses: { 200: jsonResponse(AlertRuleOut, "The rule"), ...errorResponses(401, 404, 422) },
    }),
    async (c) => {
      const user = requireUser(c.get("principal"));
      const { rule, unitUuid } = await loadOwn(user.uuid, c.req.valid("param").uuid);
      return c.json(toAlertRuleOut(rule, unitUuid), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "patch",
      path: "/{uuid}",
      tags,
      summary: "Change a rule's limits, interval or enabled flag",
      request: { params: UuidParam, body: jsonBody(UpdateAlertBody) },
      responses: { 200: jsonResponse(AlertRuleOut, "The rule"), ...errorResponses(401, 404, 422) },
    }),
    async (c) => {
      const user = requireUser(c.get("principal"));
      const body = c.req.valid("json");
      const { rule, unitUuid } = await loadOwn(user.uuid, c.req.valid("param").uuid);
      const limits = {
        min: body.min === undefined ? rule.min : body.min,
        max: body.max === undefined ? rule.max : body.max,
        hysteresis: body.hysteresis ?? rule.hysteresis,
      };
      const problem = limitsProblem(limits);
      if (problem) throw unprocessable(problem);
      const updated = await updateRule(db, rule.uuid, {
        ...limits,
        minIntervalS: body.min_interval_s ?? rule.minIntervalS,
        enabled: body.enabled ?? rule.enabled,
      });
      if (!updated) throw notFound("alert rule");
      await changed(rule);
      return c.json(toAlertRuleOut(updated, unitUuid), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/{uuid}",
      tags,
      summary: "Delete a rule (its past events stay)",
      request: { params: UuidParam },
      responses: { 204: { description: "Deleted" }, ...errorResponses(401, 404, 422) },
    }),
    async (c) => {
      const user = requireUser(c.get("principal"));
      const { rule } = await loadOwn(user.uuid, c.req.valid("param").uuid);
      await deleteRule(db, rule.uuid);
      await changed(rule);
      return c.body(null, 204);
    },
  );

  return app;
}

/** PATCH /users/me/notifications: the caller's notification switches. */
export function notificationsRoutes(deps: AppDeps) {
  const db = deps.database.db;
  const app = createRouter();
  app.openapi(
    createRoute({
      method: "patch",
      path: "/me/notifications",
      tags: ["users", ...tags],
      summary: "Turn the caller's notifications on or off",
      description:
        "update_failed: an update of one of my units ended in Error; unit_offline: one of my units has had no connection for 2 × its state interval; email: every alert event is also mailed (refused when the instance has no SMTP server).",
      request: { body: jsonBody(NotificationsBody) },
      responses: {
        200: jsonResponse(NotificationsOut, "The switches"),
        ...errorResponses(401, 403, 404, 422),
      },
    }),
    async (c) => {
      const me = requireUser(c.get("principal"));
      const body = c.req.valid("json");
      if (body.email && !deps.mailer.configured)
        throw unprocessable("this instance has no SMTP server: e-mail notifications cannot be on");
      await setNotificationSwitches(db, me.uuid, {
        updateFailed: body.update_failed,
        unitOffline: body.unit_offline,
        email: body.email,
      });
      const user = await findUser(db, me.uuid);
      if (!user) throw notFound("user");
      return c.json(toNotificationsOut(user), 200);
    },
  );
  return app;
}
