import { afterAll, describe, expect, it } from "vitest";
import { webhookSecret } from "../../src/telegram/telegram.service.ts";
import { eventually } from "../broker/mqtt-helpers.ts";
import { type FakeBotApi, startFakeBotApi } from "../helpers/fake-bot-api.ts";
import {
  captureLogs,
  createUser,
  startTestInstance,
  type TestInstance,
} from "../helpers/instance.ts";

// Webhook mode, and a Bot API that is unreachable or refuses the token at start: the
// instance starts and serves regardless, and the bot catches up once it can.

const WEBHOOK = "/pepeunit/api/v1/telegram/webhook";

describe("telegram webhook and start-up failures", () => {
  const closing: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const close of closing.reverse()) await close();
  });

  async function start(fake: FakeBotApi, env: Record<string, string>) {
    const logs = captureLogs();
    const inst: TestInstance = await startTestInstance(
      {
        PEPEUNIT_TELEGRAM_BOT_TOKEN: fake.token,
        PEPEUNIT_TELEGRAM_API_ROOT: fake.url,
        PEPEUNIT_LOG_LEVEL: "info",
        ...env,
      },
      { logStream: logs.stream },
    );
    closing.push(() => inst.close());
    return { inst, logs };
  }

  it("starts with the Bot API down, then sets its webhook and checks the secret header", async () => {
    const fake = await startFakeBotApi();
    closing.push(() => fake.close());
    fake.setDown(true);
    const { inst, logs } = await start(fake, { PEPEUNIT_TELEGRAM_MODE: "webhook" });
    expect((await inst.api.get("/healthz")).status).toBe(200);
    await eventually(async () => logs.text().includes("the Bot API is unreachable"));
    fake.setDown(false);
    const set = await fake.waitFor((c) => c.method === "setWebhook" && c.answered === 200);
    const secret = webhookSecret(inst.deps.config);
    expect(set.payload.url).toBe(`${inst.deps.config.baseUrl}${WEBHOOK}`);
    expect(set.payload.secret_token).toBe(secret);
    expect(fake.calls.some((c) => c.method === "getUpdates")).toBe(false);

    const update = {
      update_id: 7,
      message: {
        message_id: 1,
        date: Math.floor(Date.now() / 1000),
        chat: { id: 4242, type: "private", first_name: "T" },
        from: { id: 4242, is_bot: false, first_name: "T" },
        text: "/help",
        entities: [{ type: "bot_command", offset: 0, length: 5 }],
      },
    };
    const post = (headers: Record<string, string>) =>
      inst.api.request("POST", WEBHOOK, { body: update, headers });
    expect((await post({})).status).toBe(401);
    expect((await post({ "x-telegram-bot-api-secret-token": `${secret.slice(1)}x` })).status).toBe(
      401,
    );
    expect(fake.calls.some((c) => c.method === "sendMessage")).toBe(false);
    const from = fake.calls.length;
    expect((await post({ "x-telegram-bot-api-secret-token": secret })).status).toBe(200);
    const sent = await fake.waitFor((c) => c.method === "sendMessage", from);
    expect(sent.payload.chat_id).toBe(4242);
    expect(sent.payload.text).toMatch(/\/units/);
    expect(logs.text()).not.toContain(fake.token);
  });

  it("runs on with a token the Bot API refuses, saying so without the token", async () => {
    const fake = await startFakeBotApi();
    closing.push(() => fake.close());
    const wrong = "999999:WRONG-token-never-logged";
    const { inst, logs } = await start(fake, { PEPEUNIT_TELEGRAM_BOT_TOKEN: wrong });
    await fake.waitFor((c) => c.method === "getMe" && c.answered === 401);
    await eventually(async () => logs.text().includes("refused the bot token"));
    expect(logs.text()).not.toContain(wrong);
    expect((await inst.api.get("/healthz")).status).toBe(200);
    const user = await createUser(inst.api, "ann");
    const res = await inst.api.post("/users/me/telegram", undefined, user.token);
    expect(res.status).toBe(503);
    // The webhook route exists only in webhook mode.
    expect((await inst.api.request("POST", WEBHOOK, { body: {} })).status).toBe(404);
  });
});
