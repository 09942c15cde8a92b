import { createHmac, timingSafeEqual } from "node:crypto";
import { Bot, BotError, GrammyError } from "grammy";
import type { Update } from "grammy/types";
import type { Config, TelegramConfig } from "../config.ts";
import { loggableError } from "../http/errors.ts";
import type { AppDeps } from "../http/types.ts";
import { packageVersion } from "../project-root.ts";
import type { AlertsPort } from "./alerts-port.ts";
import { installHandlers } from "./bot.ts";
import {
  apiSignal,
  createBackoff,
  describeFailure,
  pause,
  retryAfterTransformer,
} from "./bot-api.ts";
import { createOutbox } from "./outbox.ts";
import { chatOfUser } from "./telegram.store.ts";

// The Telegram bot (issue 12): same process, same database. start() returns at once:
// reaching the Bot API (getMe, then polling or setWebhook) happens in the background,
// with back-off, so a wrong token or an unreachable API only ever logs warnings.

export const WEBHOOK_PATH = "/pepeunit/api/v1/telegram/webhook";
const VERSION = packageVersion();
const POLL_TIMEOUT_S = 25;
const ALLOWED_UPDATES = ["message", "callback_query"] as const;

export type TelegramService = {
  /** Connects (getMe) and counts values; every process of a cluster does this. */
  start(): void;
  /** Polls for updates or registers the webhook: the "telegram" role (one process). */
  startReceiving(): void;
  stopReceiving(): Promise<void>;
  stop(): Promise<void>;
  /** Queues a message to the user's linked chat; false when the user has none. */
  notify(userUuid: string, text: string): Promise<boolean>;
  /** The bot's @username once getMe has answered. */
  username(): string | undefined;
  /** The webhook's answer to one POST from the Bot API (status only). */
  handleWebhook(secretHeader: string | undefined, update: unknown): Promise<number>;
  /** Wires /alerts to the alert rules (src/alerts/), when the instance has them. */
  setAlerts(port: AlertsPort | undefined): void;
};

/** The webhook's secret token: derived from the instance's secret, 1-256 of [A-Za-z0-9_-]. */
export function webhookSecret(config: Pick<Config, "secretKey">): string {
  return createHmac("sha256", config.secretKey).update("telegram-webhook").digest("base64url");
}

