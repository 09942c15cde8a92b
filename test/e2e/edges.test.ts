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
  gotoGraph,
  openPage,
} from "./support/browser.ts";
import { useE2e } from "./support/suite.ts";

// Data links: drag output → input creates one; refusals are explained on the
// input; a selected link goes with the Delete key or from its pop-up.

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
    const { context, page } = await openPage(ctx.browser, ctx.inst.httpUrl, { token: maker.token });
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

      await page.goto(`/#/edge/${e2.uuid}`);
      const panel = page.getByTestId("panel-edge");
      await panel.waitFor();
      expect(await panel.innerText()).toContain("sensor · output/pepeunit");
      await panel.getByRole("button", { name: "Remove link" }).click();
      await expect.poll(() => links(input.uuid)).toHaveLength(0);
      await expect
        .poll(() => page.locator(`.svelte-flow__edge[data-id="${e2.uuid}"]`).count())
        .toBe(0);
    } finally {
      await context.close();
    }
  });
});
