import { rmSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { createFixtureRepo } from "../helpers/git-fixtures.ts";
import { createUser } from "../helpers/instance.ts";
import { createRepo } from "../helpers/repos.ts";
import { createUnit } from "../helpers/units.ts";
import { flowNode, gotoGraph, openPage, refused } from "./support/browser.ts";
import { useE2e } from "./support/suite.ts";

// repo_unit from the graph: the create form with every API field, sync status
// and errors on the node, sync now, default branch from the real branches,
// edit, and delete (with the 409 reason while units use it).

describe("repositories on the graph", { timeout: 120_000 }, () => {
  let token = "";
  const ctx = useE2e({}, async ({ inst }) => {
    token = (await createUser(inst.api, "maker")).token;
  });

  it("creates a repo with the form; credentials appear only for a private remote", async () => {
    const fixture = createFixtureRepo();
    fixture.git("branch", "dev");
    const { context, page } = await openPage(ctx.browser, ctx.inst.httpUrl, { token });
    try {
      await gotoGraph(page);
      await page.getByRole("button", { name: "+ Repository" }).click();
      const form = page.getByTestId("repo-form");
      await form.getByRole("button", { name: "Create repository" }).click();
      await expect.poll(() => form.locator("#repo-name-error").innerText()).toContain("name");
      expect(await form.locator("#repo-url-error").innerText()).toContain("clone URL");

      expect(await form.getByTestId("credentials").count()).toBe(0);
      await form.getByLabel("Private remote repository").check();
      expect(await form.getByTestId("credentials").count()).toBe(1);
      await form.getByRole("button", { name: "Create repository" }).click();
      await expect
        .poll(() => form.locator("#repo-username-error").innerText())
        .toContain("username");
      await form.getByLabel("Private remote repository").uncheck();
      expect(await form.getByTestId("credentials").count()).toBe(0);

      await form.getByLabel("Name").fill("thermometer");
      await form.getByLabel("Clone URL").fill(fixture.url);
      await form.getByLabel("Access level").selectOption("Internal");
      await form.getByLabel("Sync with the remote every").fill("2");
      await form.getByLabel("Unit", { exact: true }).selectOption("hours");
      await form.getByLabel("No auto-sync").check();
      await form.getByRole("button", { name: "Create repository" }).click();

      const panel = page.getByTestId("panel-repo");
      await panel.waitFor();
      const uuid = /#\/repo\/([0-9a-f-]{36})/.exec(page.url())?.[1] as string;
      expect(uuid).toBeDefined();
      const saved = (await ctx.inst.api.get(`/repos/${uuid}`, token)).body;
      expect(saved).toMatchObject({
        name: "thermometer",
        url: fixture.url,
        is_private: false,
        visibility: "Internal",
        sync_interval_s: 7200,
        auto_sync: false,
      });
      const node = flowNode(page, uuid);
      await expect.poll(() => node.getByTestId("sync-status").innerText()).toBe("Synced");
      expect(await node.innerText()).toContain("no default branch");
      // No default branch yet: no unit can be created from it.
      expect(await node.getByRole("button", { name: /New unit from/ }).count()).toBe(0);

      // The default branch is chosen from the clone's real branches.
      const select = panel.getByLabel("Default branch");
      // The pop-up re-reads the branches when the live channel says the repo synced: the
      // node may show "Synced" a moment before the pop-up's list has them.
      const branchesOffered = async () => {
        const options = await select.locator("option").allInnerTexts();
        return ["dev", "main"].every((b) => options.some((o) => o.startsWith(b)));
      };
      await expect.poll(branchesOffered).toBe(true);
      await select.selectOption("dev");
      await panel.getByRole("button", { name: "Set" }).click();
      await expect
        .poll(async () => (await ctx.inst.api.get(`/repos/${uuid}`, token)).body.default_branch)
        .toBe("dev");
      await expect.poll(() => node.innerText()).toContain("⎇ dev");
      expect(await node.getByRole("button", { name: /New unit from/ }).count()).toBe(1);
    } finally {
      await context.close();
    }
  });

  it("sync now shows a failing sync and its error on the node and in the pop-up", async () => {
    const fixture = createFixtureRepo();
    const repo = await createRepo(ctx.inst.api, token, fixture, { name: "flaky" });
    const { context, page } = await openPage(ctx.browser, ctx.inst.httpUrl, { token });
    try {
      await gotoGraph(page, `#/repo/${repo.uuid}`);
      const panel = page.getByTestId("panel-repo");
      rmSync(fixture.dir, { recursive: true, force: true });
      await panel.getByRole("button", { name: "Sync now" }).click();
      const node = flowNode(page, repo.uuid);
      await expect.poll(() => node.getByTestId("sync-status").innerText()).toBe("Error");
      expect((await node.getByTestId("sync-error").innerText()).length).toBeGreaterThan(5);
      expect(await panel.getByTestId("panel-sync-error").innerText()).toBe(
        await node.getByTestId("sync-error").innerText(),
      );
    } finally {
      await context.close();
    }
  });

  it("edits a repo and refuses to delete it while units use it, with the reason", async () => {
    const repo = await createRepo(ctx.inst.api, token, createFixtureRepo(), { name: "to-delete" });
    const unit = await createUnit(ctx.inst.api, token, repo.uuid, { name: "blocker" });
    // The delete refused while a unit uses the repo.
    const { context, page } = await openPage(ctx.browser, ctx.inst.httpUrl, {
      token,
      allowConsole: [refused(409, `/repos/${repo.uuid}`)],
    });
    try {
      await gotoGraph(page, `#/repo/${repo.uuid}`);
      const panel = page.getByTestId("panel-repo");
      await panel.getByRole("button", { name: "Edit", exact: true }).click();
      const form = panel.getByTestId("repo-form");
      // The clone URL is shown but cannot change.
      expect(await form.getByLabel("Clone URL").count()).toBe(0);
      await form.getByLabel("Name").fill("renamed-repo");
      await form.getByRole("button", { name: "Save" }).click();
      await expect.poll(() => flowNode(page, repo.uuid).innerText()).toContain("renamed-repo");
      expect((await ctx.inst.api.get(`/repos/${repo.uuid}`, token)).body.name).toBe("renamed-repo");

      await panel.getByRole("button", { name: "Delete", exact: true }).click();
      await panel.getByRole("button", { name: "Really delete" }).click();
      await expect
        .poll(() => panel.getByTestId("repo-action-error").innerText())
        .toContain("units use this repo");
      expect((await ctx.inst.api.get(`/repos/${repo.uuid}`, token)).status).toBe(200);

      expect((await ctx.inst.api.delete(`/units/${unit.uuid}`, token)).status).toBe(204);
      await page.reload();
      await page.getByTestId("panel-repo").waitFor();
      await page
        .getByTestId("panel-repo")
        .getByRole("button", { name: "Delete", exact: true })
        .click();
      await page.getByTestId("panel-repo").getByRole("button", { name: "Really delete" }).click();
      await expect.poll(() => flowNode(page, repo.uuid).count()).toBe(0);
      expect((await ctx.inst.api.get(`/repos/${repo.uuid}`, token)).status).toBe(404);
    } finally {
      await context.close();
    }
  });
});
