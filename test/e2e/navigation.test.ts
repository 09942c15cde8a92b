import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { createUser } from "../helpers/instance.ts";
import { flowNode, gotoGraph, openPage } from "./support/browser.ts";
import { seedPair } from "./support/seed.ts";
import { useE2e } from "./support/suite.ts";

// Finding things: search, filters (mine / access level / type), zoom to fit,
// deep links that focus a node, and a layout remembered per user.

const transformOf = (page: Page, uuid: string) =>
  page.evaluate(
    (id) =>
      (document.querySelector(`.svelte-flow__node[data-id="${id}"]`) as HTMLElement | null)?.style
        .transform ?? "",
    uuid,
  );

describe("search, filters, focus and layout", { timeout: 150_000 }, () => {
  let maker = { uuid: "", token: "" };
  let alice = { uuid: "", token: "" };
  let mine: Awaited<ReturnType<typeof seedPair>>;
  let theirs: Awaited<ReturnType<typeof seedPair>>;
  const ctx = useE2e({}, async ({ inst }) => {
    await createUser(inst.api, "root");
    maker = await createUser(inst.api, "maker");
    alice = await createUser(inst.api, "alice");
    mine = await seedPair(inst.api, maker.token, { prefix: "mk" });
    theirs = await seedPair(inst.api, alice.token, { prefix: "al", visibility: "Internal" });
  });

  it("search narrows the graph and Enter focuses the first match", async () => {
    const { context, page } = await openPage(ctx.browser, ctx.inst.httpUrl, { token: maker.token });
    try {
      await gotoGraph(page);
      await page.getByLabel("Search the graph").fill("mk-relay");
      await expect.poll(() => flowNode(page, mine.sensor.uuid).isVisible()).toBe(false);
      expect(await flowNode(page, mine.relay.uuid).isVisible()).toBe(true);
      expect(await flowNode(page, mine.input.uuid).isVisible()).toBe(true);
      expect(await flowNode(page, theirs.relay.uuid).isVisible()).toBe(false);
      await page.getByLabel("Search the graph").press("Enter");
      await expect.poll(() => page.url()).toContain(`#/unit/${mine.relay.uuid}`);
      await page.getByTestId("panel-unit").waitFor();
      // A variable's topic name finds it (and keeps its unit around it).
      await page.getByLabel("Search the graph").fill("temperature");
      // Only nodes in view are rendered: bring every match into view first.
      await page.getByRole("button", { name: "Zoom to fit" }).click();
      await expect.poll(() => flowNode(page, mine.output.uuid).isVisible()).toBe(true);
      // (the zoom animates: wait for the unit to come into view and render)
      await expect.poll(() => flowNode(page, mine.sensor.uuid).isVisible()).toBe(true);
      expect(await flowNode(page, mine.input.uuid).isVisible()).toBe(false);
    } finally {
      await context.close();
    }
  });

  it("filters by mine, access level and type", async () => {
    const { context, page } = await openPage(ctx.browser, ctx.inst.httpUrl, { token: maker.token });
    try {
      await gotoGraph(page);
      expect(await flowNode(page, theirs.sensor.uuid).isVisible()).toBe(true);
      await page.getByRole("button", { name: "Filters" }).click();
      await page.getByTestId("filter-mine").check();
      await expect.poll(() => flowNode(page, theirs.sensor.uuid).isVisible()).toBe(false);
      expect(await flowNode(page, mine.sensor.uuid).isVisible()).toBe(true);
      await page.getByTestId("filter-mine").uncheck();
      await page.getByTestId("filter-Internal").uncheck();
      await expect.poll(() => flowNode(page, theirs.repo.uuid).isVisible()).toBe(false);
      expect(await flowNode(page, mine.repo.uuid).isVisible()).toBe(true);
      await page.getByTestId("filter-Internal").check();
      await page.getByTestId("filter-output").uncheck();
      await expect.poll(() => flowNode(page, mine.output.uuid).isVisible()).toBe(false);
      expect(await flowNode(page, mine.input.uuid).isVisible()).toBe(true);
      // A link is drawn only while both its ends are shown.
      expect(
        await page.locator(`.svelte-flow__edge[data-id="${mine.edge.uuid}"]`).isVisible(),
      ).toBe(false);
      await page.getByTestId("filter-output").check();
      await expect
        .poll(() => page.locator(`.svelte-flow__edge[data-id="${mine.edge.uuid}"]`).isVisible())
        .toBe(true);
    } finally {
      await context.close();
    }
  });

  it("a deep link focuses its node; zoom to fit brings everything back into view", async () => {
    const { context, page } = await openPage(ctx.browser, ctx.inst.httpUrl, { token: maker.token });
    try {
      await gotoGraph(page, `#/unit/${theirs.relay.uuid}`);
      await page.getByTestId("panel-unit").waitFor();
      const node = flowNode(page, theirs.relay.uuid);
      await expect.poll(async () => (await node.getAttribute("class")) ?? "").toContain("selected");
      const canvas = (await page.getByTestId("graph-canvas").boundingBox()) as {
        x: number;
        y: number;
        width: number;
        height: number;
      };
      await expect
        .poll(async () => {
          const b = await node.boundingBox();
          return b
            ? Math.abs(b.x + b.width / 2 - (canvas.x + canvas.width / 2)) < 40 &&
                Math.abs(b.y + b.height / 2 - (canvas.y + canvas.height / 2)) < 40
            : false;
        })
        .toBe(true);
      const inView = async (uuid: string) => {
        const b = await flowNode(page, uuid).boundingBox();
        return (
          !!b &&
          b.x >= canvas.x - 1 &&
          b.y >= canvas.y - 1 &&
          b.x + b.width <= canvas.x + canvas.width + 1 &&
          b.y + b.height <= canvas.y + canvas.height + 1
        );
      };
      expect(await inView(mine.repo.uuid)).toBe(false);
      await page.getByRole("button", { name: "Zoom to fit" }).click();
      for (const uuid of [
        mine.repo.uuid,
        theirs.repo.uuid,
        mine.sensor.uuid,
        theirs.relay.uuid,
        mine.output.uuid,
      ]) {
        await expect.poll(() => inView(uuid)).toBe(true);
      }
    } finally {
      await context.close();
    }
  });

  it("remembers the layout per user across reloads", async () => {
    const { context, page } = await openPage(ctx.browser, ctx.inst.httpUrl, { token: maker.token });
    try {
      await gotoGraph(page);
      const before = await transformOf(page, mine.sensor.uuid);
      const box = (await flowNode(page, mine.sensor.uuid).locator(".gnode-kind").boundingBox()) as {
        x: number;
        y: number;
      };
      await page.mouse.move(box.x + 5, box.y + 5);
      await page.mouse.down();
      for (let i = 1; i <= 10; i++) await page.mouse.move(box.x + 5 + i * 12, box.y + 5 + i * 9);
      await page.mouse.up();
      const moved = await transformOf(page, mine.sensor.uuid);
      expect(moved).not.toBe(before);
      await page.reload();
      await page.locator('[data-testid="graph-canvas"][data-ready="true"]').waitFor();
      await expect.poll(() => transformOf(page, mine.sensor.uuid)).toBe(moved);

      // Another user's graph keeps its own (automatic) layout.
      const other = await openPage(ctx.browser, ctx.inst.httpUrl, { token: alice.token });
      try {
        await gotoGraph(other.page);
        await expect.poll(() => transformOf(other.page, mine.sensor.uuid)).toBe(before);
      } finally {
        await other.context.close();
      }

      // Reset layout places it automatically again.
      await page.getByRole("button", { name: "Filters" }).click();
      await page.getByRole("button", { name: "Reset layout" }).click();
      await expect.poll(() => transformOf(page, mine.sensor.uuid)).toBe(before);
    } finally {
      await context.close();
    }
  });
});
