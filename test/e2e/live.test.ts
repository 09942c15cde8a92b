import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { units } from "../../src/db/schema.ts";
import { createUser } from "../helpers/instance.ts";
import { createUnit, unitToken } from "../helpers/units.ts";
import { flowNode, gotoGraph, openPage } from "./support/browser.ts";
import { connectUnit } from "./support/mqtt.ts";
import { seedPair } from "./support/seed.ts";
import { useE2e } from "./support/suite.ts";

// Output and input nodes show their latest value live: the browser follows
// the variables' topics over MQTT-over-WebSocket (/mqtt) with the user's token.
// Entity state (online, links, units coming and going) reaches every open session
// over the live channel (GET /live) without a reload.

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
      // The browser's subscriptions are in place shortly after connecting; publish until seen.
      let n = 0;
      await expect
        .poll(
          async () => {
            n++;
            await device.publishAsync(seeded.output.topic, `21.${n}`);
            return outValue.innerText();
          },
          { timeout: 10_000, interval: 300 },
        )
        .toMatch(/^21\.\d+$/);
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
    const relay = await connectUnit(
      ctx.inst.mqttUrl,
      await unitToken(ctx.inst.api, token, seeded.relay.uuid),
    );
    const received: string[] = [];
    relay.on("message", (topic, payload) => {
      if (topic === seeded.input.topic) received.push(payload.toString());
    });
    await relay.subscribeAsync(seeded.input.topic);
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
