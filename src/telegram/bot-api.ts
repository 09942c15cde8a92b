import { setTimeout as sleep } from "node:timers/promises";
import { type Api, GrammyError, HttpError as GrammyHttpError, type Transformer } from "grammy";

// The Bot API may be down, refuse the token or rate-limit us: none of it may stop the
// instance. Every call honours 429's retry_after here; the callers back off on the rest.

/** Sleeps, but wakes (without throwing) when the signal aborts. */
export async function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return;
  await sleep(ms, undefined, { signal }).catch(() => {});
}

/** Telegram's own limit on one wait: longer waits are the outbox's and the poller's. */
const MAX_INLINE_RETRIES = 3;

/** An `api.config.use` transformer: a 429 is retried after its retry_after, a few times. */
export function retryAfterTransformer(signal: AbortSignal): Transformer {
  return async (prev, method, payload, callSignal) => {
    for (let attempt = 1; ; attempt++) {
      const res = await prev(method, payload, callSignal);
      const wait = res.ok ? undefined : res.parameters?.retry_after;
      if (wait === undefined || attempt > MAX_INLINE_RETRIES || signal.aborted) return res;
      await pause(wait * 1000, signal);
    }
  };
}

/** Exponential back-off between failed attempts: 1 s doubling up to `maxMs`. */
export function createBackoff(baseMs = 1000, maxMs = 60_000) {
  let next = baseMs;
  return {
    /** How long to wait after this failure (retry_after wins when the API gives one). */
    delay(err: unknown): number {
      const retryAfter = err instanceof GrammyError ? err.parameters.retry_after : undefined;
      const ms = retryAfter !== undefined ? retryAfter * 1000 : next;
      next = Math.min(next * 2, maxMs);
      return ms;
    },
    reset() {
      next = baseMs;
    },
  };
}

/** What went wrong, for a warning: never the token (it is part of every Bot API URL). */
export function describeFailure(err: unknown, token: string): string {
  let text: string;
  if (err instanceof GrammyError) {
    text =
      err.error_code === 401 || err.error_code === 404
        ? `the Bot API refused the bot token (${err.error_code} ${err.description}); check PEPEUNIT_TELEGRAM_BOT_TOKEN`
        : `the Bot API answered ${err.error_code} ${err.description}`;
  } else if (err instanceof GrammyHttpError) {
    const cause = err.error instanceof Error ? `: ${err.error.message}` : "";
    text = `the Bot API is unreachable (${err.message}${cause}); check PEPEUNIT_TELEGRAM_API_ROOT and the network`;
  } else {
    text = err instanceof Error ? err.message : String(err);
  }
  return text.split(token).join("<token>");
}

/** A refusal that retrying cannot fix (a bad chat id, a blocked bot, a too long text). */
export function isPermanent(err: unknown): boolean {
  return (
    err instanceof GrammyError &&
    err.error_code >= 400 &&
    err.error_code < 500 &&
    ![401, 404, 409, 429].includes(err.error_code)
  );
}

/**
 * grammY's Node typings name the abort-controller package's AbortSignal; Node's own is
 * what it uses at run time, so the standard signal is handed over as that type.
 */
export type ApiSignal = Parameters<Api["getMe"]>[0];
export const apiSignal = (signal: AbortSignal): ApiSignal => signal as unknown as ApiSignal;
