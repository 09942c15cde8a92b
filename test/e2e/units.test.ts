import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { inflateSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import type { SimulatedUnit } from "../../src/simulator/simulated-unit.ts";
import { createFixtureRepo, type FixtureRepo } from "../helpers/git-fixtures.ts";
import { createUser } from "../helpers/instance.ts";
import { createRepo } from "../helpers/repos.ts";
import { createUnit, unitToken } from "../helpers/units.ts";
import { startSimulatedUnit } from "../simulator/sim-helpers.ts";
import { centreOf, dragBetween, flowNode, gotoGraph, openPage } from "./support/browser.ts";
import { connectUnit } from "./support/mqtt.ts";
import { useE2e } from "./support/suite.ts";

const run = promisify(execFile);

// Units from a repo node ("+" and Shift-drag), and the unit pop-up.

describe("units on the graph", { timeout: 150_000 }, () => {
  let token = "";
  let fixture: FixtureRepo;
  let repo: { uuid: string; name: string };
  let devHead = "";
  let mainHead = "";
  let paths: Record<string, unknown> = {};
  const ctx = useE2e({}, async ({ inst }) => {
    token = (await createUser(inst.api, "maker")).token;
    fixture = createFixtureRepo();
    mainHead = fixture.head();
    fixture.git("tag", "v1");
    fixture.git("checkout", "-q", "-b", "dev");
    devHead = fixture.commit("dev work", { "dev.py": "print('dev')\n" });
    fixture.git("checkout", "-q", "main");
    repo = await createRepo(inst.api, token, fixture, { name: "firmware" });
    paths = (await inst.api.get("/pepeunit/api/v1/openapi.json")).body.paths;
  });

  it("the + action opens the unit form; following the repo shows its branch and commit read-only", async () => {
    const { context, page } = await openPage(ctx.browser, ctx.inst.httpUrl, { token });
    try {
      await gotoGraph(page);
      await flowNode(page, repo.uuid)
        .getByRole("button", { name: "New unit from firmware" })
        .click();
      const form = page.getByTestId("unit-form");
      await form.waitFor();
      // Focus starts in the first field, not on the heading.
      await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe("unit-name");
      expect(await form.getByTestId("follow-repo").isChecked()).toBe(true);
      await expect
        .poll(() => form.getByTestId("current-commit").inputValue())
        .toBe(mainHead.slice(0, 8));
      expect(await form.getByTestId("current-branch").inputValue()).toBe("main");
      expect(await form.getByTestId("current-branch").getAttribute("readonly")).not.toBeNull();
      await form.getByLabel("Unit name").fill("bad name!");
      await form.getByRole("button", { name: "Create unit" }).click();
      await expect
        .poll(() => form.locator("#unit-name-error").innerText())
        .toContain("letters, digits");
      await form.getByLabel("Unit name").fill("greenhouse");
      await form.getByRole("button", { name: "Create unit" }).click();
      await page.getByTestId("panel-unit").waitFor();
      const uuid = /#\/unit\/([0-9a-f-]{36})/.exec(page.url())?.[1] as string;
      const unit = (await ctx.inst.api.get(`/units/${uuid}`, token)).body;
      expect(unit).toMatchObject({
        name: "greenhouse",
        follow_repo: true,
        branch: "main",
        commit: mainHead,
      });
      // Its variables appear around it: inputs and outputs of the schema.
      for (const v of unit.unit_nodes) expect(await flowNode(page, v.uuid).count()).toBe(1);
      const unitBox = await flowNode(page, uuid).boundingBox();
      const input = unit.unit_nodes.find((n: { type: string }) => n.type === "Input");
      const output = unit.unit_nodes.find((n: { type: string }) => n.type === "Output");
      const inBox = await flowNode(page, input.uuid).boundingBox();
      const outBox = await flowNode(page, output.uuid).boundingBox();
      expect(inBox && unitBox && inBox.x < unitBox.x).toBe(true);
      expect(outBox && unitBox && outBox.x > unitBox.x).toBe(true);
    } finally {
      await context.close();
    }
  });

  it("Shift-drag from the repo to empty canvas opens the form there; pins a branch and a tag", async () => {
    const { context, page } = await openPage(ctx.browser, ctx.inst.httpUrl, { token });
    try {
      await gotoGraph(page);
      // Zoom out so the canvas has empty space around the graph.
      for (let i = 0; i < 3; i++) await page.locator(".svelte-flow__controls-zoomout").click();
      await page.waitForTimeout(300);
      const canvas = (await page.getByTestId("graph-canvas").boundingBox()) as {
        x: number;
        y: number;
      };
      const handle = `.svelte-flow__node[data-id="${repo.uuid}"] .svelte-flow__handle`;
      const from = await centreOf(page, handle);
      // Without Shift nothing is created, but the UI says how.
      await dragBetween(page, from, { x: canvas.x + 50, y: canvas.y + 40 });
      await expect
        .poll(() => page.getByTestId("notice").allInnerTexts())
        .toContainEqual(expect.stringContaining("Hold Shift"));
      expect(await page.getByTestId("unit-form").count()).toBe(0);

      const drop = { x: canvas.x + 160, y: canvas.y + 150 };
      await dragBetween(page, from, drop, { shift: true });
      const form = page.getByTestId("unit-form");
      await form.waitFor();
      await form.getByLabel("Unit name").fill("pinned-unit");
      await form.getByTestId("follow-repo").uncheck();
      // The branch list arrives after the form opens.
      await expect
        .poll(() => form.getByTestId("branch-select").locator("option").allInnerTexts())
        .toEqual(expect.arrayContaining(["main", "dev"]));
      await form.getByTestId("branch-select").selectOption("main");
      await form.getByLabel("Tag", { exact: true }).check();
      await form.getByTestId("tag-select").selectOption("v1");
      await form.getByRole("button", { name: "Create unit" }).click();
      await page.getByTestId("panel-unit").waitFor();
      const uuid = /#\/unit\/([0-9a-f-]{36})/.exec(page.url())?.[1] as string;
      const unit = (await ctx.inst.api.get(`/units/${uuid}`, token)).body;
      expect(unit).toMatchObject({
        name: "pinned-unit",
        follow_repo: false,
        branch: "main",
        tag: "v1",
        commit: mainHead,
      });
      // It appears where it was dropped (centred there), and the view did not jump.
      const box = await flowNode(page, uuid).boundingBox();
      expect(box).not.toBeNull();
      if (box) {
        expect(Math.abs(box.x + box.width / 2 - drop.x)).toBeLessThan(50);
        expect(Math.abs(box.y + box.height / 2 - drop.y)).toBeLessThan(50);
      }
    } finally {
      await context.close();
    }
  });

  it("the unit pop-up shows state, edits env with secrets masked, downloads firmware, changes version and deletes", async () => {
    const unit = await createUnit(ctx.inst.api, token, repo.uuid, { name: "popup-unit" });
    const device = await connectUnit(
      ctx.inst.mqttUrl,
      await unitToken(ctx.inst.api, token, unit.uuid),
    );
    await device.publishAsync(
      `localhost:8080/output_base_topic/${unit.uuid}/state/pepeunit`,
      JSON.stringify({
        ifconfig: ["192.168.7.42", "255.255.255.0"],
        millis: 3_723_000,
        mem_free: 51_200,
        mem_alloc: 20_480,
        pu_commit_version: mainHead,
      }),
    );
    await expect
      .poll(
        async () => (await ctx.inst.api.get(`/units/${unit.uuid}`, token)).body.last_seen_datetime,
        { timeout: 10_000 },
      )
      .not.toBeNull();
    // The device also logs, and listens for commands on its input base topics.
    await device.publishAsync(
      `localhost:8080/output_base_topic/${unit.uuid}/log/pepeunit`,
      JSON.stringify([{ level: "Info", text: "booted fine" }]),
    );
    const commands: string[] = [];
    device.on("message", (_topic, payload) => commands.push(payload.toString()));
    // Exact topics only: the broker refuses wildcards to a unit.
    for (const name of ["update", "log_sync"]) {
      await device.subscribeAsync(`localhost:8080/input_base_topic/${unit.uuid}/${name}/pepeunit`);
    }

    const { context, page } = await openPage(ctx.browser, ctx.inst.httpUrl, { token });
    try {
      await gotoGraph(page, `#/unit/${unit.uuid}`);
      const panel = page.getByTestId("panel-unit");
      const state = panel.getByTestId("unit-state");
      await expect.poll(() => state.innerText()).toContain("192.168.7.42");
      const text = await state.innerText();
      expect(text).toContain("online");
      expect(text).toContain("50.0 KiB free of 70.0 KiB");
      expect(text).toContain("1h 2m");
      expect(text).toContain(mainHead.slice(0, 8));

      // Env: instance secrets are masked and read-only; the person's own keys are editable.
      await panel.getByRole("button", { name: "Edit env" }).click();
      const env = panel.getByTestId("env-form");
      const tokenInput = env.locator("#env-PU_AUTH_TOKEN");
      expect(await tokenInput.getAttribute("type")).toBe("password");
      expect(await tokenInput.getAttribute("readonly")).not.toBeNull();
      await env.getByRole("button", { name: "Show PU_AUTH_TOKEN" }).click();
      expect(await tokenInput.getAttribute("type")).toBe("text");
      expect(await env.locator("#env-PUC_WIFI_PASS").getAttribute("type")).toBe("password");
      await env.locator("#env-PUC_WIFI_SSID").fill("greenhouse-wifi");
      await env.locator("#env-PUC_WIFI_PASS").fill("very-secret");
      await env.getByRole("button", { name: "Save env" }).click();
      await expect
        .poll(
          async () => (await ctx.inst.api.get(`/units/env/${unit.uuid}`, token)).body.PUC_WIFI_SSID,
        )
        .toBe("greenhouse-wifi");
      expect((await ctx.inst.api.get(`/units/env/${unit.uuid}`, token)).body.PUC_WIFI_PASS).toBe(
        "very-secret",
      );

      // Firmware downloads carry the token (a plain link could not).
      const [download] = await Promise.all([
        page.waitForEvent("download"),
        panel.getByRole("button", { name: "Download zip" }).click(),
      ]);
      const zip = readFileSync((await download.path()) as string);
      expect(zip.subarray(0, 2).toString()).toBe("PK");
      // The button was disabled while it worked: focus stayed in the pop-up and is back on it.
      await expect
        .poll(() => page.evaluate(() => document.activeElement?.textContent))
        .toBe("Download zip");
      // Escape still closes the pop-up.
      await page.keyboard.press("Escape");
      await expect.poll(() => panel.count()).toBe(0);
      await page.goto(`/#/unit/${unit.uuid}`);
      await panel.waitFor();
      // People get a .tar.gz that tar opens; devices' zlib form is offered under its own name.
      const [targz] = await Promise.all([
        page.waitForEvent("download"),
        panel.getByRole("button", { name: "Download tar.gz" }).click(),
      ]);
      expect(targz.suggestedFilename()).toBe("popup-unit.tar.gz");
      const listed = await run("tar", ["-tzf", (await targz.path()) as string]);
      expect(listed.stdout).toContain("./env.json");
      const [tgz] = await Promise.all([
        page.waitForEvent("download"),
        panel.getByRole("button", { name: "Download device tgz (zlib)" }).click(),
      ]);
      expect(tgz.suggestedFilename()).toBe("popup-unit.tar.zlib");
      const deviceTar = inflateSync(readFileSync((await tgz.path()) as string));
      expect(deviceTar.includes("./env.json")).toBe(true);

      // Device-plane controls exist exactly when the server has their endpoints.
      const has = (p: string) => p in paths;
      expect(await panel.getByTestId("push-update").count()).toBe(
        has("/units/{uuid}/update") ? 1 : 0,
      );
      expect(await panel.getByTestId("command-form").count()).toBe(
        has("/units/send_command_to_input_base_topic/{uuid}") ? 1 : 0,
      );
      expect(await panel.getByRole("button", { name: "Show logs" }).count()).toBe(
        has("/units/{uuid}/logs") ? 1 : 0,
      );

      if (has("/units/{uuid}/logs")) {
        await expect
          .poll(async () => {
            await panel.getByRole("button", { name: /Show logs|Reload logs/ }).click();
            return panel.getByTestId("unit-logs").innerText();
          })
          .toContain("booted fine");
      }
      if (has("/units/send_command_to_input_base_topic/{uuid}")) {
        await panel.getByLabel("Command", { exact: true }).selectOption("LogSync");
        await panel.getByTestId("command-form").getByRole("button", { name: "Send" }).click();
        await expect.poll(() => commands).toContainEqual('{"COMMAND":"LogSync"}');
      }
      if (has("/units/{uuid}/update")) {
        await panel.getByTestId("push-update").click();
        await expect
          .poll(() => panel.getByTestId("update-status").innerText())
          .toContain("RequestSent");
        expect(commands.some((c) => c.includes('"COMMAND":"Update"'))).toBe(true);
      }

      // Update to a chosen version: pin the dev branch's head.
      const version = panel.getByTestId("unit-version-form");
      await version.getByTestId("follow-repo").uncheck();
      await version.getByTestId("branch-select").selectOption("dev");
      await expect.poll(() => version.getByTestId("commit-select").inputValue()).toBe(devHead);
      await version.getByRole("button", { name: "Save target version" }).click();
      await expect
        .poll(async () => (await ctx.inst.api.get(`/units/${unit.uuid}`, token)).body.commit)
        .toBe(devHead);
      const pinned = (await ctx.inst.api.get(`/units/${unit.uuid}`, token)).body;
      expect(pinned).toMatchObject({ follow_repo: false, branch: "dev" });

      await panel.getByRole("button", { name: "Delete unit" }).click();
      await panel.getByRole("button", { name: "Really delete the unit" }).click();
      await expect.poll(() => flowNode(page, unit.uuid).count()).toBe(0);
      expect((await ctx.inst.api.get(`/units/${unit.uuid}`, token)).status).toBe(404);
    } finally {
      await context.close();
      await device.endAsync();
    }
  });

  // Runs last: it moves main, which every unit following the repo then follows.
  it("an update to a pinned tag ends Success and never shows the old target's error", async () => {
    const api = ctx.inst.api;
    const unit = await createUnit(api, token, repo.uuid, { name: "came-back" });
    // Window 2 × 1 s: the automatic update below fails fast while the unit is offline.
    await api.patch(`/units/env/${unit.uuid}`, { PU_STATE_SEND_INTERVAL: 1 }, token);
    const movedMain = fixture.commit("main moves on", { "main.py": "print('v2')\n" });
    expect((await api.post(`/repos/${repo.uuid}/sync`, undefined, token)).status).toBe(200);
    await expect
      .poll(async () => (await api.get(`/units/${unit.uuid}`, token)).body.update_error, {
        timeout: 20_000,
      })
      .toContain(movedMain);

    const { context, page } = await openPage(ctx.browser, ctx.inst.httpUrl, { token });
    let sim: SimulatedUnit | null = null;
    try {
      await gotoGraph(page, `#/unit/${unit.uuid}`);
      const node = flowNode(page, unit.uuid);
      const panel = page.getByTestId("panel-unit");
      const status = panel.getByTestId("update-status");
      await expect.poll(() => node.innerText()).toContain("update: Error");

      // Pin the tag v1 (main's first commit): the old target's error goes with the old target.
      const version = panel.getByTestId("unit-version-form");
      expect(await version.getByTestId("version-hint").innerText()).toContain("device is not told");
      await version.getByTestId("follow-repo").uncheck();
      await version.getByTestId("branch-select").selectOption("main");
      await version.getByLabel("Tag", { exact: true }).check();
      await version.getByTestId("tag-select").selectOption("v1");
      await version.getByRole("button", { name: "Save target version" }).click();
      await expect.poll(() => panel.getByTestId("unit-state").innerText()).toContain("v1 · ");
      for (const text of [await status.innerText(), await node.innerText()]) {
        expect(text).not.toContain("Error");
        expect(text).not.toContain(movedMain);
      }

      // The device comes back running v1 and is told to update: it already runs the target.
      sim = await startSimulatedUnit(ctx.inst, token, unit.uuid);
      expect(sim.commit).toBe(mainHead);
      await panel.getByRole("button", { name: "Update device now" }).click();
      await expect.poll(() => status.innerText()).toMatch(/RequestSent|Success/);
      await expect
        .poll(async () => (await api.get(`/units/${unit.uuid}`, token)).body.update_status)
        .toBe("Success");
      await page.reload();
      await expect.poll(() => status.innerText()).toBe("Success");
      // The node is drawn from the same reload; it may paint a moment after the pop-up.
      await expect.poll(() => node.innerText()).toContain("update: Success");
      expect(await node.innerText()).not.toContain(movedMain);
      // The simulator, like the clients, sends its clock as millis: no uptime of 20000 days.
      // Its state message is written in the ingest's next batch, maybe after the reload.
      await expect
        .poll(() => panel.getByTestId("unit-state").innerText())
        .toContain("Device clock");
      const state = await panel.getByTestId("unit-state").innerText();
      expect(state).not.toMatch(/\d{3,}d \d+h/);
    } finally {
      await sim?.stop();
      await context.close();
    }
  });
});
