import { and, desc, eq } from "drizzle-orm";
import type { DbLike } from "../db/database.ts";
import { alertRules, unitNodes, units } from "../db/schema.ts";
import type { AlertsPort } from "../telegram/alerts-port.ts";
import type { TelegramService } from "../telegram/telegram.service.ts";
import type { AlertService } from "./alerts.service.ts";
import { updateRule } from "./alerts.store.ts";

// Joins the two features built apart: alert events go to the user's linked chat as a
// second delivery channel (the bot decides whether the user has one), and the bot's
// /alerts lists and switches the user's rules through the same store and reload path
// as PATCH /alerts/{uuid}.

/** The bot lists this many of a user's rules (newest first); the web UI shows them all. */
const BOT_RULES_SHOWN = 50;

export function bridgeAlertsToTelegram(deps: {
  db: DbLike;
  alerts: AlertService;
  telegram: TelegramService;
}): void {
  const { db, alerts, telegram } = deps;
  alerts.dispatch.addChannel({
    name: "telegram",
    async deliver(userUuid, event) {
      await telegram.notify(userUuid, event.message);
    },
  });
  const port: AlertsPort = {
    async list(user) {
      const rows = await db
        .select({
          uuid: alertRules.uuid,
          enabled: alertRules.enabled,
          min: alertRules.min,
          max: alertRules.max,
          unit: units.name,
          variable: unitNodes.topicName,
        })
        .from(alertRules)
        .innerJoin(unitNodes, eq(unitNodes.uuid, alertRules.nodeUuid))
        .innerJoin(units, eq(units.uuid, unitNodes.unitUuid))
        .where(eq(alertRules.userUuid, user.uuid))
        .orderBy(desc(alertRules.createdAt), desc(alertRules.uuid))
        .limit(BOT_RULES_SHOWN);
      return rows.map((r) => ({
        uuid: r.uuid,
        enabled: r.enabled,
        label: `${r.unit} / ${r.variable}: ${limitsText(r.min, r.max)}`,
      }));
    },
    async setEnabled(user, ruleUuid, enabled) {
      const [own] = await db
        .select({ uuid: alertRules.uuid })
        .from(alertRules)
        .where(and(eq(alertRules.uuid, ruleUuid), eq(alertRules.userUuid, user.uuid)));
      if (!own) return false;
      await updateRule(db, ruleUuid, { enabled });
      await alerts.ruleChanged({ uuid: ruleUuid, userUuid: user.uuid });
      return true;
    },
  };
  telegram.setAlerts(port);
}

function limitsText(min: number | null, max: number | null): string {
  if (min !== null && max !== null) return `outside ${min} … ${max}`;
  if (min !== null) return `below ${min}`;
  return `above ${max}`;
}
