import { describe, expect, it } from "vitest";
import { createFixtureRepo } from "../helpers/git-fixtures.ts";
import { createUser } from "../helpers/instance.ts";
import { createRepo } from "../helpers/repos.ts";
import { createUnit, nodeOf } from "../helpers/units.ts";
import {
  centreOf,
  dragBetween,
  edgeMidpoint,
  flowNode,
  focusIn,
  gotoGraph,
  openPage,
  refused,
  tabTo,
} from "./support/browser.ts";
import { useE2e } from "./support/suite.ts";

// Data links: drag output → input creates one, so does the keyboard (L on an
// output); refusals are explained on the input; a selected link goes with the
// Delete key (undoable) or from its pop-up, offered only to who may remove it.

const handleOf = (uuid: string) => `.svelte-flow__node[data-id="${uuid}"] .svelte-flow__handle`;

describe("data links on the graph", { timeout: 150_000 }, () => {
  let maker = { uuid: "", token: "" };
  let alice = { uuid: "", token: "" };
  let sensor: any;
  let relay: any;
  let foreign: any;
  const ctx = useE2e({}, async ({ inst }) => {
    await createUser(inst.api, "root");
    maker = await createUser(inst.api, "maker");
    alice = await createUser(inst.api, "alice");
    const repo = await createRepo(inst.api, maker.token, createFixtureRepo(), { name: "kit" });
    sensor = await createUnit(inst.api, maker.token, repo.uuid, { name: "sensor" });
    relay = await createUnit(inst.api, maker.token, repo.uuid, { name: "relay" });
    const aliceRepo = await createRepo(inst.api, alice.token, createFixtureRepo(), {
      name: "alice-kit",
    });
    foreign = await createUnit(inst.api, alice.token, aliceRepo.uuid, { name: "alice-lamp" });
  });

  const links = async (inputUuid: string) =>
    (await ctx.inst.api.get(`/unit_node_edges?input_uuid=${inputUuid}`, maker.token)).body
      .unit_node_edges as Array<{ uuid: string; output_uuid: string }>;

  it("dragging an output handle onto an input handle links them", async () => {
    const output = nodeOf(sensor, "Output", "temperature");
    const input = nodeOf(relay, "Input", "relay");
    const { context, page } = await openPage(ctx.browser, ctx.inst.httpUrl, { token: maker.token });
    try {
      await gotoGraph(page);
      await dragBetween(
        page,
        await centreOf(page, handleOf(output.uuid)),
        await centreOf(page, handleOf(input.uuid)),
      );
      await expect.poll(() => links(input.uuid)).toHaveLength(1);
      const [edge] = await links(input.uuid);
      expect(edge?.output_uuid).toBe(output.uuid);
      await expect
        .poll(() => page.locator(`.svelte-flow__edge[data-id="${edge?.uuid}"]`).count())
        .toBe(1);
      // The relay's schema now lists the sensor's topic: the link reached the device contract.
      const schema = (
        await ctx.inst.api.get(`/units/get_current_schema/${relay.uuid}`, maker.token)
      ).body;
      expect(schema.input_topic.relay).toContain(output.topic);
    } finally {
      await context.close();
    }
  });

  it("a refused link (input not rewritable) is explained on the input", async () => {
    const output = nodeOf(sensor, "Output", "output/pepeunit");
    const input = nodeOf(foreign, "Input", "relay");
    expect(input.is_rewritable_input).toBe(false);
    const { context, page } = await openPage(ctx.browser, ctx.inst.httpUrl, {
      token: maker.token,
      allowConsole: [refused(403, "/unit_node_edges")],
    });
    try {
      await gotoGraph(page);
      await dragBetween(
        page,
        await centreOf(page, handleOf(output.uuid)),
        await centreOf(page, handleOf(input.uuid)),
      );
      const error = flowNode(page, input.uuid).getByTestId("node-error");
      await expect.poll(() => error.innerText()).toContain("not rewritable");
      expect(await links(input.uuid)).toHaveLength(0);
      expect(await page.locator(".svelte-flow__edge.data-edge").count()).toBe(1);
    } finally {
      await context.close();
    }
  });

  it("a selected link is removed with the Delete key, another from its pop-up", async () => {
    const input = nodeOf(relay, "Input", "input/pepeunit");
    const out1 = nodeOf(sensor, "Output", "temperature");
    const out2 = nodeOf(sensor, "Output", "output/pepeunit");
    const e1 = (
      await ctx.inst.api.post(
        "/unit_node_edges",
        { output_uuid: out1.uuid, input_uuid: input.uuid },
        maker.token,
      )
    ).body;
    const e2 = (
      await ctx.inst.api.post(
        "/unit_node_edges",
        { output_uuid: out2.uuid, input_uuid: input.uuid },
        maker.token,
      )
    ).body;
    const { context, page } = await openPage(ctx.browser, ctx.inst.httpUrl, { token: maker.token });
    try {
      await gotoGraph(page);
      const m1 = await edgeMidpoint(page, e1.uuid);
      await page.mouse.click(m1.x, m1.y);
      await page.getByTestId("panel-edge").waitFor();
      expect(
        await page.locator(`.svelte-flow__edge[data-id="${e1.uuid}"]`).getAttribute("class"),
      ).toContain("selected");
      await page
        .locator('[data-testid="graph-canvas"] .svelte-flow__pane')
        .focus()
        .catch(() => {});
      await page.keyboard.press("Delete");
      await expect
        .poll(async () => (await links(input.uuid)).map((l) => l.uuid))
        .toEqual([e2.uuid]);
      await expect
        .poll(() => page.locator(`.svelte-flow__edge[data-id="${e1.uuid}"]`).count())
        .toBe(0);
      // Its pop-up closed with it.
      await expect.poll(() => page.getByTestId("panel-edge").count()).toBe(0);
      // No confirmation, but an Undo (also Ctrl+Z) that draws the link again.
      const undo = page.getByTestId("notice").getByRole("button", { name: "Undo" });
      expect(await undo.count()).toBe(1);
      await page.keyboard.press("Control+z");
      await expect
        .poll(async () => (await links(input.uuid)).map((l) => l.output_uuid).sort())
        .toEqual([out1.uuid, out2.uuid].sort());
      await expect.poll(() => page.locator(".svelte-flow__edge.data-edge").count()).toBe(3);

      await page.goto(`/#/edge/${e2.uuid}`);
      const panel = page.getByTestId("panel-edge");
      await panel.waitFor();
      expect(await panel.innerText()).toContain("sensor · output/pepeunit");
      await panel.getByRole("button", { name: "Remove link" }).click();
      await expect
        .poll(async () => (await links(input.uuid)).map((l) => l.output_uuid))
        .toEqual([out1.uuid]);
      await expect
        .poll(() => page.locator(`.svelte-flow__edge[data-id="${e2.uuid}"]`).count())
        .toBe(0);
    } finally {
      await context.close();
    }
  });

  it("only who may remove a link is offered Remove; Rewritable agrees with Set value", async () => {
    const output = nodeOf(sensor, "Output", "temperature");
    const input = nodeOf(relay, "Input", "relay");
    const [edge] = await links(input.uuid);
    expect(edge?.output_uuid).toBe(output.uuid);
    // Alice sees maker's public link but may not remove it (nor write into the input).
    const viewer = await openPage(ctx.browser, ctx.inst.httpUrl, { token: alice.token });
    try {
      await gotoGraph(viewer.page, `#/edge/${edge?.uuid}`);
      const panel = viewer.page.getByTestId("panel-edge");
      await expect.poll(() => panel.innerText()).toContain("relay · relay");
      expect(await panel.getByRole("button", { name: "Remove link" }).count()).toBe(0);
      await viewer.page.goto(`/#/variable/${input.uuid}`);
      const variable = viewer.page.getByTestId("panel-variable");
      await expect.poll(() => variable.innerText()).toContain("from sensor · temperature");
      expect(await variable.getByRole("button", { name: "Remove link" }).count()).toBe(0);
      expect(await variable.getByTestId("set-value-form").count()).toBe(0);
      expect(await variable.getByTestId("rewritable").innerText()).toMatch(/^no: only/);
    } finally {
      await viewer.context.close();
    }
    // Its creator may set the non-rewritable input: the fact says so instead of a bare "no".
    const { context, page } = await openPage(ctx.browser, ctx.inst.httpUrl, { token: maker.token });
    try {
      await gotoGraph(page, `#/variable/${input.uuid}`);
      const variable = page.getByTestId("panel-variable");
      await variable.getByTestId("set-value-form").waitFor();
      expect(await variable.getByTestId("rewritable").innerText()).toContain("you: its creator");
      expect(await variable.getByRole("button", { name: "Remove link" }).count()).toBe(1);
    } finally {
      await context.close();
    }
  });

  it("keyboard only: creates a repo, a unit and a link (L on an output)", async () => {
    const fixture = createFixtureRepo();
    const { context, page } = await openPage(ctx.browser, ctx.inst.httpUrl, { token: maker.token });
    const activeId = () => page.evaluate(() => document.activeElement?.id ?? "");
    try {
      await gotoGraph(page);
      await tabTo(page, "[role=toolbar] button.primary");
      expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("+ Repository");
      await page.keyboard.press("Enter");
      // A form opens with focus in its first field; Enter in a field submits it.
      await expect.poll(activeId).toBe("repo-name");
      await page.keyboard.type("kbd-repo");
      await page.keyboard.press("Tab");
      expect(await activeId()).toBe("repo-url");
      await page.keyboard.type(fixture.url);
      await page.keyboard.press("Enter");
      const panel = page.getByTestId("panel-repo");
      await panel.waitFor();
      const repoUuid = /#\/repo\/([0-9a-f-]{36})/.exec(page.url())?.[1] as string;
      // The first sync re-reads the branch list; pick only once it has settled.
      await expect.poll(() => panel.getByTestId("panel-sync-status").innerText()).toBe("Synced");
      await expect.poll(() => panel.locator("#repo-default-branch option").count()).toBe(2);
      await tabTo(page, "#repo-default-branch");
      await page.keyboard.press("ArrowDown");
      await expect.poll(() => page.locator("#repo-default-branch").inputValue()).toBe("main");
      await tabTo(page, '[data-testid="default-branch-form"] button[type=submit]');
      const patched = page.waitForResponse(
        (r) => r.request().method() === "PATCH" && r.url().endsWith(`/repos/${repoUuid}`),
        { timeout: 10_000 },
      );
      await page.keyboard.press("Enter");
      const res = await patched;
      expect(res.status(), await res.text()).toBe(200);
      await expect
        .poll(async () => (await ctx.inst.api.get(`/repos/${repoUuid}`, maker.token)).body)
        .toMatchObject({ default_branch: "main" });

      // Back from the pop-up into the graph, to the repo's "+".
      await tabTo(page, `[aria-label="New unit from kbd-repo"]`, true);
      await page.keyboard.press("Enter");
      await expect.poll(activeId).toBe("unit-name");
      await page.keyboard.type("kbd-unit");
      await page.keyboard.press("Enter");
      await page.getByTestId("panel-unit").waitFor();
      const unitUuid = /#\/unit\/([0-9a-f-]{36})/.exec(page.url())?.[1] as string;
      const unit = (await ctx.inst.api.get(`/units/${unitUuid}`, maker.token)).body;
      const out = nodeOf(unit, "Output", "temperature");
      const into = nodeOf(unit, "Input", "relay");
      // Escape closes the pop-up and gives focus back to the "+" that opened it.
      await page.keyboard.press("Escape");
      await expect.poll(() => page.getByTestId("panel-unit").count()).toBe(0);
      await expect
        .poll(() => page.evaluate(() => document.activeElement?.getAttribute("aria-label")))
        .toBe("New unit from kbd-repo");

      await tabTo(page, `.svelte-flow__node[data-id="${out.uuid}"]`);
      await page.keyboard.press("l");
      const picker = page.getByTestId("link-picker");
      await picker.waitFor();
      expect(await activeId()).toBe("link-picker-search");
      // Only inputs maker may write into: alice's non-rewritable lamp is not offered.
      await page.keyboard.type("alice-lamp");
      await expect.poll(() => picker.getByRole("option").count()).toBe(0);
      await page.keyboard.press("Control+a");
      await page.keyboard.type("kbd-unit relay");
      await expect
        .poll(() => picker.getByRole("option").allInnerTexts())
        .toEqual(["kbd-unit · relay"]);
      await page.keyboard.press("Enter");
      await expect.poll(() => picker.count()).toBe(0);
      await expect
        .poll(async () => (await links(into.uuid)).map((l) => l.output_uuid))
        .toEqual([out.uuid]);
      // Focus is back on the output, for the next link.
      expect(await focusIn(page, `.svelte-flow__node[data-id="${out.uuid}"]`)).toBe(true);
    } finally {
      await context.close();
    }
  });
});
