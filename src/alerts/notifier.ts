import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { DbLike } from "../db/database.ts";
import type { AlertEventKind } from "../db/schema.ts";
import type { EventBus } from "../events.ts";
import type { Mailer } from "../mail/mailer.ts";
import { mailFailure } from "../mail/mailer.ts";
import { insertEvent, mailTarget } from "./alerts.store.ts";

// Every alert becomes an event kept in the database (the user's list and unread count),
// then goes to each delivery channel: e-mail here, the Telegram bot later. A channel that
// fails is logged and never stops the others, the evaluator or the ingest.

export type AlertEvent = {
  uuid: string;
  kind: AlertEventKind;
  message: string;
  ruleUuid: string | null;
  unitUuid: string | null;
  nodeUuid: string | null;
  createdAt: Date;
};

export type AlertDraft = Omit<AlertEvent, "uuid" | "createdAt">;

/** A delivery channel: decides for itself whether this user wants it (switches, linked chat). */
export type Notifier = {
  readonly name: string;
  deliver(userUuid: string, event: AlertEvent): Promise<void>;
};

export type NotificationDispatch = {
  /** Keeps the event, then hands it to every channel; resolves when all have answered. */
  notify(userUuid: string, draft: AlertDraft, at: Date): Promise<AlertEvent>;
  /** A channel added after start (the Telegram bot, once it runs). */
  addChannel(channel: Notifier): void;
  /** Waits for deliveries in progress. */
  drain(): Promise<void>;
};

export function createNotificationDispatch(deps: {
  db: DbLike;
  log: Logger;
  events: EventBus;
  channels?: Notifier[];
}): NotificationDispatch {
  const channels = [...(deps.channels ?? [])];
  const inFlight = new Set<Promise<unknown>>();

  async function run(userUuid: string, event: AlertEvent) {
    await insertEvent(deps.db, { ...event, userUuid });
    deps.events.emit("alert.created", { userUuid, eventUuid: event.uuid, kind: event.kind });
    await Promise.all(
      channels.map((ch) =>
        ch
          .deliver(userUuid, event)
          .catch((err: unknown) =>
            deps.log.warn({ err, channel: ch.name, kind: event.kind }, "alerts: delivery failed"),
          ),
      ),
    );
  }

  return {
    notify(userUuid, draft, at) {
      const event: AlertEvent = { ...draft, uuid: randomUUID(), createdAt: at };
      const p = run(userUuid, event)
        .catch((err: unknown) => deps.log.error({ err }, "alerts: keeping an alert event failed"))
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
      return p.then(() => event);
    },
    addChannel(channel) {
      channels.push(channel);
    },
    async drain() {
      while (inFlight.size) await Promise.all([...inFlight]);
    },
  };
}

/** Mails each event to users who turned e-mail on, when SMTP is configured. */
export function createMailNotifier(deps: { db: DbLike; mailer: Mailer; log: Logger }): Notifier {
  return {
    name: "email",
    async deliver(userUuid, event) {
      if (!deps.mailer.configured) return;
      const target = await mailTarget(deps.db, userUuid);
      if (!target?.notifyEmail) return;
      try {
        await deps.mailer.send({
          to: target.email,
          subject: `Pepeunit alert: ${event.message.slice(0, 120)}`,
          text: `Hello ${target.login},\n\n${event.message}\n\n(${event.createdAt.toISOString()})\n`,
        });
      } catch (err) {
        deps.log.warn({ ...mailFailure(err), kind: event.kind }, "alerts: mail not sent");
      }
    },
  };
}
