import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Locator } from "playwright-core";
import { afterAll, describe, expect, it } from "vitest";
import { createFixtureRepo } from "../helpers/git-fixtures.ts";
import { createUser } from "../helpers/instance.ts";
import { createRepo } from "../helpers/repos.ts";
import { createUnit } from "../helpers/units.ts";
import { flowNode, gotoGraph, openPage, refused } from "./support/browser.ts";
import { useE2e } from "./support/suite.ts";

// The admin console: registration mode, users (verify / block / unblock /
// delete), every entity of the instance, a place for federation settings, and backups.
// Its settings and user actions are driven at phone size (390×844): every
// action must be on screen without sideways scrolling.

const PHONE = { width: 390, height: 844 };

/** Clicks an action after checking it is within the phone's width, nothing scrolled sideways. */
async function tap(button: Locator): Promise<void> {
  await button.waitFor();
  const onScreen = await button.evaluate((el) => {
    const r = el.getBoundingClientRect();
    let sideways = 0;
    for (let p: Element | null = el; p; p = p.parentElement) sideways += p.scrollLeft;
    return sideways === 0 && r.left >= 0 && r.right <= innerWidth;
  });
  expect(onScreen, `${await button.innerText()} is off screen`).toBe(true);
  await button.click();
}

describe("admin console", { timeout: 150_000 }, () => {
  let admin = { uuid: "", token: "" };
  let bob = { uuid: "", token: "" };
  let privateRepo = "";
  let privateUnit = "";
  let backupDir = "";
  afterAll(async () => {
    if (backupDir) await rm(backupDir, { recursive: true, force: true });
  });
  const ctx = useE2e(
    async () => {
      backupDir = await mkdtemp(path.join(tmpdir(), "pepeunit-e2e-backups-"));
      return { PEPEUNIT_BACKUP_DIR: backupDir };
    },
    async ({ inst }) => {
      admin = await createUser(inst.api, "root");
      bob = await createUser(inst.api, "bob");
      const repo = await createRepo(inst.api, bob.token, createFixtureRepo(), {
        name: "bobs-secret-repo",
        visibility: "Private",
      });
      privateRepo = repo.uuid;
      privateUnit = (
        await createUnit(inst.api, bob.token, repo.uuid, {
          name: "bobs-secret-unit",
          visibility: "Private",
        })
      ).uuid;
    },
  );

  it("changes the registration mode and explains a refused one", async () => {
    const { context, page } = await openPage(ctx.browser, ctx.inst.httpUrl, {
      token: admin.token,
      viewport: PHONE,
      allowConsole: [refused(422, "/admin/settings")],
    });
    try {
      await page.goto("/#/admin");
      const form = page.getByTestId("settings-form");
      await form.getByLabel(/Manual approval/).check();
      await tap(form.getByRole("button", { name: "Save settings" }));
      await expect
        .poll(
          async () =>
            (await ctx.inst.api.get("/admin/settings", admin.token)).body.registration_mode,
        )
        .toBe("ManualApproval");
      // E-mail verification needs SMTP, which this instance lacks: the server's reason is shown.
      expect(await form.innerText()).toContain("none is configured");
      await form.getByLabel(/E-mail verification/).check();
      await tap(form.getByRole("button", { name: "Save settings" }));
      await expect.poll(() => form.getByRole("alert").innerText()).toContain("SMTP");
      expect((await ctx.inst.api.get("/admin/settings", admin.token)).body.registration_mode).toBe(
        "ManualApproval",
      );
      // Backups: none yet; "Back up now" writes one and the section shows its time, size, result.
      const backups = page.getByTestId("admin-backups");
      await expect
        .poll(() => backups.getByTestId("last-backup").innerText())
        .toBe("No backup yet.");
      await tap(backups.getByRole("button", { name: "Back up now" }));
      await expect
        .poll(() => backups.getByTestId("last-backup").innerText())
        .toMatch(/^Last backup: .+ · [\d.]+ [KM]i?B · ok$/);
      // Processes: one, holding every once-only role.
      const nodes = page.getByTestId("admin-cluster").getByTestId("cluster-node");
      await expect.poll(() => nodes.count()).toBe(1);
      const row = await nodes.innerText();
      expect(row).toContain(`${ctx.inst.deps.config.nodeName} (this one)`);
      expect(row).toContain("sync");
      expect(row).toContain("ota");
    } finally {
      await context.close();
    }
  });

  it("verifies, blocks, unblocks and deletes users", async () => {
    await ctx.inst.api.patch(
      "/admin/settings",
      { registration_mode: "ManualApproval" },
      admin.token,
    );
    const reg = await ctx.inst.api.post("/users", {
      login: "newbie",
      email: "newbie@example.test",
      password: "pw-newbie-secret",
    });
    expect(reg.body.status).toBe("PendingApproval");
    const { context, page } = await openPage(ctx.browser, ctx.inst.httpUrl, {
      token: admin.token,
      viewport: PHONE,
    });
    try {
      await page.goto("/#/admin");
      const row = page.locator('[data-testid="users-table"] tr[data-login="newbie"]');
      await expect.poll(() => row.getByTestId("user-status").innerText()).toBe("PendingApproval");
      await tap(row.getByRole("button", { name: "Verify" }));
      await expect.poll(() => row.getByTestId("user-status").innerText()).toBe("Active");
      await tap(row.getByRole("button", { name: "Block" }));
      await expect.poll(() => row.getByTestId("user-status").innerText()).toBe("Blocked");
      expect(
        (await ctx.inst.api.post("/users/auth", { login: "newbie", password: "pw-newbie-secret" }))
          .status,
      ).toBe(403);
      await tap(row.getByRole("button", { name: "Unblock" }));
      await tap(row.getByRole("button", { name: "Reset link" }));
      await expect.poll(() => page.getByTestId("reset-link").innerText()).toContain("newbie");
      await tap(page.getByTestId("reset-link").getByRole("button", { name: "Done" }));
      await expect.poll(() => row.getByTestId("user-status").innerText()).toBe("Active");
      expect(
        (await ctx.inst.api.post("/users/auth", { login: "newbie", password: "pw-newbie-secret" }))
          .status,
      ).toBe(200);
      // The admin's own row has no block/delete.
      const own = page.locator('[data-testid="users-table"] tr[data-login="root"]');
      expect(await own.getByRole("button").count()).toBe(0);
      await tap(row.getByRole("button", { name: "Delete" }));
      await tap(row.getByRole("button", { name: /Really delete newbie/ }));
      await expect.poll(() => row.count()).toBe(0);
      expect((await ctx.inst.api.get(`/users/${reg.body.uuid}`, admin.token)).status).toBe(404);
    } finally {
      await context.close();
    }
  });

  it("sees every entity, private ones of other users included, and a federation section", async () => {
    const { context, page } = await openPage(ctx.browser, ctx.inst.httpUrl, { token: admin.token });
    try {
      await page.goto("/#/admin");
      await expect
        .poll(() => page.getByTestId("admin-repos").innerText())
        .toContain("bobs-secret-repo");
      expect(await page.getByTestId("admin-units").innerText()).toContain("bobs-secret-unit");
      expect(await page.getByTestId("admin-federation").innerText()).toContain("Federation");
      await page.getByTestId("admin-units").getByRole("link", { name: "bobs-secret-unit" }).click();
      await page.getByTestId("panel-unit").waitFor();
      expect(await flowNode(page, privateUnit).count()).toBe(1);
      expect(await flowNode(page, privateRepo).count()).toBe(1);
      // As manager of everything, the admin gets the unit's controls.
      expect(
        await page.getByTestId("panel-unit").getByRole("button", { name: "Edit env" }).count(),
      ).toBe(1);
    } finally {
      await context.close();
    }
    // A plain user has neither the console nor bob's private nodes.
    await ctx.inst.api.patch("/admin/settings", { registration_mode: "Open" }, admin.token);
    const other = await createUser(ctx.inst.api, "carl");
    const { context: c2, page: p2 } = await openPage(ctx.browser, ctx.inst.httpUrl, {
      token: other.token,
    });
    try {
      await gotoGraph(p2);
      expect(await p2.getByRole("link", { name: "Admin", exact: true }).count()).toBe(0);
      expect(await flowNode(p2, privateUnit).count()).toBe(0);
      await p2.goto("/#/admin");
      await expect.poll(() => p2.locator("main").innerText()).toContain("for the instance admin");
    } finally {
      await c2.close();
    }
  });
});
