import { z } from "@hono/zod-openapi";
import type { AlertEventRow, AlertRuleRow } from "./alerts.store.ts";

/** Limits well inside a double's exact range: enough for any sensor, no overflow in arithmetic. */
const LIMIT = 1e15;
const Bound = z.number().min(-LIMIT).max(LIMIT);
/** One week: a longer silence is a disabled rule. */
export const MAX_INTERVAL_S = 7 * 24 * 3600;

export const CreateAlertBody = z
  .object({
    unit_node_uuid: z.uuid().openapi({ description: "a variable the caller may read" }),
    min: Bound.nullish().openapi({ description: "fires below this value" }),
    max: Bound.nullish().openapi({ description: "fires above this value" }),
    hysteresis: z.number().min(0).max(LIMIT).default(0).openapi({
      description: "a firing rule is normal again once the value is back inside by more than this",
    }),
    min_interval_s: z.number().int().min(0).max(MAX_INTERVAL_S).default(60).openapi({
      description: "at most one message per this many seconds",
    }),
    enabled: z.boolean().default(true),
  })
  .openapi("CreateAlertRule");

export const UpdateAlertBody = z
  .object({
    min: Bound.nullish().openapi({ description: "null removes the lower limit" }),
    max: Bound.nullish().openapi({ description: "null removes the upper limit" }),
    hysteresis: z.number().min(0).max(LIMIT).optional(),
    min_interval_s: z.number().int().min(0).max(MAX_INTERVAL_S).optional(),
    enabled: z.boolean().optional(),
  })
  .openapi("UpdateAlertRule");

export const AlertRuleOut = z
  .object({
    uuid: z.uuid(),
    unit_node_uuid: z.uuid(),
    unit_uuid: z.uuid(),
    min: z.number().nullable(),
    max: z.number().nullable(),
    hysteresis: z.number(),
    min_interval_s: z.number().int(),
    enabled: z.boolean(),
    state: z
      .enum(["normal", "firing"])
      .openapi({ description: "what the values last said (as of the last condition change)" }),
    create_datetime: z.string(),
    update_datetime: z.string(),
  })
  .openapi("AlertRule");

export function toAlertRuleOut(rule: AlertRuleRow, unitUuid: string): z.infer<typeof AlertRuleOut> {
  return {
    uuid: rule.uuid,
    unit_node_uuid: rule.nodeUuid,
    unit_uuid: unitUuid,
    min: rule.min,
    max: rule.max,
    hysteresis: rule.hysteresis,
    min_interval_s: rule.minIntervalS,
    enabled: rule.enabled,
    state: rule.condition,
    create_datetime: rule.createdAt.toISOString(),
    update_datetime: rule.updatedAt.toISOString(),
  };
}

export const AlertEventKindSchema = z.enum([
  "threshold",
  "back_to_normal",
  "update_failed",
  "unit_offline",
]);

export const AlertEventOut = z
  .object({
    uuid: z.uuid(),
    kind: AlertEventKindSchema,
    message: z.string(),
    rule_uuid: z.uuid().nullable(),
    unit_uuid: z.uuid().nullable(),
    unit_node_uuid: z.uuid().nullable(),
    read: z.boolean(),
    create_datetime: z.string(),
  })
  .openapi("AlertEvent");

export function toAlertEventOut(e: AlertEventRow): z.infer<typeof AlertEventOut> {
  return {
    uuid: e.uuid,
    kind: e.kind,
    message: e.message,
    rule_uuid: e.ruleUuid,
    unit_uuid: e.unitUuid,
    unit_node_uuid: e.nodeUuid,
    read: e.isRead,
    create_datetime: e.createdAt.toISOString(),
  };
}

export const MarkReadBody = z
  .object({
    uuids: z.array(z.uuid()).min(1).max(500).optional().openapi({
      description: "the events to mark read; omitted: all of the caller's events",
    }),
  })
  .openapi("MarkAlertEventsRead");

export const NotificationsOut = z
  .object({
    update_failed: z
      .boolean()
      .openapi({ description: "an update of one of my units ended in Error" }),
    unit_offline: z.boolean().openapi({
      description: "one of my units has had no connection for 2 × its state interval",
    }),
    email: z.boolean().openapi({ description: "mail every alert event (needs SMTP)" }),
  })
  .openapi("NotificationSwitches");

export const NotificationsBody = NotificationsOut.partial().openapi("UpdateNotificationSwitches");

export function toNotificationsOut(u: {
  notifyUpdateFailed: boolean;
  notifyUnitOffline: boolean;
  notifyEmail: boolean;
}): z.infer<typeof NotificationsOut> {
  return {
    update_failed: u.notifyUpdateFailed,
    unit_offline: u.notifyUnitOffline,
    email: u.notifyEmail,
  };
}
