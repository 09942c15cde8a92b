import { and, count, desc, eq, inArray, type SQL } from "drizzle-orm";
import type { DbLike } from "../db/database.ts";
import {
  type AlertCondition,
  type AlertEventKind,
  alertEvents,
  alertRules,
  unitNodes,
  units,
  users,
} from "../db/schema.ts";

export type AlertRuleRow = typeof alertRules.$inferSelect;
export type AlertEventRow = typeof alertEvents.$inferSelect;

/** The evaluator's part of a rule, written when the condition changes or a message goes out. */
export type AlertRuleState = {
  condition: AlertCondition;
  sentCondition: AlertCondition;
  lastSentAt: Date | null;
  lastValue: number | null;
  crossedLimit: "min" | "max" | null;
};

/** A rule with what the evaluator needs of its variable, unit and owner (names, access). */
export type AlertRuleContext = {
  rule: AlertRuleRow;
  node: { uuid: string; unitUuid: string; topicName: string; visibility: UnitNodeVisibility };
  unit: { name: string; visibility: UnitNodeVisibility; creatorUuid: string };
  owner: { role: "Admin" | "User"; status: string };
};
type UnitNodeVisibility = (typeof unitNodes.$inferSelect)["visibility"];

export type RuleScope =
  | { all: true }
  | { ruleUuid: string }
  | { unitUuid: string }
  | { userUuid: string };

function scopeCondition(scope: RuleScope): SQL | undefined {
  if ("ruleUuid" in scope) return eq(alertRules.uuid, scope.ruleUuid);
  if ("unitUuid" in scope) return eq(unitNodes.unitUuid, scope.unitUuid);
  if ("userUuid" in scope) return eq(alertRules.userUuid, scope.userUuid);
  return undefined;
}

export async function loadRuleContexts(db: DbLike, scope: RuleScope): Promise<AlertRuleContext[]> {
  return db
    .select({
      rule: alertRules,
      node: {
        uuid: unitNodes.uuid,
        unitUuid: unitNodes.unitUuid,
        topicName: unitNodes.topicName,
        visibility: unitNodes.visibility,
      },
      unit: { name: units.name, visibility: units.visibility, creatorUuid: units.creatorUuid },
      owner: { role: users.role, status: users.status },
    })
    .from(alertRules)
    .innerJoin(unitNodes, eq(unitNodes.uuid, alertRules.nodeUuid))
    .innerJoin(units, eq(units.uuid, unitNodes.unitUuid))
    .innerJoin(users, eq(users.uuid, alertRules.userUuid))
    .where(scopeCondition(scope));
}

export async function insertRule(
  db: DbLike,
  values: typeof alertRules.$inferInsert,
): Promise<AlertRuleRow> {
  const [row] = await db.insert(alertRules).values(values).returning();
  if (!row) throw new Error("insert returned nothing");
  return row;
}

export async function findOwnRule(
  db: DbLike,
  userUuid: string,
  uuid: string,
): Promise<{ rule: AlertRuleRow; unitUuid: string } | undefined> {
  const [row] = await db
    .select({ rule: alertRules, unitUuid: unitNodes.unitUuid })
    .from(alertRules)
    .innerJoin(unitNodes, eq(unitNodes.uuid, alertRules.nodeUuid))
    .where(and(eq(alertRules.uuid, uuid), eq(alertRules.userUuid, userUuid)));
  return row;
}

export async function countOwnRules(db: DbLike, userUuid: string): Promise<number> {
  const [row] = await db
    .select({ n: count() })
    .from(alertRules)
    .where(eq(alertRules.userUuid, userUuid));
  return row?.n ?? 0;
}

export async function listOwnRules(
  db: DbLike,
  userUuid: string,
  page: { limit: number; offset: number },
): Promise<{ count: number; rows: Array<{ rule: AlertRuleRow; unitUuid: string }> }> {
  const rows = await db
    .select({ rule: alertRules, unitUuid: unitNodes.unitUuid })
    .from(alertRules)
    .innerJoin(unitNodes, eq(unitNodes.uuid, alertRules.nodeUuid))
    .where(eq(alertRules.userUuid, userUuid))
    .orderBy(desc(alertRules.createdAt), desc(alertRules.uuid))
    .limit(page.limit)
    .offset(page.offset);
  return { count: await countOwnRules(db, userUuid), rows };
}

