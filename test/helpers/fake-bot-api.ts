import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

// A local stand-in for the Telegram Bot API (grammY is pointed at it with
// PEPEUNIT_TELEGRAM_API_ROOT): getMe, long-polled getUpdates fed by the test, the
// methods the bot calls, every call recorded. It can refuse with 429 + retry_after
// or be "down" (every connection dropped) to test that the instance shrugs it off.

export type BotApiCall = { method: string; payload: Record<string, any>; answered: number };

export const FAKE_BOT_USERNAME = "pepeunit_test_bot";

export type FakeBotApi = {
  url: string;
  token: string;
  calls: BotApiCall[];
  /** Resolves with the first call (from index `from` on) that matches. */
  waitFor(match: (c: BotApiCall) => boolean, from?: number): Promise<BotApiCall>;
  /** A user writes `text` in a private chat (a leading /command gets its entity). */
  sendText(chatId: number, text: string): void;
  /** A user presses an inline button of the bot's message. */
  press(chatId: number, messageId: number, data: string): void;
  /** The next `times` calls of `method` answer 429 with this retry_after. */
  rateLimit(method: string, retryAfterS: number, times?: number): void;
  setDown(down: boolean): void;
  close(): Promise<void>;
};

export async function startFakeBotApi(token = "123456:TEST-token-secret"): Promise<FakeBotApi> {
  const calls: BotApiCall[] = [];
  const waiters: Array<{
    match: (c: BotApiCall) => boolean;
    from: number;
    resolve(c: BotApiCall): void;
  }> = [];
  const updates: Array<Record<string, unknown>> = [];
  const polls = new Set<() => void>();
  const limits = new Map<string, { retryAfter: number; times: number }>();
  const sockets = new Set<Socket>();
  let nextUpdateId = 1;
  let nextMessageId = 100;
  let down = false;

  function record(call: BotApiCall) {
    calls.push(call);
    const index = calls.length - 1;
    for (const w of [...waiters]) {
      if (index >= w.from && w.match(call)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(call);
      }
    }
  }

  function pushUpdate(update: Record<string, unknown>) {
    updates.push({ update_id: nextUpdateId++, ...update });
    for (const wake of polls) wake();
  }

  const reply = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  };

  async function readBody(req: IncomingMessage): Promise<Record<string, any>> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    if (!text) return {};
    return JSON.parse(text);
  }

  const message = (chatId: number, text: string, extra: object = {}) => ({
    message_id: nextMessageId++,
    date: Math.floor(Date.now() / 1000),
    chat: { id: chatId, type: "private", first_name: "Tester" },
    text,
    ...extra,
  });

  async function handle(req: IncomingMessage, res: ServerResponse) {
    if (down) {
      req.socket.destroy();
      return;
    }
    const m = /^\/bot([^/]+)\/(\w+)$/.exec(req.url ?? "");
    const payload = await readBody(req);
    if (!m) return reply(res, 404, { ok: false, error_code: 404, description: "Not Found" });
    const [, given, method = ""] = m;
    if (given !== token) {
      record({ method, payload, answered: 401 });
      return reply(res, 401, { ok: false, error_code: 401, description: "Unauthorized" });
    }
    const limit = limits.get(method);
    if (limit && limit.times > 0) {
      limit.times--;
      record({ method, payload, answered: 429 });
      return reply(res, 429, {
        ok: false,
        error_code: 429,
        description: `Too Many Requests: retry after ${limit.retryAfter}`,
        parameters: { retry_after: limit.retryAfter },
      });
    }
    const ok = (result: unknown) => {
      record({ method, payload, answered: 200 });
      reply(res, 200, { ok: true, result });
    };
    switch (method) {
      case "getMe":
        return ok({
          id: 123456,
          is_bot: true,
          first_name: "Pepeunit test",
          username: FAKE_BOT_USERNAME,
          can_join_groups: false,
          can_read_all_group_messages: false,
          supports_inline_queries: false,
        });
      case "getUpdates": {
        const offset = Number(payload.offset ?? 0);
        const timeoutMs = Math.min(Number(payload.timeout ?? 0), 30) * 1000;
        const pending = () => updates.filter((u) => Number(u.update_id) >= offset);
        // Confirmed updates are forgotten, as Telegram does.
        updates.splice(0, updates.length, ...pending());
        if (!pending().length && timeoutMs > 0) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(done, timeoutMs);
            function done() {
              clearTimeout(timer);
              polls.delete(done);
              resolve();
            }
            polls.add(done);
            res.once("close", done);
          });
        }
        if (down || res.destroyed) return;
        return ok(pending());
      }
      case "sendMessage":
        return ok(message(Number(payload.chat_id), String(payload.text)));
      case "editMessageText":
        return ok(message(Number(payload.chat_id), String(payload.text)));
      case "answerCallbackQuery":
      case "setWebhook":
      case "deleteWebhook":
        return ok(true);
      default:
        record({ method, payload, answered: 400 });
        return reply(res, 400, { ok: false, error_code: 400, description: `unknown ${method}` });
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const from = { id: 0, is_bot: false, first_name: "Tester" };

  return {
    url: `http://127.0.0.1:${port}`,
    token,
    calls,
    waitFor(match, fromIndex = 0) {
      const found = calls.slice(fromIndex).find(match);
      if (found) return Promise.resolve(found);
      return new Promise((resolve) => waiters.push({ match, from: fromIndex, resolve }));
    },
    sendText(chatId, text) {
      const command = /^\/\w+/.exec(text);
      pushUpdate({
        message: {
          ...message(chatId, text),
          from: { ...from, id: chatId },
          ...(command
            ? { entities: [{ type: "bot_command", offset: 0, length: command[0].length }] }
            : {}),
        },
      });
    },
    press(chatId, messageId, data) {
      pushUpdate({
        callback_query: {
          id: String(nextUpdateId),
          from: { ...from, id: chatId },
          chat_instance: String(chatId),
          data,
          message: message(chatId, "…", { message_id: messageId }),
        },
      });
    },
    rateLimit(method, retryAfter, times = 1) {
      limits.set(method, { retryAfter, times });
    },
    setDown(value) {
      down = value;
      if (down) {
        for (const wake of polls) wake();
        for (const s of sockets) s.destroy();
      }
    },
    async close() {
      for (const wake of polls) wake();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