export function createTelegramService(
  deps: Omit<AppDeps, "telegram">,
  tg: TelegramConfig,
): TelegramService {
  const { log } = deps;
  const abort = new AbortController();
  const signal = abort.signal;
  const bot = new Bot(tg.token, { client: { apiRoot: tg.apiRoot } });
  bot.api.config.use(retryAfterTransformer(signal));
  const outbox = createOutbox({ api: bot.api, log, token: tg.token, signal });
  let alerts: AlertsPort | undefined;

  // Values per unit over the last full minute: two counting maps swapped each minute.
  let current = new Map<string, number>();
  let lastMinute = new Map<string, number>();
  const onValue = ({ unitUuid }: { unitUuid: string }) =>
    current.set(unitUuid, (current.get(unitUuid) ?? 0) + 1);
  const minuteTimer = setInterval(() => {
    lastMinute = current;
    current = new Map();
  }, 60_000);
  minuteTimer.unref();

  installHandlers(bot, {
    deps,
    send: (msg) => outbox.send(msg),
    alerts: () => alerts,
    valuesPerMinute: (uuids) => uuids.reduce((n, u) => n + (lastMinute.get(u) ?? 0), 0),
    version: VERSION,
  });
  /** One update through the handlers; a handler's failure is logged, never thrown on. */
  async function handle(update: Update): Promise<void> {
    try {
      await bot.handleUpdate(update);
    } catch (err) {
      const cause = err instanceof BotError ? err.error : err;
      log.warn({ error: loggableError(cause) }, "telegram: update failed");
    }
  }

  const secret = webhookSecret(deps.config);

  /** Retries `step` with back-off until it succeeds or the service stops. */
  async function persist(
    what: string,
    step: () => Promise<unknown>,
    signal: AbortSignal,
  ): Promise<boolean> {
    const backoff = createBackoff(1000, 5 * 60_000);
    while (!signal.aborted) {
      try {
        await step();
        return true;
      } catch (err) {
        if (signal.aborted) return false;
        const ms = backoff.delay(err);
        log.warn(
          { reason: describeFailure(err, tg.token), retryInMs: ms },
          `telegram: ${what} failed; the instance runs on, retrying`,
        );
        await pause(ms, signal);
      }
    }
    return false;
  }

  async function poll(signal: AbortSignal): Promise<void> {
    const callSignal = apiSignal(signal);
    let offset = 0;
    const backoff = createBackoff();
    while (!signal.aborted) {
      let updates: Update[];
      try {
        updates = await bot.api.getUpdates(
          { offset, timeout: POLL_TIMEOUT_S, allowed_updates: [...ALLOWED_UPDATES] },
          callSignal,
        );
        backoff.reset();
      } catch (err) {
        if (signal.aborted) return;
        const ms = backoff.delay(err);
        log.warn(
          { reason: describeFailure(err, tg.token), retryInMs: ms },
          "telegram: getUpdates failed; retrying",
        );
        // 409: a webhook is set (or another process polls): take polling back.
        if (err instanceof GrammyError && err.error_code === 409) {
          await bot.api.deleteWebhook(undefined, callSignal).catch(() => {});
        }
        await pause(ms, signal);
        continue;
      }
      for (const update of updates) {
        offset = update.update_id + 1;
        await handle(update);
      }
    }
  }

  /** getMe: every process needs it (the webhook's updates may reach any of them). */
  async function connect(signal: AbortSignal): Promise<boolean> {
    if (bot.isInited()) return true;
    const callSignal = apiSignal(signal);
    // Not bot.init(): it retries an unreachable API silently; here every failure is logged.
    const reached = await persist(
      "getMe",
      async () => {
        bot.botInfo = await bot.api.getMe(callSignal);
      },
      signal,
    );
    if (reached) {
      log.info({ username: bot.botInfo.username, mode: tg.mode }, "telegram: bot connected");
    }
    return reached;
  }

  /** Registering the webhook or polling for updates: one process of a cluster does it. */
  async function receive(signal: AbortSignal): Promise<void> {
    if (!(await connect(signal))) return;
    const callSignal = apiSignal(signal);
    if (tg.mode === "webhook") {
      await persist(
        "setWebhook",
        () =>
          bot.api.setWebhook(
            `${deps.config.baseUrl}${WEBHOOK_PATH}`,
            { secret_token: secret, allowed_updates: [...ALLOWED_UPDATES] },
            callSignal,
          ),
        signal,
      );
      return;
    }
    if (
      await persist("deleteWebhook", () => bot.api.deleteWebhook(undefined, callSignal), signal)
    ) {
      await poll(signal);
    }
  }

  let receiving: { abort: AbortController; done: Promise<void> } | undefined;
  let connecting: Promise<unknown> | undefined;

  return {
    start() {
      deps.events.on("unit-node.value-seen", onValue);
      connecting ??= connect(signal).catch(() => false);
    },
    startReceiving() {
      if (receiving || signal.aborted) return;
      const ac = new AbortController();
      const stopAll = () => ac.abort();
      signal.addEventListener("abort", stopAll, { once: true });
      const done = receive(ac.signal)
        .catch((err: unknown) => {
          log.error({ error: loggableError(err) }, "telegram: bot stopped unexpectedly");
        })
        .finally(() => signal.removeEventListener("abort", stopAll));
      receiving = { abort: ac, done };
    },
    async stopReceiving() {
      const r = receiving;
      receiving = undefined;
      r?.abort.abort();
      await r?.done;
    },
    async stop() {
      deps.events.off("unit-node.value-seen", onValue);
      clearInterval(minuteTimer);
      abort.abort();
      await connecting;
      await this.stopReceiving();
      await outbox.stop();
    },
    async notify(userUuid, text) {
      const chatId = await chatOfUser(deps.database.db, userUuid);
      if (chatId === undefined) return false;
      outbox.send({ chatId, text });
      return true;
    },
    username: () => (bot.isInited() ? bot.botInfo.username : undefined),
    async handleWebhook(secretHeader, update) {
      const given = Buffer.from(secretHeader ?? "");
      const expected = Buffer.from(secret);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 401;
      // Not connected yet: Telegram delivers the update again later.
      if (!bot.isInited()) return 503;
      if (!update || typeof update !== "object" || !("update_id" in update)) return 400;
      await handle(update as Update);
      return 200;
    },
    setAlerts(port) {
      alerts = port;
    },
  };
}
