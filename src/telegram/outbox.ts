import type { Api, RawApi } from "grammy";
import type { InlineKeyboardMarkup } from "grammy/types";
import type { Logger } from "pino";
import { apiSignal, createBackoff, describeFailure, isPermanent, pause } from "./bot-api.ts";

// Outgoing messages wait here, in order, until the Bot API takes them: a Bot API that
// is down or rate-limits us delays them, and never a request, an MQTT message or a stop.

export type OutgoingMessage = { chatId: number; text: string; markup?: InlineKeyboardMarkup };

/** Beyond this many waiting messages the oldest are dropped (a long outage, a flood). */
const MAX_QUEUED = 1000;
/** Telegram's limit on one message's text. */
const MAX_TEXT = 4096;

export type Outbox = {
  send(msg: OutgoingMessage): void;
  /** Messages still waiting (tests, health). */
  pending(): number;
  stop(): Promise<void>;
};

export function createOutbox(deps: {
  api: Api<RawApi>;
  log: Logger;
  token: string;
  signal: AbortSignal;
}): Outbox {
  const { api, log, signal } = deps;
  const queue: OutgoingMessage[] = [];
  let wake: (() => void) | undefined;
  const backoff = createBackoff();
  let failing = false;

  async function deliver(msg: OutgoingMessage): Promise<void> {
    await api.sendMessage(
      msg.chatId,
      msg.text.length > MAX_TEXT ? `${msg.text.slice(0, MAX_TEXT - 1)}…` : msg.text,
      {
        ...(msg.markup ? { reply_markup: msg.markup } : {}),
        link_preview_options: { is_disabled: true },
      },
      apiSignal(signal),
    );
  }

  async function run(): Promise<void> {
    while (!signal.aborted) {
      const msg = queue[0];
      if (!msg) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
        continue;
      }
      try {
        await deliver(msg);
        queue.shift();
        backoff.reset();
        if (failing)
          log.info({ pending: queue.length }, "telegram: Bot API reachable again, sending");
        failing = false;
      } catch (err) {
        if (signal.aborted) break;
        if (isPermanent(err)) {
          queue.shift();
          log.warn(
            { reason: describeFailure(err, deps.token) },
            "telegram: message refused, dropped",
          );
          continue;
        }
        const ms = backoff.delay(err);
        if (!failing) {
          log.warn(
            { reason: describeFailure(err, deps.token), retryInMs: ms, pending: queue.length },
            "telegram: cannot send messages; they are kept and retried",
          );
        }
        failing = true;
        await pause(ms, signal);
      }
    }
  }

  const running = run();
  const onAbort = () => wake?.();
  signal.addEventListener("abort", onAbort, { once: true });

  return {
    send(msg) {
      if (signal.aborted) return;
      if (queue.length >= MAX_QUEUED) queue.splice(1, 1);
      queue.push(msg);
      wake?.();
    },
    pending: () => queue.length,
    async stop() {
      wake?.();
      await running;
    },
  };
}
