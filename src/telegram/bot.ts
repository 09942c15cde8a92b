import type { Bot, Context } from "grammy";
import type { InlineKeyboardButton, InlineKeyboardMarkup } from "grammy/types";
import { canManage } from "../access/visibility.ts";
import { resolveItems } from "../boards/boards.service.ts";
import { findOwnBoard, listOwnBoards } from "../boards/boards.store.ts";
import { COMMAND_NAMES, type CommandName } from "../commands/commands.service.ts";
import { runCommand } from "../commands/run-command.ts";
import { HttpError, loggableError } from "../http/errors.ts";
import type { AppDeps } from "../http/types.ts";
import { listUnitLogs } from "../unit-logs/unit-logs.store.ts";
import { setStateInput } from "../unit-nodes/set-input.ts";
import { loadManagedUnit, loadVisibleUnit } from "../units/units.access.ts";
import { serializeUnits } from "../units/units.service.ts";
import { listUnits } from "../units/units.store.ts";
import type { AlertsPort } from "./alerts-port.ts";
import type { OutgoingMessage } from "./outbox.ts";
import {
  type ChatUser,
  consumeLinkCode,
  createDownloadToken,
  linkChat,
  userOfChat,
} from "./telegram.store.ts";

// What the bot answers. Every read and write goes through the same access functions
// as the REST routes (loadVisibleUnit, serializeUnits, runCommand, setStateInput…),
// with the linked user as the principal: the bot never decides visibility itself.

export type BotDeps = {
  deps: Omit<AppDeps, "telegram">;
  send(msg: OutgoingMessage): void;
  alerts(): AlertsPort | undefined;
  /** Values seen in the last full minute on these units. */
  valuesPerMinute(unitUuids: string[]): number;
  version: string;
};

const PAGE = 8;
// Callback data is at most 64 bytes: a uuid is 36 of them.
const MAX_SEARCH_BYTES = 40;

const HELP = [
  "Pepeunit bot",
  "/start <code> — link this chat to your Pepeunit account (get the code in the web UI or from POST /users/me/telegram)",
  "/help — this text",
  "/info — units online, values per minute, version",
  "/units [search] — your visible units: state, variables, logs, commands",
  "/boards — your boards: read-outs and buttons",
  "/alerts — your alert rules, on and off",
].join("\n");

type Keyboard = InlineKeyboardButton[][];
const button = (text: string, data: string): InlineKeyboardButton => ({
  text,
  callback_data: data,
});
const markup = (rows: Keyboard): InlineKeyboardMarkup => ({ inline_keyboard: rows });

/** What a refusal says: the REST detail for our errors, nothing internal for others. */
function refusal(err: unknown): string {
  if (err instanceof HttpError) return err.message;
  return "something went wrong; try again later";
}

const when = (d: Date | null | undefined) =>
  d ? `${d.toISOString().replace("T", " ").slice(0, 19)} UTC` : "never";

