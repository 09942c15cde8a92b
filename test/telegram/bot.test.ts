import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  connectClient,
  eventually,
  makeUnit,
  makeWorld,
  type TestClient,
  type World,
  type WorldUnit,
} from "../broker/mqtt-helpers.ts";
import { FAKE_BOT_USERNAME, type FakeBotApi, startFakeBotApi } from "../helpers/fake-bot-api.ts";
import { createUser, startTestInstance, type TestInstance } from "../helpers/instance.ts";

// The Telegram bot against a local fake Bot API (long polling): linking, each command
// with the same access as REST, board buttons reaching the unit over MQTT, and a Bot
// API that is down or rate-limits leaving the instance healthy.

const BOB_CHAT = 1001;
const CAROL_CHAT = 2002;
const STRANGER_CHAT = 3003;

describe("telegram bot", () => {
  let fake: FakeBotApi;
  let inst: TestInstance;
  let world: World;
  let carol: { uuid: string; token: string };
  let unit: WorldUnit;
  let hidden: WorldUnit;
  let dev: TestClient;

  /** The next message the bot sends to the chat after `text` is written there. */
  async function ask(chatId: number, text: string): Promise<string> {
    const from = fake.calls.length;
    fake.sendText(chatId, text);
    const sent = await fake.waitFor(
      (c) => c.method === "sendMessage" && c.payload.chat_id === chatId && c.answered === 200,
      from,
    );
    return String(sent.payload.text);
  }

  /** Presses a button; resolves with the bot's answer to the press and what came before it. */
  async function press(chatId: number, data: string) {
    const from = fake.calls.length;
    fake.press(chatId, 555, data);
    const answer = await fake.waitFor((c) => c.method === "answerCallbackQuery", from);
    return { answer: answer.payload, calls: fake.calls.slice(from) };
  }

  /** The message the bot sends (queued) after a press. */
  async function pressForMessage(chatId: number, data: string): Promise<Record<string, any>> {
    const from = fake.calls.length;
    fake.press(chatId, 555, data);
    const sent = await fake.waitFor(
      (c) => c.method === "sendMessage" && c.payload.chat_id === chatId,
      from,
    );
    return sent.payload;
  }

  async function link(token: string, chatId: number) {
    const res = await eventually(async () => {
      const r = await inst.api.post("/users/me/telegram", undefined, token);
      return r.status === 200 && r;
    });
    expect(await ask(chatId, `/start ${res.body.code}`)).toMatch(/^Linked to /);
    return res.body;
  }

  const buttons = (payload: Record<string, any>): Array<{ text: string; callback_data: string }> =>
    (payload.reply_markup?.inline_keyboard ?? []).flat();

  beforeAll(async () => {
    fake = await startFakeBotApi();
    inst = await startTestInstance({
      PEPEUNIT_TELEGRAM_BOT_TOKEN: fake.token,
      PEPEUNIT_TELEGRAM_API_ROOT: fake.url,
    });
    world = await makeWorld(inst);
    carol = await createUser(inst.api, "carol");
    unit = await makeUnit(inst, world.bob.token, world.repoUuid);
    hidden = await makeUnit(inst, world.bob.token, world.repoUuid, { visibility: "Private" });
    dev = await connectClient(inst.mqttUrl, unit.token, { clientId: unit.uuid });
    await dev.subscribeAsync(unit.topic("Input", "relay"), { qos: 1 });
    await dev.subscribeAsync(unit.base("input_base_topic", "schema_update/pepeunit"), { qos: 1 });
  });
  afterAll(async () => {
    await dev?.endAsync(true);
    await inst?.close();
    await fake?.close();
  });

  it("links a chat with a one-time code, refuses wrong and used codes, and unlinks", async () => {
    expect((await inst.api.get("/users/me", world.bob.token)).body.telegram_linked).toBe(false);
    // Unlinked: /info gets no answer at all, /help does (the next message is /help's).
    const from = fake.calls.length;
    fake.sendText(BOB_CHAT, "/info");
    expect(await ask(BOB_CHAT, "/help")).toMatch(/\/units/);
    expect(fake.calls.slice(from).filter((c) => c.method === "sendMessage")).toHaveLength(1);

    expect(await ask(BOB_CHAT, "/start not-a-code-at-all")).toMatch(/wrong, used or expired/);
    const body = await link(world.bob.token, BOB_CHAT);
    expect(body.link).toBe(`https://t.me/${FAKE_BOT_USERNAME}?start=${body.code}`);
    expect(await ask(STRANGER_CHAT, `/start ${body.code}`)).toMatch(/wrong, used or expired/);
    expect((await inst.api.get("/users/me", world.bob.token)).body.telegram_linked).toBe(true);
    expect(await ask(BOB_CHAT, "/info")).toMatch(/Units online: \d+ \/ 2/);

    expect((await inst.api.delete("/users/me/telegram", world.bob.token)).status).toBe(204);
    expect((await inst.api.delete("/users/me/telegram", world.bob.token)).status).toBe(404);
    expect((await inst.api.get("/users/me", world.bob.token)).body.telegram_linked).toBe(false);
    const after = fake.calls.length;
    fake.sendText(BOB_CHAT, "/units");
    expect(await ask(BOB_CHAT, "/help")).toMatch(/\/boards/);
    expect(fake.calls.slice(after).filter((c) => c.method === "sendMessage")).toHaveLength(1);
    expect((await inst.api.post("/users/me/telegram")).status).toBe(401);

    await link(world.bob.token, BOB_CHAT);
    await link(carol.token, CAROL_CHAT);
  });

  it("lists and shows units with the caller's access", async () => {
    expect(await ask(CAROL_CHAT, "/info")).toMatch(/Units online: 1 \/ 1/);
    const from = fake.calls.length;
    fake.sendText(CAROL_CHAT, "/units");
    const list = await fake.waitFor(
      (c) => c.method === "sendMessage" && c.payload.chat_id === CAROL_CHAT,
      from,
    );
    const names = buttons(list.payload).map((b) => b.callback_data);
    expect(names).toEqual([`uc:${unit.uuid}`]);
    expect(await ask(CAROL_CHAT, `/units ${hidden.json.name}`)).toMatch(/^No units/);

    // Hidden unit: the same 404 as REST, whatever the button.
    for (const data of [`uc:${hidden.uuid}`, `uv:${hidden.uuid}`, `ud:${hidden.uuid}`]) {
      const { answer } = await press(CAROL_CHAT, data);
      expect(answer.text).toBe("unit not found");
      expect(answer.show_alert).toBe(true);
    }
    // A visible unit that is not carol's: a card without the manager's buttons, and no
    // logs, commands or downloads when asked for anyway.
    const { calls } = await press(CAROL_CHAT, `uc:${unit.uuid}`);
    const card = calls.find((c) => c.method === "editMessageText");
    expect(card?.payload.text).toMatch(/Online: yes/);
    expect(buttons(card?.payload ?? {}).map((b) => b.text)).toEqual(["Variables"]);
    expect((await press(CAROL_CHAT, `ug:${unit.uuid}`)).answer.text).toMatch(/creator or an admin/);
    expect((await press(CAROL_CHAT, `ux:LogSync:${unit.uuid}`)).answer.text).toBe("unit not found");
    expect((await press(CAROL_CHAT, `ud:${unit.uuid}`)).answer.text).toMatch(/creator or an admin/);

    const vars = await pressForMessage(CAROL_CHAT, `uv:${unit.uuid}`);
    expect(vars.text).toMatch(/relay/);
    expect(vars.text).toMatch(/temperature/);
  });

  it("sends commands and hands out one-time download links to the creator", async () => {
    const { calls } = await press(BOB_CHAT, `uc:${hidden.uuid}`);
    const card = calls.find((c) => c.method === "editMessageText");
    expect(buttons(card?.payload ?? {}).map((b) => b.text)).toEqual([
      "Variables",
      "Logs",
      "Update",
      "EnvUpdate",
      "SchemaUpdate",
      "LogSync",
      "Download env.json and firmware",
    ]);
    expect((await press(BOB_CHAT, `ux:SchemaUpdate:${unit.uuid}`)).answer.text).toBe(
      "SchemaUpdate sent",
    );
    const m = await dev.waitFor(
      (x) => x.topic === unit.base("input_base_topic", "schema_update/pepeunit"),
    );
    expect(JSON.parse(m.payload.toString())).toEqual({ COMMAND: "SchemaUpdate" });

    expect((await pressForMessage(BOB_CHAT, `ug:${unit.uuid}`)).text).toMatch(/last logs/);

    const links = String((await pressForMessage(BOB_CHAT, `ud:${unit.uuid}`)).text);
    const [envUrl, fwUrl] = [...links.matchAll(/https?:\/\/\S+/g)].map((x) => x[0]);
    // The links name the instance; they are fetched here on its real address.
    const local = (u = "") => u.replace(inst.deps.config.baseUrl, inst.httpUrl);
    expect(links).not.toMatch(/PU_AUTH_TOKEN/);
    const env = await fetch(local(envUrl));
    expect(env.status).toBe(200);
    expect((await env.json()).PU_AUTH_TOKEN).toBe(unit.token);
    expect((await fetch(local(envUrl))).status).toBe(404);
    const fw = await fetch(local(fwUrl));
    expect(fw.status).toBe(200);
    expect([...new Uint8Array(await fw.arrayBuffer()).slice(0, 2)]).toEqual([0x1f, 0x8b]);
    expect((await fetch(local(fwUrl))).status).toBe(404);
  });

  it("pages the unit list, keeping the search", async () => {
    for (let i = 0; i < 8; i++) {
      await makeUnit(inst, world.bob.token, world.repoUuid, { name: `paged-${i}` });
    }
    const from = fake.calls.length;
    fake.sendText(BOB_CHAT, "/units paged");
    const first = await fake.waitFor(
      (c) => c.method === "sendMessage" && c.payload.chat_id === BOB_CHAT,
      from,
    );
    expect(first.payload.text).toBe('Units matching "paged": 1–8 of 8');
    const all = await ask(BOB_CHAT, "/units");
    expect(all).toBe("Units: 1–8 of 10");
    const { calls } = await press(BOB_CHAT, "ul:8:");
    const page = calls.find((c) => c.method === "editMessageText")?.payload ?? {};
    expect(page.text).toBe("Units: 9–10 of 10");
    expect(buttons(page).map((b) => b.callback_data)).toContain("ul:0:");
    expect(buttons(page).some((b) => b.text === "next ›")).toBe(false);
  });

  it("shows boards with read-outs and buttons that set inputs as REST does", async () => {
    const temperature = unit.nodeUuid("Output", "temperature");
    const relay = unit.nodeUuid("Input", "relay");
    await dev.publishAsync(unit.topic("Output", "temperature"), "21.5", { qos: 1 });
    await eventually(async () => {
      const n = await inst.api.get(`/unit_nodes/${temperature}`, world.bob.token);
      return n.body.last_value === "21.5";
    });
    const created = await inst.api.post(
      "/boards",
      {
        name: "Greenhouse",
        items: [
          { unit_node_uuid: temperature, label: "Temp" },
          { unit_node_uuid: relay, label: "Pump", values: ["on", "off"] },
        ],
      },
      carol.token,
    );
    expect(created.status).toBe(201);
    const board = created.body.uuid;

    expect(await ask(CAROL_CHAT, "/boards")).toBe("Boards: 1");
    const shown = await pressForMessage(CAROL_CHAT, `bo:${board}`);
    expect(shown.text).toMatch(/Temp: 21\.5/);
    const pump = buttons(shown).filter((b) => b.text.startsWith("Pump"));
    expect(pump.map((b) => b.text)).toEqual(["Pump: on", "Pump: off"]);

    // Not rewritable: refused with REST's reason, nothing published.
    const refused = await press(CAROL_CHAT, pump[0]?.callback_data ?? "");
    expect(refused.answer.text).toMatch(/not rewritable/);
    const flag = await inst.api.patch(
      `/unit_nodes/${relay}`,
      { is_rewritable_input: true },
      world.bob.token,
    );
    expect(flag.status).toBe(200);
    const pressed = await press(CAROL_CHAT, pump[0]?.callback_data ?? "");
    expect(pressed.answer.text).toBe("Pump set to on");
    const m = await dev.waitFor((x) => x.topic === unit.topic("Input", "relay"));
    expect(m.payload.toString()).toBe("on");
    expect(pressed.calls.find((c) => c.method === "editMessageText")?.payload.text).toMatch(
      /Pump: on/,
    );

    // The output becomes Private: carol's board shows it unavailable, never its value.
    const closed = await inst.api.patch(
      `/unit_nodes/${temperature}`,
      { visibility: "Private" },
      world.bob.token,
    );
    expect(closed.status).toBe(200);
    const refreshed = await press(CAROL_CHAT, `br:${board}`);
    const text = String(refreshed.calls.find((c) => c.method === "editMessageText")?.payload.text);
    expect(text).toMatch(/Temp: unavailable/);
    expect(text).not.toMatch(/21\.5/);
    const rest = await inst.api.get(`/boards/${board}`, carol.token);
    expect(rest.body.items[0]).toMatchObject({ available: false, last_value: null, type: null });
    // Another user's board is not there for bob's chat.
    expect((await press(BOB_CHAT, `br:${board}`)).answer.text).toBe("board not found");
    expect((await press(BOB_CHAT, pump[0]?.callback_data ?? "")).answer.text).toBe(
      "board not found",
    );
    // A button from before the board was edited sets nothing, though a new item sits there.
    const other = { unit_node_uuid: unit.nodeUuid("Input", "input/pepeunit"), values: ["x", "y"] };
    const edited = await inst.api.patch(`/boards/${board}`, { items: [other, other] }, carol.token);
    expect(edited.status).toBe(200);
    expect((await press(CAROL_CHAT, pump[1]?.callback_data ?? "")).answer.text).toMatch(
      /board has changed/,
    );
  });

  it("sends fired alerts to the linked chat; /alerts lists and switches the user's own rules", async () => {
    if (!(await inst.api.get("/users/me", world.bob.token)).body.telegram_linked) {
      await link(world.bob.token, BOB_CHAT);
    }
    const temperature = unit.nodeUuid("Output", "temperature");
    const made = await inst.api.post(
      "/alerts",
      { unit_node_uuid: temperature, max: 30, min_interval_s: 0 },
      world.bob.token,
    );
    expect(made.status).toBe(201);
    const rule = made.body.uuid as string;

    // A crossing value reaches Bob's chat as the alert's own message.
    let from = fake.calls.length;
    await dev.publishAsync(unit.topic("Output", "temperature"), "31.5", { qos: 1 });
    const alert = await fake.waitFor(
      (c) =>
        c.method === "sendMessage" &&
        c.payload.chat_id === BOB_CHAT &&
        String(c.payload.text).includes("31.5"),
      from,
    );
    expect(String(alert.payload.text)).toMatch(/temperature/);

    from = fake.calls.length;
    fake.sendText(BOB_CHAT, "/alerts");
    const list = await fake.waitFor(
      (c) => c.method === "sendMessage" && c.payload.chat_id === BOB_CHAT,
      from,
    );
    const shown = buttons(list.payload);
    expect(shown.map((b) => b.text)).toEqual([
      expect.stringMatching(/^✅ .+ \/ temperature: above 30$/),
    ]);
    // Carol cannot switch Bob's rule; Bob can, and REST sees it.
    expect((await press(CAROL_CHAT, `at:0:${rule}`)).answer.text).toBe("alert rule not found");
    expect((await press(BOB_CHAT, shown[0]?.callback_data ?? "")).answer.text).toBe("alert off");
    expect((await inst.api.get(`/alerts/${rule}`, world.bob.token)).body.enabled).toBe(false);
  });

  it("keeps messages while the Bot API is down or rate-limits, and delivers them after", async () => {
    const telegram = inst.deps.telegram;
    if (!telegram) throw new Error("the bot is not running");
    fake.rateLimit("sendMessage", 1);
    const from = fake.calls.length;
    expect(await telegram.notify(world.bob.uuid, "limited")).toBe(true);
    const limited = await fake.waitFor(
      (c) => c.payload.text === "limited" && c.answered === 200,
      from,
    );
    const first = fake.calls.slice(from).find((c) => c.payload.text === "limited");
    expect(first?.answered).toBe(429);
    expect(limited.payload.chat_id).toBe(BOB_CHAT);

    fake.setDown(true);
    expect(await telegram.notify(world.bob.uuid, "while down")).toBe(true);
    expect(await telegram.notify(carol.uuid, "to carol")).toBe(true);
    expect(await telegram.notify(world.admin.uuid, "nobody")).toBe(false);
    // The instance answers as usual meanwhile.
    expect((await inst.api.get("/healthz")).status).toBe(200);
    expect((await inst.api.get("/boards", carol.token)).body.count).toBe(1);
    const beforeUp = fake.calls.length;
    fake.setDown(false);
    const a = await fake.waitFor(
      (c) => c.payload.text === "while down" && c.answered === 200,
      beforeUp,
    );
    const b = await fake.waitFor(
      (c) => c.payload.text === "to carol" && c.answered === 200,
      beforeUp,
    );
    expect(fake.calls.indexOf(a)).toBeLessThan(fake.calls.indexOf(b));
    expect(b.payload.chat_id).toBe(CAROL_CHAT);

    // A 429 on getUpdates: polling waits its retry_after and goes on.
    const before429 = fake.calls.length;
    fake.rateLimit("getUpdates", 1);
    // Ends a poll already waiting (the 429 then falls on the next one).
    fake.sendText(BOB_CHAT, "/help");
    const limitedPoll = await fake.waitFor(
      (c) => c.method === "getUpdates" && c.answered === 429,
      before429,
    );
    expect(await ask(BOB_CHAT, "/help")).toMatch(/\/units/);
    expect(fake.calls.indexOf(limitedPoll)).toBeGreaterThanOrEqual(before429);
  });
});