export async function updateRule(
  db: DbLike,
  uuid: string,
  changes: Partial<typeof alertRules.$inferInsert>,
): Promise<AlertRuleRow | undefined> {
  const [row] = await db
    .update(alertRules)
    .set({ ...changes, updatedAt: new Date() })
    .where(eq(alertRules.uuid, uuid))
    .returning();
  return row;
}

export async function saveRuleState(db: DbLike, uuid: string, state: AlertRuleState) {
  await db.update(alertRules).set(state).where(eq(alertRules.uuid, uuid));
}

export async function deleteRule(db: DbLike, uuid: string): Promise<void> {
  await db.delete(alertRules).where(eq(alertRules.uuid, uuid));
}

export type NewAlertEvent = {
  uuid: string;
  userUuid: string;
  kind: AlertEventKind;
  ruleUuid: string | null;
  unitUuid: string | null;
  nodeUuid: string | null;
  message: string;
  createdAt: Date;
};

export async function insertEvent(db: DbLike, event: NewAlertEvent): Promise<void> {
  await db.insert(alertEvents).values(event);
}

export async function listEvents(
  db: DbLike,
  userUuid: string,
  page: { limit: number; offset: number },
): Promise<{ count: number; unread: number; rows: AlertEventRow[] }> {
  const [totals] = await db
    .select({ n: count() })
    .from(alertEvents)
    .where(eq(alertEvents.userUuid, userUuid));
  const [unread] = await db
    .select({ n: count() })
    .from(alertEvents)
    .where(and(eq(alertEvents.userUuid, userUuid), eq(alertEvents.isRead, false)));
  const rows = await db
    .select()
    .from(alertEvents)
    .where(eq(alertEvents.userUuid, userUuid))
    .orderBy(desc(alertEvents.createdAt), desc(alertEvents.uuid))
    .limit(page.limit)
    .offset(page.offset);
  return { count: totals?.n ?? 0, unread: unread?.n ?? 0, rows };
}

/** Marks the user's events read (all of them, or those listed); returns how many changed. */
export async function markEventsRead(
  db: DbLike,
  userUuid: string,
  uuids: string[] | undefined,
): Promise<number> {
  const changed = await db
    .update(alertEvents)
    .set({ isRead: true })
    .where(
      and(
        eq(alertEvents.userUuid, userUuid),
        eq(alertEvents.isRead, false),
        uuids ? inArray(alertEvents.uuid, uuids) : undefined,
      ),
    )
    .returning({ uuid: alertEvents.uuid });
  return changed.length;
}

export type NotificationSwitches = {
  updateFailed: boolean;
  unitOffline: boolean;
  email: boolean;
};

export async function setNotificationSwitches(
  db: DbLike,
  userUuid: string,
  s: Partial<NotificationSwitches>,
): Promise<void> {
  const changes = {
    ...(s.updateFailed !== undefined ? { notifyUpdateFailed: s.updateFailed } : {}),
    ...(s.unitOffline !== undefined ? { notifyUnitOffline: s.unitOffline } : {}),
    ...(s.email !== undefined ? { notifyEmail: s.email } : {}),
  };
  if (!Object.keys(changes).length) return;
  await db.update(users).set(changes).where(eq(users.uuid, userUuid));
}

/** The unit's name and owner, with the owner's switches and e-mail (for unit notifications). */
export async function unitWithOwner(db: DbLike, unitUuid: string) {
  const [row] = await db
    .select({
      unitName: units.name,
      envEnc: units.envEnc,
      ownerUuid: users.uuid,
      ownerStatus: users.status,
      notifyUpdateFailed: users.notifyUpdateFailed,
      notifyUnitOffline: users.notifyUnitOffline,
    })
    .from(units)
    .innerJoin(users, eq(users.uuid, units.creatorUuid))
    .where(eq(units.uuid, unitUuid));
  return row;
}

export async function mailTarget(db: DbLike, userUuid: string) {
  const [row] = await db
    .select({ email: users.email, login: users.login, notifyEmail: users.notifyEmail })
    .from(users)
    .where(eq(users.uuid, userUuid));
  return row;
}
