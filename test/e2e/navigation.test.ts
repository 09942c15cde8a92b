import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { createUser } from "../helpers/instance.ts";
import { flowNode, gotoGraph, openPage, viewportOf } from "./support/browser.ts";
import { seedPair } from "./support/seed.ts";
import { useE2e } from "./support/suite.ts";

// Finding things: search, filters (mine / access level / type), zoom to fit,
// deep links that focus a node, and a layout remembered per user. The view
// never jumps: a selection keeps the zoom, a search match is brought out from
// under the minimap, and a phone's zoom to fit stays readable.

type Box = { x: number; y: number; width: number; height: number };
const overlap = (a: Box, b: Box) =>
  a.x < b.x + b.width && a.x + a.width > b.x && a.y < b.y + b.height && a.y + a.height > b.y;
/** Two animation frames: long enough for a started view animation to have moved. */
const frames = (page: Page) =>
  page.evaluate(
    () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r(null)))),
  );
/** The viewport once it has stopped moving (the same over two frames). */
async function settled(page: Page) {
  for (;;) {
    const a = await viewportOf(page);
    await frames(page);
    const b = await viewportOf(page);
    if (a.x === b.x && a.y === b.y && a.zoom === b.zoom) return b;
  }
}

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

  it("selecting keeps the zoom; a search match is brought out from under the minimap", async () => {
    const { context, page } = await openPage(ctx.browser, ctx.inst.httpUrl, { token: maker.token });
    try {
      await gotoGraph(page);
      const before = await settled(page);
      // Every zoom the view passes through from here on.
      await page.evaluate(() => {
        const w = window as unknown as { zooms: string[] };
        w.zooms = [];
        const el = document.querySelector(".svelte-flow__viewport") as HTMLElement;
        new MutationObserver(() =>
          w.zooms.push(/scale\(([-\d.]+)\)/.exec(el.style.transform)?.[1] ?? ""),
        ).observe(el, { attributes: true });
      });
      await flowNode(page, mine.sensor.uuid).getByRole("button", { name: "mk-sensor" }).click();
      await page.getByTestId("panel-unit").waitFor();
      await frames(page);
      const zooms = await page.evaluate(() => (window as unknown as { zooms: string[] }).zooms);
      expect(new Set(zooms.map(Number).filter((z) => z !== before.zoom))).toEqual(new Set());
      expect((await viewportOf(page)).zoom).toBe(before.zoom);
      await page.keyboard.press("Escape");
      await expect.poll(() => page.getByTestId("panel-unit").count()).toBe(0);

      // Drag the empty pane until alice's relay sits under the minimap.
      const minimap = (await page.locator(".svelte-flow__minimap").boundingBox()) as Box;
      const node = flowNode(page, theirs.relay.uuid);
      const box = (await node.boundingBox()) as Box;
      const start = await page.evaluate(() => {
        const c = (
          document.querySelector('[data-testid="graph-canvas"]') as HTMLElement
        ).getBoundingClientRect();
        for (let y = c.top + 8; y < c.bottom; y += 16)
          for (let x = c.left + 8; x < c.right; x += 16)
            if (document.elementFromPoint(x, y)?.classList.contains("svelte-flow__pane"))
              return { x, y };
        throw new Error("no empty pane");
      });
      const dx = minimap.x + minimap.width / 2 - (box.x + box.width / 2);
      const dy = minimap.y + minimap.height / 2 - (box.y + box.height / 2);
      await page.mouse.move(start.x, start.y);
      await page.mouse.down();
      for (let i = 1; i <= 10; i++)
        await page.mouse.move(start.x + (dx * i) / 10, start.y + (dy * i) / 10);
      await page.mouse.up();
      await settled(page);
      expect(overlap((await node.boundingBox()) as Box, minimap)).toBe(true);

      await page.getByLabel("Search the graph").fill("al-relay");
      const canvas = (await page.getByTestId("graph-canvas").boundingBox()) as Box;
      await expect
        .poll(async () => {
          await settled(page);
          const b = (await node.boundingBox()) as Box;
          return (
            !overlap(b, minimap) &&
            b.x >= canvas.x &&
            b.y >= canvas.y &&
            b.x + b.width <= canvas.x + canvas.width &&
            b.y + b.height <= canvas.y + canvas.height
          );
        })
        .toBe(true);
      expect((await viewportOf(page)).zoom).toBe(before.zoom);
    } finally {
      await context.close();
    }
  });

  it("on a phone (390×844) handles are 24 px targets and zoom to fit stays readable", async () => {
    const { context, page } = await openPage(ctx.browser, ctx.inst.httpUrl, {
      token: maker.token,
      viewport: { width: 390, height: 844 },
    });
    try {
      await gotoGraph(page);
      const before = await settled(page);
      const handle = page.locator(".svelte-flow__handle").first();
      const h = (await handle.boundingBox()) as Box;
      expect(Math.min(h.width, h.height)).toBeGreaterThanOrEqual(23.5);
      await page.getByRole("button", { name: "Zoom to fit" }).click();
      // Wait for the fit to have moved the view and come to rest.
      let after = before;
      await expect
        .poll(async () => {
          after = await settled(page);
          return after.x !== before.x || after.y !== before.y || after.zoom !== before.zoom;
        })
        .toBe(true);
      expect(after.zoom).toBeGreaterThanOrEqual(0.45);
      // Some of the graph is in view to start panning from.
      expect(await page.locator(".svelte-flow__node").count()).toBeGreaterThan(0);
    } finally {
      await context.close();
    }
  });
});
