import { describe, expect, it } from "vitest";
import { createUser } from "../helpers/instance.ts";
import { unitToken } from "../helpers/units.ts";
import { gotoGraph, openPage, screenshot, watchViolations } from "./support/browser.ts";
import { connectUnit } from "./support/mqtt.ts";
import { seedPair } from "./support/seed.ts";
import { useE2e } from "./support/suite.ts";

// The variable pop-up's History: the pipe's records as a uPlot chart that grows as the
// pipe writes, per-stage errors of a bad config before saving, and a reader's view
// (chart, no editing) at phone width in the dark theme. Also the alerts of the same
// pop-up: a rule made there fires on a published value and rings the header's bell.

const KNOWN = [20.5, 21, 21.25, 22, 21.75, 23, 22.5, 24, 23.5, 25];
const YAML = `active_period: {type: Permanent}
filters: {type_input_value: Number}
processing_policy: {policy_type: NRecords, n_records_count: 100}
`;

describe("variable history", { timeout: 150_000 }, () => {
  let token = "";
  let readerToken = "";
  let seeded: Awaited<ReturnType<typeof seedPair>>;
  const ctx = useE2e({ PEPEUNIT_HISTORY_FLUSH_MS: "100" }, async ({ inst }) => {
    token = (await createUser(inst.api, "maker")).token;
    readerToken = (await createUser(inst.api, "reader")).token;
    seeded = await seedPair(inst.api, token, { prefix: "hist" });
    const raw = (method: string, path: string, body: string, type: string) =>
      fetch(`${inst.httpUrl}/pepeunit/api/v1${path}`, {
        method,
        headers: { "content-type": type, "x-auth-token": token },
        body,
      });
    const uuid = seeded.output.uuid;
    expect(
      (await raw("POST", `/unit_nodes/set_data_pipe_config/${uuid}`, YAML, "application/yaml"))
        .status,
    ).toBe(204);
    expect(
      (await inst.api.patch(`/unit_nodes/${uuid}`, { is_data_pipe_active: true }, token)).status,
    ).toBe(200);
    // Known values over the last 50 minutes (inside the 1 h and 24 h ranges).
    const now = Date.now();
    const csv = [
      "state,state_type,create_datetime",
      ...KNOWN.map(
        (v, i) => `${v},Number,${new Date(now - (KNOWN.length - i) * 5 * 60_000).toISOString()}`,
      ),
    ].join("\n");
    const imported = await raw(
      "POST",
      `/unit_nodes/set_data_pipe_data_csv/${uuid}`,
      csv,
      "text/csv",
    );
    expect(await imported.json()).toEqual({ count: KNOWN.length });
  });

  it("a reader sees the chart without the editing parts, at phone width in the dark theme", async () => {
    const { context, page } = await openPage(ctx.browser, ctx.inst.httpUrl, {
      token: readerToken,
      viewport: { width: 390, height: 844 },
      colorScheme: "dark",
    });
    try {
      await gotoGraph(page, `#/variable/${seeded.output.uuid}`);
      const chart = page.getByTestId("history-chart");
      await expect
        .poll(async () => Number(await chart.getAttribute("data-points")))
        .toBe(KNOWN.length);
      expect(await page.getByTestId("pipe-editor").count()).toBe(0);
      expect(await page.getByRole("button", { name: "Clear data…" }).count()).toBe(0);
      expect(await page.getByRole("button", { name: "Download CSV" }).count()).toBe(1);
      // The chart fits the phone's width (no sideways scrolling).
      const box = await chart.boundingBox();
      expect(box && box.x >= 0 && box.x + box.width <= 390).toBe(true);
      await chart.scrollIntoViewIfNeeded();
      await screenshot(page, "history-phone-dark");
    } finally {
      await context.close();
    }
  });
  it("charts the pipe's records, appends new ones live, and shows a bad config's errors by stage", async () => {
    const device = await connectUnit(
      ctx.inst.mqttUrl,
      await unitToken(ctx.inst.api, token, seeded.sensor.uuid),
    );
    const { context, page } = await openPage(ctx.browser, ctx.inst.httpUrl, { token });
    try {
      // The chart (uPlot and its CSS) works under the server's Content-Security-Policy.
      const violations = await watchViolations(page);
      await gotoGraph(page, `#/variable/${seeded.output.uuid}`);
      const chart = page.getByTestId("history-chart");
      await expect.poll(() => chart.getAttribute("data-points")).toBe(String(KNOWN.length));
      expect(await chart.locator("canvas").count()).toBe(1);
      expect(await chart.getAttribute("data-last")).toBe(String(KNOWN.at(-1)));

      // A value the device publishes goes through the pipe and joins the chart (polling).
      await device.publishAsync(seeded.output.topic, "26.5");
      await expect
        .poll(() => chart.getAttribute("data-points"), { timeout: 15_000 })
        .toBe(String(KNOWN.length + 1));
      expect(await chart.getAttribute("data-last")).toBe("26.5");
      expect(await violations()).toEqual([]);
      await chart.scrollIntoViewIfNeeded();
      await screenshot(page, "history-desktop-chart");

      // The editor holds the stored config; a bad one is refused with its stages named.
      const editor = page.getByTestId("pipe-editor");
      await expect.poll(() => editor.getByLabel("Config (YAML)").inputValue()).toBe(YAML);
      expect(await editor.getByTestId("pipe-active").isChecked()).toBe(true);
      await editor
        .getByLabel("Config (YAML)")
        .fill(
          "active_period: {type: Someday}\nfilters: {type_input_value: Number, max_rate: -1}\nprocessing_policy: {policy_type: NRecords, n_records_count: 5000}\n",
        );
      await editor.getByRole("button", { name: "Save" }).click();
      const errors = editor.getByTestId("pipe-errors");
      await errors.waitFor();
      expect(
        await errors
          .locator("[data-stage]")
          .evaluateAll((els) => els.map((e) => e.getAttribute("data-stage"))),
      ).toEqual(["ActivePeriod", "Filters", "ProcessingPolicy"]);
      expect(await errors.locator('[data-stage="ProcessingPolicy"]').innerText()).toContain(
        "n_records_count",
      );
      // Nothing was saved.
      const stored = await fetch(
        `${ctx.inst.httpUrl}/pepeunit/api/v1/unit_nodes/get_data_pipe_config/${seeded.output.uuid}`,
        { headers: { "x-auth-token": token } },
      );
      expect(await stored.text()).toBe(YAML);
      await screenshot(page, "history-desktop-errors");

      // Clearing asks first; then an upload replaces the (empty) history. (Hours apart: the
      // 24 h chart asks for 500 points, so records closer than ~3 min share one.)
      await page.getByRole("button", { name: "Clear data…" }).click();
      await page.getByRole("button", { name: "Delete history" }).click();
      await page.getByTestId("history-empty").waitFor();
      await page.getByTestId("history-upload").setInputFiles({
        name: "history.csv",
        mimeType: "text/csv",
        buffer: Buffer.from(
          `state,state_type,create_datetime\n1,Number,${new Date(Date.now() - 3 * 3_600_000).toISOString()}\n2,Number,${new Date(Date.now() - 3_600_000).toISOString()}\n`,
        ),
      });
      await expect.poll(() => chart.getAttribute("data-points")).toBe("2");
      expect(await chart.getAttribute("data-last")).toBe("2");
      // The editing parts at phone width in the dark theme (same page: no reload).
      await page.setViewportSize({ width: 390, height: 844 });
      await page.emulateMedia({ colorScheme: "dark" });
      await page.getByTestId("pipe-editor").scrollIntoViewIfNeeded();
      await screenshot(page, "history-editor-phone-dark");
    } finally {
      await context.close();
      await device.endAsync();
    }
  });
  it("a rule made in the pop-up rings the bell on a crossing value; notification switches persist", async () => {
    const device = await connectUnit(
      ctx.inst.mqttUrl,
      await unitToken(ctx.inst.api, token, seeded.sensor.uuid),
    );
    // The refusals below are on purpose: Chromium logs each 422 the page fetches.
    const { context, page } = await openPage(ctx.browser, ctx.inst.httpUrl, {
      token,
      allowConsole: [/status of 422/],
    });
    // The bell hears of a new alert over the live channel: its fallback poll is pushed out of
    // the test (30 s by default), so only the push can ring it in time.
    await context.addInitScript(() => localStorage.setItem("pepeunit.alerts.pollMs", "600000"));
    try {
      await gotoGraph(page, `#/variable/${seeded.output.uuid}`);
      const bell = page.getByTestId("alert-bell");
      expect(await bell.getAttribute("aria-label")).toBe("Alerts: none unread");
      const rules = page.getByTestId("alert-rules");
      await rules.getByRole("button", { name: "+ Alert" }).click();
      // Limits the server refuses: its detail shows at the field it names.
      await rules.getByLabel("Alert below").fill("40");
      await rules.getByLabel("Alert above").fill("30");
      await rules.getByRole("button", { name: "Add alert" }).click();
      const minError = rules.locator("#alert-new-min-error");
      await expect.poll(() => minError.innerText()).toBe("min must not be greater than max");
      expect(await rules.getByLabel("Alert below").getAttribute("aria-invalid")).toBe("true");
      await rules.getByTestId("alert-rule-form").scrollIntoViewIfNeeded();
      await screenshot(page, "alerts-rule-editor");
      await rules.getByLabel("Alert below").fill("");
      await rules.getByRole("button", { name: "Add alert" }).click();
      const rule = rules.getByTestId("alert-rule");
      await expect.poll(() => rule.innerText()).toContain("Alert above 30");
      const stored = await ctx.inst.api.get("/alerts", token);
      expect(stored.body.alerts).toMatchObject([
        { unit_node_uuid: seeded.output.uuid, min: null, max: 30, enabled: true },
      ]);

      // A value above the limit: the bell counts it without a reload.
      await device.publishAsync(seeded.output.topic, "31.5");
      await expect.poll(() => bell.getAttribute("data-unread")).toBe("1");
      expect(await bell.getAttribute("aria-label")).toBe("Alerts: 1 unread");
      await bell.click();
      const event = page.getByTestId("alert-event");
      await expect.poll(() => event.count()).toBe(1);
      expect(await event.innerText()).toContain(
        "hist-sensor / temperature: 31.5 is above the maximum 30",
      );
      expect(await event.getAttribute("data-read")).toBe("false");
      await screenshot(page, "alerts-bell-list");
      await page.emulateMedia({ colorScheme: "dark" });
      await screenshot(page, "alerts-bell-list-dark");
      // At phone width the list stays on the screen.
      await page.setViewportSize({ width: 390, height: 844 });
      const box = await page.getByTestId("alert-list").boundingBox();
      expect(box && box.x >= 0 && box.x + box.width <= 390).toBe(true);
      await screenshot(page, "alerts-bell-list-phone-dark");
      await page.setViewportSize({ width: 1280, height: 800 });
      await page.getByRole("button", { name: "Mark all read" }).click();
      await expect.poll(() => bell.getAttribute("data-unread")).toBe("0");
      expect(await page.getByTestId("alert-unread").count()).toBe(0);
      expect(await event.getAttribute("data-read")).toBe("true");
      // Escape closes the list and gives the focus back to the bell.
      await page.keyboard.press("Escape");
      expect(await page.getByTestId("alert-list").count()).toBe(0);
      expect(await bell.evaluate((el) => el === document.activeElement)).toBe(true);
      await rules.getByRole("button", { name: /^Edit/ }).click();
      await rules.getByTestId("alert-rule-form").scrollIntoViewIfNeeded();
      await screenshot(page, "alerts-rule-editor-dark");
      await page.emulateMedia({ colorScheme: "light" });
      // Edit (the focus is in the form, Enter saves), switch off, delete (pressed twice).
      expect(await page.evaluate(() => document.activeElement?.id)).toMatch(/^alert-.*-min$/);
      await rules.getByLabel("Alert above").fill("35");
      await rules.getByLabel("Alert above").press("Enter");
      await expect.poll(() => rule.innerText()).toContain("Alert above 35");
      await rule.getByRole("checkbox", { name: "On" }).uncheck();
      await expect.poll(() => rule.getAttribute("data-enabled")).toBe("false");
      expect((await ctx.inst.api.get("/alerts", token)).body.alerts).toMatchObject([
        { max: 35, enabled: false },
      ]);
      await rule.getByRole("button", { name: /^Delete/ }).click();
      await rule.getByRole("button", { name: /^Press again to delete/ }).click();
      await expect.poll(() => rule.count()).toBe(0);
      expect((await ctx.inst.api.get("/alerts", token)).body.count).toBe(0);
      expect((await ctx.inst.api.get("/alerts/events", token)).body).toMatchObject({
        count: 1,
        unread: 0,
      });

      // Notification switches on the account page: saved as flipped, kept after a reload;
      // e-mail without an SMTP server is refused at its switch.
      await page.goto("/#/account");
      const offline = page.getByLabel("One of my units went offline");
      await expect.poll(() => offline.isChecked()).toBe(true);
      await offline.uncheck();
      const email = page.getByLabel("Also send every alert by e-mail");
      // A click, not check(): the refusal may untick the box before check() could see it ticked.
      await email.click();
      await expect
        .poll(() => page.locator("#notify-email-error").innerText())
        .toContain("no SMTP server");
      expect(await email.isChecked()).toBe(false);
      await page.reload();
      await page.getByTestId("notification-switches").getByRole("checkbox").first().waitFor();
      expect(await page.getByLabel("One of my units went offline").isChecked()).toBe(false);
      expect(await page.getByLabel("An update of one of my units failed").isChecked()).toBe(true);
      expect(await page.getByLabel("Also send every alert by e-mail").isChecked()).toBe(false);
      await screenshot(page, "alerts-notifications");
    } finally {
      await context.close();
      await device.endAsync();
    }
  });
});
