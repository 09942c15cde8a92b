import { eq } from "drizzle-orm";
import type { MqttClient } from "mqtt";
import type { Locator } from "playwright-core";
import { describe, expect, it } from "vitest";
import { units } from "../../src/db/schema.ts";
import { createUser } from "../helpers/instance.ts";
import { createUnit, unitToken } from "../helpers/units.ts";
import { flowNode, gotoGraph, openPage, refused, screenshot } from "./support/browser.ts";
import { connectUnit } from "./support/mqtt.ts";
import { seedPair } from "./support/seed.ts";
import { useE2e } from "./support/suite.ts";

// Output and input nodes show their latest value live: the browser follows
// the variables' topics over MQTT-over-WebSocket (/mqtt) with the user's token.
// Entity state (online, links, units coming and going) reaches every open session
// over the live channel (GET /live) without a reload.

/**
 * Publishes numbered values until `shown` reads one: the browser's subscriptions are in
 * place shortly after it connects, and a value published before that is not seen.
 */
async function publishUntilShown(device: MqttClient, topic: string, shown: Locator) {
  let n = 0;
  await expect
    .poll(
      async () => {
        n++;
        await device.publishAsync(topic, `21.${n}`);
        return shown.innerText();
      },
      { timeout: 10_000, interval: 300 },
    )
    .toMatch(/^21\.\d+$/);
}

