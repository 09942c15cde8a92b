import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { createFixtureRepo } from "../helpers/git-fixtures.ts";
import { createUser } from "../helpers/instance.ts";
import { createRepo } from "../helpers/repos.ts";
import { createUnit, nodeOf, unitToken } from "../helpers/units.ts";
import { gotoGraph, openPage, screenshot } from "./support/browser.ts";
import { connectUnit } from "./support/mqtt.ts";
import { seedPair } from "./support/seed.ts";
import { useE2e } from "./support/suite.ts";

// The main screens at 1280×800 and 390 px wide, light and dark; saved under
// test/e2e/screenshots/ for a person to look at. The assertions check what a
// picture cannot: no sideways scrolling, labels, keyboard focus, the theme.

async function noHorizontalScroll(page: Page): Promise<boolean> {
  return page.evaluate(() => {
    const fits = (el: Element) => el.scrollWidth <= el.clientWidth + 1;
    const forms = [...document.querySelectorAll("form")];
    return (
      fits(document.documentElement) &&
      forms.every((f) => f.getBoundingClientRect().right <= window.innerWidth + 1 && fits(f))
    );
  });
}

describe("screens", { timeout: 180_000 }, () => {
  let token = "";
  let seeded: Awaited<ReturnType<typeof seedPair>>;
  const ctx = useE2e({}, async ({ inst }) => {
    token = (await createUser(inst.api, "maker")).token;
    seeded = await seedPair(inst.api, token, { prefix: "greenhouse" });
    const lamps = await createRepo(inst.api, token, createFixtureRepo(), {
      name: "lamp-firmware",
      visibility: "Internal",
    });
    const lamp = await createUnit(inst.api, token, lamps.uuid, {
      name: "porch-lamp",
      visibility: "Internal",
    });
    await inst.api.post(
      "/unit_node_edges",
      {
        output_uuid: nodeOf(seeded.sensor, "Output", "output/pepeunit").uuid,
        input_uuid: nodeOf(lamp, "Input", "relay").uuid,
      },
      token,
    );
    // A device reports its state and a value, so the screens show live data.
    const device = await connectUnit(
      inst.mqttUrl,
      await unitToken(inst.api, token, seeded.sensor.uuid),
    );
    await device.publishAsync(
      `localhost:8080/output_base_topic/${seeded.sensor.uuid}/state/pepeunit`,
      JSON.stringify({
        ifconfig: ["192.168.1.40"],
        millis: 5_400_000,
        mem_free: 81_920,
        mem_alloc: 40_960,
        pu_commit_version: seeded.fixture.head(),
      }),
    );
    await device.publishAsync(seeded.output.topic, "22.4");
    await device.endAsync();
    await new Promise((r) => setTimeout(r, 1500));
  });

  it("graph, unit pop-up and admin console at 1280×800 (light)", async () => {
    const { context, page } = await openPage(ctx.browser, ctx.inst.httpUrl, { token });
    try {
      await gotoGraph(page);
      await page.waitForTimeout(600);
      await screenshot(page, "graph");
      expect(await page.evaluate(() => matchMedia("(prefers-color-scheme: dark)").matches)).toBe(
        false,
      );
      await page.goto(`/#/unit/${seeded.sensor.uuid}`);
      await page.getByTestId("panel-unit").waitFor();
      await page.waitForTimeout(600);
      await screenshot(page, "unit-popup");
      await page.goto("/#/admin");
      await page.getByTestId("admin-console").waitFor();
      await page.waitForTimeout(300);
      await screenshot(page, "admin-console");
      expect(await noHorizontalScroll(page)).toBe(true);
    } finally {
      await context.close();
    }
  });

  it("dark theme follows the system", async () => {
    const { context, page } = await openPage(ctx.browser, ctx.inst.httpUrl, {
      token,
      colorScheme: "dark",
    });
    try {
      await gotoGraph(page, `#/variable/${seeded.output.uuid}`);
      await page.waitForTimeout(600);
      const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      expect(bg).toBe("rgb(17, 22, 28)");
      expect(await page.locator(".svelte-flow.dark").count()).toBe(1);
      await screenshot(page, "graph-dark");
    } finally {
      await context.close();
    }
  });

  it("phone width: forms fit without sideways scrolling, keyboard reaches every field with visible focus", async () => {
    const { context, page } = await openPage(ctx.browser, ctx.inst.httpUrl, {
      viewport: { width: 390, height: 844 },
    });
    try {
      await page.goto("/#/register");
      await page.getByTestId("register-form").waitFor();
      expect(await noHorizontalScroll(page)).toBe(true);
      // Tab order reaches the labelled fields, each with a visible focus ring.
      const reached: string[] = [];
      for (let i = 0; i < 12 && reached.length < 4; i++) {
        await page.keyboard.press("Tab");
        const info = await page.evaluate(() => {
          const el = document.activeElement as HTMLElement | null;
          if (el?.tagName !== "INPUT") return null;
          const label = document.querySelector(`label[for="${el.id}"]`)?.textContent?.trim() ?? "";
          return { label, outline: getComputedStyle(el).outlineStyle };
        });
        if (info) {
          expect(info.outline).not.toBe("none");
          reached.push(info.label);
        }
      }
      expect(reached).toEqual(["Login", "E-mail", "Password", "Repeat the password"]);
      await screenshot(page, "phone-register");
    } finally {
      await context.close();
    }
    const phone = await openPage(ctx.browser, ctx.inst.httpUrl, {
      token,
      viewport: { width: 390, height: 844 },
    });
    try {
      await gotoGraph(phone.page);
      await phone.page.waitForTimeout(500);
      await screenshot(phone.page, "phone-graph");
      await phone.page.getByRole("button", { name: "+ Repository" }).click();
      await phone.page.getByTestId("repo-form").waitFor();
      await phone.page.getByLabel("Private remote repository").check();
      expect(await noHorizontalScroll(phone.page)).toBe(true);
      await screenshot(phone.page, "phone-repo-form");
      await phone.page.goto(`/#/unit/${seeded.sensor.uuid}`);
      await phone.page.getByTestId("panel-unit").waitFor();
      await phone.page.getByRole("button", { name: "Edit env" }).click();
      await phone.page.getByTestId("env-form").waitFor();
      expect(await noHorizontalScroll(phone.page)).toBe(true);
      await screenshot(phone.page, "phone-unit-popup");
    } finally {
      await phone.context.close();
    }
  });
});