export function installHandlers(bot: Bot, b: BotDeps): void {
  const { deps } = b;
  const db = deps.database.db;
  const reply = (ctx: Context, text: string, rows?: Keyboard) => {
    if (!ctx.chat) return;
    b.send({ chatId: ctx.chat.id, text, ...(rows ? { markup: markup(rows) } : {}) });
  };

  bot.command("start", async (ctx) => {
    if (ctx.chat.type !== "private") return reply(ctx, "Link me in a private chat.");
    const code = ctx.match.trim();
    if (!code) {
      const user = await userOfChat(db, ctx.chat.id);
      return reply(
        ctx,
        user
          ? `This chat is linked to ${user.login}. /help lists what I can do.`
          : "This chat is not linked. In Pepeunit, ask for a Telegram link code and send /start <code> here (the link opens me with it).",
      );
    }
    const userUuid = await consumeLinkCode(db, code);
    if (!userUuid) {
      return reply(
        ctx,
        "This code is wrong, used or expired (codes last 10 minutes). Ask Pepeunit for a new one.",
      );
    }
    await linkChat(db, userUuid, ctx.chat.id);
    const user = await userOfChat(db, ctx.chat.id);
    reply(ctx, `Linked to ${user?.login ?? "your account"}. /help lists what I can do.`);
  });

  bot.command("help", (ctx) => reply(ctx, HELP));

  // Everything else is for linked chats only; others get no answer at all.
  const users = new WeakMap<Context, ChatUser>();
  bot.use(async (ctx, next) => {
    const user = ctx.chat ? await userOfChat(db, ctx.chat.id) : undefined;
    if (!user) {
      if (ctx.callbackQuery) await ctx.answerCallbackQuery().catch(() => {});
      return;
    }
    users.set(ctx, user);
    await next();
  });
  const userOf = (ctx: Context): ChatUser => {
    const user = users.get(ctx);
    if (!user) throw new Error("no linked user");
    return user;
  };

  bot.command("info", async (ctx) => {
    const user = userOf(ctx);
    const { count, rows } = await listUnits(db, user, { limit: 10_000, offset: 0 });
    const online = rows.filter((u) => deps.broker.isOnline(u.uuid)).length;
    const perMinute = b.valuesPerMinute(rows.map((u) => u.uuid));
    reply(
      ctx,
      [
        `Units online: ${online} / ${count}`,
        `Values per minute: ${perMinute}`,
        `Pepeunit ${b.version} at ${deps.config.baseUrl}`,
      ].join("\n"),
    );
  });

  async function unitList(user: ChatUser, offset: number, search: string) {
    const { count, rows } = await listUnits(db, user, {
      search: search || undefined,
      orderByName: "asc",
      limit: PAGE,
      offset,
    });
    const rowsKb: Keyboard = rows.map((u) => [
      button(`${deps.broker.isOnline(u.uuid) ? "🟢" : "⚪"} ${u.name}`, `uc:${u.uuid}`),
    ]);
    const nav: InlineKeyboardButton[] = [];
    if (offset > 0) nav.push(button("‹ prev", `ul:${Math.max(0, offset - PAGE)}:${search}`));
    if (offset + PAGE < count) nav.push(button("next ›", `ul:${offset + PAGE}:${search}`));
    if (nav.length) rowsKb.push(nav);
    const text = count
      ? `Units${search ? ` matching "${search}"` : ""}: ${offset + 1}–${offset + rows.length} of ${count}`
      : `No units${search ? ` matching "${search}"` : ""}.`;
    return { text, rows: rowsKb };
  }

  bot.command("units", async (ctx) => {
    let search = ctx.match.trim();
    while (Buffer.byteLength(search) > MAX_SEARCH_BYTES) search = search.slice(0, -1);
    const list = await unitList(userOf(ctx), 0, search);
    reply(ctx, list.text, list.rows);
  });

  async function unitCard(user: ChatUser, unitUuid: string) {
    const unit = await loadVisibleUnit(db, user, unitUuid);
    const status = unit.updateStatus
      ? `${unit.updateStatus}${unit.updateStatus === "Error" && unit.updateError ? `: ${unit.updateError}` : ""}`
      : "none";
    const text = [
      unit.name,
      `Online: ${deps.broker.isOnline(unit.uuid) ? "yes" : "no"}`,
      `Last seen: ${when(unit.lastSeenAt)}`,
      `Commit: ${unit.commit.slice(0, 12)}${unit.currentCommit && unit.currentCommit !== unit.commit ? ` (device runs ${unit.currentCommit.slice(0, 12)})` : ""}`,
      `Update status: ${status}`,
    ].join("\n");
    const rows: Keyboard = [[button("Variables", `uv:${unit.uuid}`)]];
    if (canManage(user, unit.creatorUuid)) {
      rows[0]?.push(button("Logs", `ug:${unit.uuid}`));
      rows.push(COMMAND_NAMES.map((c) => button(c, `ux:${c}:${unit.uuid}`)));
      rows.push([button("Download env.json and firmware", `ud:${unit.uuid}`)]);
    }
    return { text, rows };
  }

  async function boardMessage(user: ChatUser, boardUuid: string) {
    const board = await findOwnBoard(db, user.uuid, boardUuid);
    if (!board) throw new HttpError(404, "board not found");
    const resolved = await resolveItems(db, user, board.items);
    const lines = [`📋 ${board.name}`];
    const rows: Keyboard = [];
    for (const [i, { item, node, unitName }] of resolved.entries()) {
      if (!node) {
        lines.push(`${item.label ?? "item"}: unavailable`);
        continue;
      }
      const label = item.label ?? `${unitName}/${node.topicName}`;
      lines.push(
        `${node.type === "Input" ? "⇢" : "•"} ${label}: ${node.lastValue ?? "—"}${node.lastValueAt ? ` (${when(node.lastValueAt)})` : ""}`,
      );
      if (node.type === "Input" && item.values.length) {
        rows.push(
          // The variable's first characters too: a press on a message older than an edit
          // of the board must not set whichever item now sits at that place.
          item.values.map((v, j) =>
            button(`${label}: ${v}`, `bs:${board.uuid}:${i}:${j}:${node.uuid.slice(0, 8)}`),
          ),
        );
      }
    }
    rows.push([button("↻", `br:${board.uuid}`)]);
    return { text: lines.join("\n"), rows };
  }

  bot.command("boards", async (ctx) => {
    const { count, rows } = await listOwnBoards(db, userOf(ctx).uuid, { limit: 50, offset: 0 });
    if (!count) return reply(ctx, "No boards yet: make one in the web UI or with POST /boards.");
    reply(
      ctx,
      `Boards: ${count}`,
      rows.map((bd) => [button(bd.name, `bo:${bd.uuid}`)]),
    );
  });

  async function alertsMessage(user: ChatUser) {
    const port = b.alerts();
    if (!port) return { text: "Alerts are not available on this instance.", rows: [] };
    const rules = await port.list(user);
    if (!rules.length) return { text: "No alert rules yet.", rows: [] };
    return {
      text: "Alert rules (press to switch on or off):",
      rows: rules.map((r) => [
        button(`${r.enabled ? "✅" : "⏸"} ${r.label}`, `at:${r.enabled ? 0 : 1}:${r.uuid}`),
      ]),
    };
  }

  bot.command("alerts", async (ctx) => {
    const m = await alertsMessage(userOf(ctx));
    reply(ctx, m.text, m.rows.length ? m.rows : undefined);
  });

  bot.on("callback_query:data", async (ctx) => {
    const user = userOf(ctx);
    const [kind = "", ...rest] = ctx.callbackQuery.data.split(":");
    const edit = async (m: { text: string; rows: Keyboard }) => {
      await ctx.editMessageText(m.text, { reply_markup: markup(m.rows) }).catch((err: unknown) => {
        // Pressing ↻ with nothing changed is "message is not modified": not a failure.
        if (!/not modified/.test(String(err))) throw err;
      });
    };
    let notice: string | undefined;
    try {
      switch (kind) {
        case "ul": {
          const [offset = "0", ...search] = rest;
          await edit(await unitList(user, Number(offset) || 0, search.join(":")));
          break;
        }
        case "uc":
          await edit(await unitCard(user, rest[0] ?? ""));
          break;
        case "uv": {
          const unit = await loadVisibleUnit(db, user, rest[0] ?? "");
          const [out] = await serializeUnits(deps, user, [unit]);
          const lines = (out?.unit_nodes ?? []).map(
            (n) =>
              `${n.type === "Input" ? "⇢" : "•"} ${n.topic_name}: ${n.last_value ?? "—"}${n.last_value_datetime ? ` (${when(new Date(n.last_value_datetime))})` : ""}`,
          );
          reply(
            ctx,
            [`${unit.name} — variables`, ...(lines.length ? lines : ["none visible"])].join("\n"),
          );
          break;
        }
        case "ug": {
          const unit = await loadManagedUnit(db, user, rest[0] ?? "");
          await deps.broker.flush();
          const { rows } = await listUnitLogs(db, { unitUuid: unit.uuid, limit: 10, offset: 0 });
          const lines = rows.map((r) => `${when(r.createdAt)} ${r.level} ${r.text}`);
          reply(
            ctx,
            [`${unit.name} — last logs`, ...(lines.length ? lines : ["no entries"])].join("\n"),
          );
          break;
        }
        case "ux": {
          const [command = "", unitUuid = ""] = rest;
          if (!(COMMAND_NAMES as string[]).includes(command)) break;
          await runCommand(deps, user, unitUuid, command as CommandName);
          notice = `${command} sent`;
          break;
        }
        case "ud": {
          const unit = await loadManagedUnit(db, user, rest[0] ?? "");
          const link = async (k: "env" | "firmware") =>
            `${deps.config.baseUrl}/pepeunit/api/v1/telegram/downloads/${await createDownloadToken(db, user.uuid, unit.uuid, k)}`;
          reply(
            ctx,
            [
              `${unit.name} — one-time download links, valid 10 minutes:`,
              `env.json: ${await link("env")}`,
              `firmware (.tar.gz): ${await link("firmware")}`,
            ].join("\n"),
          );
          break;
        }
        case "bo": {
          const m = await boardMessage(user, rest[0] ?? "");
          reply(ctx, m.text, m.rows);
          break;
        }
        case "br":
          await edit(await boardMessage(user, rest[0] ?? ""));
          break;
        case "bs": {
          const [boardUuid = "", i = "", j = "", tag = "-"] = rest;
          const board = await findOwnBoard(db, user.uuid, boardUuid);
          if (!board) throw new HttpError(404, "board not found");
          const item = board.items[Number(i)];
          const value = item?.values[Number(j)];
          if (!item || value === undefined || !item.unitNodeUuid.startsWith(tag)) {
            throw new HttpError(409, "this board has changed: press ↻ and try again");
          }
          await setStateInput(deps, user, item.unitNodeUuid, value);
          notice = `${item.label ?? "input"} set to ${value}`;
          await edit(await boardMessage(user, boardUuid));
          break;
        }
        case "at": {
          const [on = "", ruleUuid = ""] = rest;
          const port = b.alerts();
          if (!port) throw new HttpError(503, "alerts are not available on this instance");
          if (!(await port.setEnabled(user, ruleUuid, on === "1"))) {
            throw new HttpError(404, "alert rule not found");
          }
          notice = on === "1" ? "alert on" : "alert off";
          await edit(await alertsMessage(user));
          break;
        }
      }
      await ctx.answerCallbackQuery(notice ? { text: notice } : undefined);
    } catch (err) {
      if (!(err instanceof HttpError))
        deps.log.warn({ error: loggableError(err) }, "telegram: callback failed");
      await ctx.answerCallbackQuery({ text: refusal(err), show_alert: true }).catch(() => {});
    }
  });
}