describe("live values", { timeout: 120_000 }, () => {
  let token = "";
  let watcher = { uuid: "", token: "" };
  let seeded: Awaited<ReturnType<typeof seedPair>>;
  let paths: Record<string, unknown> = {};
  const ctx = useE2e({}, async ({ inst }) => {
    token = (await createUser(inst.api, "maker")).token;
    watcher = await createUser(inst.api, "watcher");
    seeded = await seedPair(inst.api, token, { prefix: "live" });
    paths = (await inst.api.get("/pepeunit/api/v1/openapi.json")).body.paths;
  });

  /** The relay unit connected and subscribed to its input: what it receives, as it arrives. */
  async function relayListening() {
    const relay = await connectUnit(
      ctx.inst.mqttUrl,
      await unitToken(ctx.inst.api, token, seeded.relay.uuid),
    );
    const received: string[] = [];
    relay.on("message", (topic, payload) => {
      if (topic === seeded.input.topic) received.push(payload.toString());
    });
    await relay.subscribeAsync(seeded.input.topic);
    return { relay, received };
  }

  it("a value a device publishes appears on its output node and the linked input, without reload", async () => {
    const device = await connectUnit(
      ctx.inst.mqttUrl,
      await unitToken(ctx.inst.api, token, seeded.sensor.uuid),
    );
    const { context, page } = await openPage(ctx.browser, ctx.inst.httpUrl, { token });
    try {
      await gotoGraph(page, `#/variable/${seeded.output.uuid}`);
      await expect
        .poll(() => page.getByTestId("live-status").getAttribute("data-status"))
        .toBe("live");
      const outValue = flowNode(page, seeded.output.uuid).getByTestId("value");
      expect(await outValue.innerText()).toBe("—");
      await publishUntilShown(device, seeded.output.topic, outValue);
      await device.publishAsync(seeded.output.topic, "23.75");
      await expect.poll(() => outValue.innerText()).toBe("23.75");
      expect(await page.getByTestId("panel-value").innerText()).toBe("23.75");
      // The linked input shows what its device receives through the link.
      await expect
        .poll(() => flowNode(page, seeded.input.uuid).getByTestId("value").innerText())
        .toBe("23.75");
      // The same page, never reloaded: navigation entries did not grow.
      expect(await page.evaluate(() => performance.getEntriesByType("navigation").length)).toBe(1);
    } finally {
      await context.close();
      await device.endAsync();
    }
  });

  it("an input pop-up sets the value when the server offers it (and shows it live)", async () => {
    const hasSetInput = "/unit_nodes/set_state_input/{uuid}" in paths;
    const { relay, received } = await relayListening();
    const { context, page } = await openPage(ctx.browser, ctx.inst.httpUrl, { token });
    try {
      await gotoGraph(page, `#/variable/${seeded.input.uuid}`);
      const panel = page.getByTestId("panel-variable");
      await panel.waitFor();
      expect(await panel.getByTestId("set-value-form").count()).toBe(hasSetInput ? 1 : 0);
      if (!hasSetInput) return;
      await panel.getByLabel("Set value").fill("ON");
      await panel.getByRole("button", { name: "Send" }).click();
      await expect
        .poll(() => flowNode(page, seeded.input.uuid).getByTestId("value").innerText())
        .toBe("ON");
      await expect.poll(() => received).toContain("ON");
    } finally {
      await context.close();
      await relay.endAsync();
    }
  });

  it("a board: read-outs update live, a button sets the input, and it is renamed, trimmed and deleted", async () => {
    const gone = await createUnit(ctx.inst.api, token, seeded.repo.uuid, { name: "board-gone" });
    const device = await connectUnit(
      ctx.inst.mqttUrl,
      await unitToken(ctx.inst.api, token, seeded.sensor.uuid),
    );
    const { relay, received } = await relayListening();
    const { context, page } = await openPage(ctx.browser, ctx.inst.httpUrl, {
      token,
      // Saving a board whose variable has gone is refused (provoked below).
      allowConsole: [refused(422, "/boards/")],
    });
    const narrow = await openPage(ctx.browser, ctx.inst.httpUrl, {
      token,
      viewport: { width: 390, height: 844 },
      colorScheme: "dark",
    });
    try {
      await gotoGraph(page);
      await page
        .getByRole("navigation", { name: "Main" })
        .getByRole("link", { name: "Boards" })
        .click();
      await page.getByTestId("boards-empty").waitFor();
      // A name is asked for before anything is sent.
      await page.getByRole("button", { name: "Create board" }).click();
      expect(await page.getByTestId("field-error").innerText()).toMatch(/name/i);
      await page.getByLabel("Board name").fill("Greenhouse");
      await page.getByRole("button", { name: "Create board" }).click();
      const editor = page.getByTestId("board-editor");
      await editor.waitFor();
      const boardUuid = /#\/boards\/([0-9a-f-]{36})$/.exec(page.url())?.[1] ?? "";
      expect(boardUuid).not.toBe("");

      // Variables come from a search over what the user sees; each is added by a button.
      const search = editor.getByLabel("Add a variable");
      await search.fill("live-sensor temperature");
      await editor.getByRole("button", { name: "Add live-sensor · temperature (Output)" }).click();
      // Adding moves the focus to the new item's label.
      await page.keyboard.type("Temperature");
      await search.fill("live-relay relay");
      await editor.getByRole("button", { name: "Add live-relay · relay (Input)" }).click();
      const drafts = editor.getByTestId("board-draft");
      await drafts.nth(1).getByLabel("Buttons").fill("on, off, on");
      await search.fill("board-gone temperature");
      await editor.getByRole("button", { name: "Add board-gone · temperature (Output)" }).click();
      // Reordered from the keyboard: the last item up one place, its Up button kept focused.
      await editor.getByRole("button", { name: "Move board-gone · temperature up" }).focus();
      await page.keyboard.press("Enter");
      const legends = () => drafts.locator("legend .title").allInnerTexts();
      expect(await legends()).toEqual([
        "live-sensor · temperature",
        "board-gone · temperature",
        "live-relay · relay",
      ]);
      expect(await page.evaluate(() => document.activeElement?.getAttribute("aria-label"))).toBe(
        "Move board-gone · temperature up",
      );
      await screenshot(page, "board-editor");
      await editor.getByRole("button", { name: "Save board" }).click();

      const items = page.getByTestId("board-item");
      await expect.poll(() => items.count()).toBe(3);
      expect(await items.locator("h2").allInnerTexts()).toEqual([
        "Temperature",
        "board-gone · temperature",
        "live-relay · relay",
      ]);
      // Duplicate values make one button each.
      const buttons = page.getByRole("group", { name: "Set live-relay · relay" });
      expect(await buttons.getByRole("button").allInnerTexts()).toEqual(["on", "off"]);

      // The read-out follows the device without a reload.
      const reading = items.nth(0).getByTestId("board-value");
      await publishUntilShown(device, seeded.output.topic, reading);
      await device.publishAsync(seeded.output.topic, "24.5");
      await expect.poll(() => reading.innerText()).toBe("24.5");

      // A button sets the input: the unit's own subscriber receives the value.
      await buttons.getByRole("button", { name: "on" }).click();
      await expect.poll(() => received).toContain("on");
      await expect
        .poll(() => buttons.getByRole("button", { name: "on" }).getAttribute("aria-pressed"))
        .toBe("true");
      expect(await page.getByTestId("board-item-error").count()).toBe(0);
      expect(await page.evaluate(() => performance.getEntriesByType("navigation").length)).toBe(1);

      // A variable that is gone reads "unavailable" at once (the live channel), with no value,
      // and so it does when the board is read again.
      expect((await ctx.inst.api.delete(`/units/${gone.uuid}`, token)).status).toBe(204);
      await expect.poll(() => items.nth(1).getAttribute("data-type")).toBe("unavailable");
      const reread = page.waitForResponse(
        (r) => r.url().endsWith(`/boards/${boardUuid}`) && r.request().method() === "GET",
      );
      await page.getByRole("button", { name: "Refresh the board" }).click();
      expect((await reread).status()).toBe(200);
      expect(await items.nth(1).getAttribute("data-type")).toBe("unavailable");
      expect(await items.nth(1).innerText()).toMatch(/unavailable/);
      expect(await items.nth(1).getByTestId("board-value").count()).toBe(0);
      await screenshot(page, "board");

      // At 390 px in the dark theme: cards, no sideways scroll.
      await narrow.page.goto(`/#/boards/${boardUuid}`);
      await narrow.page.getByTestId("board-item").nth(2).waitFor();
      expect(
        await narrow.page.evaluate(
          () => document.documentElement.scrollWidth <= document.documentElement.clientWidth,
        ),
      ).toBe(true);
      await screenshot(narrow.page, "board-390-dark");
      await narrow.page.getByRole("button", { name: "Edit board" }).click();
      await narrow.page.getByTestId("board-editor").waitFor();
      await narrow.page.getByLabel("Add a variable").fill("live");
      await screenshot(narrow.page, "board-editor-390-dark");

      // Renamed; saving with the gone variable is refused at that item, removing it saves.
      await page.getByRole("button", { name: "Edit board" }).click();
      await editor.getByLabel("Board name").fill("Greenhouse 2");
      await editor.getByRole("button", { name: "Save board" }).click();
      const refusal = drafts.nth(1).getByTestId("board-draft-error");
      await refusal.waitFor();
      expect(await refusal.innerText()).toMatch(/not found/);
      await drafts
        .nth(1)
        .getByRole("button", { name: /^Remove/ })
        .click();
      await editor.getByRole("button", { name: "Save board" }).click();
      await expect.poll(() => page.getByTestId("board-title").innerText()).toBe("Greenhouse 2");
      expect(await items.locator("h2").allInnerTexts()).toEqual([
        "Temperature",
        "live-relay · relay",
      ]);
      const saved = await ctx.inst.api.get(`/boards/${boardUuid}`, token);
      expect(saved.body.items.map((i: { values: string[] }) => i.values)).toEqual([
        [],
        ["on", "off"],
      ]);

      // Deleted after a second press.
      await page.getByTestId("board-delete").click();
      await page.getByTestId("board-delete").click();
      await page.getByTestId("boards-empty").waitFor();
      expect((await ctx.inst.api.get("/boards", token)).body.count).toBe(0);

      // Someone who sees the input but may not set it is told why, at that item.
      const theirs = await ctx.inst.api.post(
        "/boards",
        { name: "Not mine to set", items: [{ unit_node_uuid: seeded.input.uuid, values: ["on"] }] },
        watcher.token,
      );
      expect(theirs.status).toBe(201);
      const other = await openPage(ctx.browser, ctx.inst.httpUrl, {
        token: watcher.token,
        allowConsole: [refused(403, "/unit_nodes/set_state_input/")],
      });
      try {
        await other.page.goto(`/#/boards/${theirs.body.uuid}`);
        await other.page.getByRole("button", { name: "on", exact: true }).click();
        expect(await other.page.getByTestId("board-item-error").innerText()).toMatch(
          /not rewritable/,
        );
      } finally {
        await other.context.close();
      }

      // The variable pop-up's shortcut puts a variable on a new board.
      await gotoGraph(page, `#/variable/${seeded.output.uuid}`);
      await page.getByTestId("add-to-board").click();
      const form = page.getByTestId("add-to-board-form");
      await form.getByLabel("New board's name").fill("Quick look");
      await screenshot(page, "board-add-from-variable");
      await form.getByRole("button", { name: "Add" }).click();
      await form.waitFor({ state: "detached" });
      const quick = (await ctx.inst.api.get("/boards", token)).body.boards;
      expect(
        quick.map((b: { name: string; items: unknown[] }) => [b.name, b.items.length]),
      ).toEqual([["Quick look", 1]]);
      await narrow.page.goto("/#/boards");
      // The list is read again on each visit: the board deleted in the other tab is gone.
      await expect
        .poll(() => narrow.page.getByTestId("board-list").innerText())
        .toMatch(/^Quick look\s+1 item$/);
      await screenshot(narrow.page, "boards-390-dark");
    } finally {
      await context.close();
      await narrow.context.close();
      await device.endAsync();
      await relay.endAsync();
    }
  });

  it("another user's session sees a unit come online, a link go and units come and go, without reload", async () => {
    const a = await openPage(ctx.browser, ctx.inst.httpUrl, { token });
    const b = await openPage(ctx.browser, ctx.inst.httpUrl, { token: watcher.token });
    try {
      await gotoGraph(a.page, `#/unit/${seeded.sensor.uuid}`);
      await gotoGraph(b.page);
      const pages = [a.page, b.page];
      for (const page of pages) {
        await expect
          .poll(() => page.getByTestId("live-status").getAttribute("data-entities"))
          .toBe("live");
        await expect
          .poll(() => flowNode(page, seeded.sensor.uuid).innerText())
          .toMatch(/\boffline\b/i);
      }
      const online = await connectUnit(
        ctx.inst.mqttUrl,
        await unitToken(ctx.inst.api, token, seeded.sensor.uuid),
      );
      try {
        for (const page of pages) {
          await expect
            .poll(() => flowNode(page, seeded.sensor.uuid).innerText(), { timeout: 2_000 })
            .toMatch(/\bonline\b/i);
        }
        await expect
          .poll(() => a.page.getByTestId("panel-unit").innerText(), { timeout: 2_000 })
          .toMatch(/\bonline\b/i);
      } finally {
        await online.endAsync();
      }
      await expect
        .poll(() => flowNode(b.page, seeded.sensor.uuid).innerText(), { timeout: 2_000 })
        .toMatch(/\boffline\b/i);

      // A link removed in one session disappears from the other.
      const edge = (id: string) => b.page.locator(`.svelte-flow__edge[data-id="${id}"]`);
      expect(await edge(seeded.edge.uuid).count()).toBe(1);
      await gotoGraph(a.page, `#/edge/${seeded.edge.uuid}`);
      await a.page.getByRole("button", { name: "Remove link" }).click();
      await expect.poll(() => edge(seeded.edge.uuid).count(), { timeout: 2_000 }).toBe(0);

      // Units coming and going change the other session's nodes and count.
      const count = async () =>
        Number((await b.page.getByTestId("match-count").innerText()).split(" ")[0]);
      const before = await count();
      const extra = await createUnit(ctx.inst.api, token, seeded.repo.uuid, { name: "live-extra" });
      await expect.poll(count, { timeout: 2_000 }).toBe(before + 1 + extra.unit_nodes.length);
      expect(await flowNode(b.page, extra.uuid).count()).toBe(1);
      expect((await ctx.inst.api.delete(`/units/${extra.uuid}`, token)).status).toBe(204);
      await expect.poll(count, { timeout: 2_000 }).toBe(before);
      expect(await flowNode(b.page, extra.uuid).count()).toBe(0);

      // A dropped connection: on reconnecting, the graph is read again, so a change no
      // event announced (written behind the instance's back here) shows too.
      await ctx.inst.deps.database.db
        .update(units)
        .set({ name: "live-renamed" })
        .where(eq(units.uuid, seeded.relay.uuid));
      // The server's read model missed that write as well: the same reset a cluster process
      // makes after missing events (no event reaches the live channel about the unit).
      ctx.inst.deps.events.emit("cluster.events-missed", {});
      ctx.inst.deps.events.emit("user.revoked", { userUuid: watcher.uuid });
      await expect
        .poll(() => flowNode(b.page, seeded.relay.uuid).innerText())
        .toMatch(/live-renamed/i);
      for (const page of pages)
        expect(await page.evaluate(() => performance.getEntriesByType("navigation").length)).toBe(
          1,
        );
    } finally {
      await a.context.close();
      await b.context.close();
    }
  });
});
