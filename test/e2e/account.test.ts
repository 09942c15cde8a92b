import type { Page } from "playwright-core";
import { afterAll, describe, expect, it } from "vitest";
import { createUser } from "../helpers/instance.ts";
import { type SmtpSink, startSmtpSink } from "../helpers/smtp-sink.ts";
import { openPage, refused } from "./support/browser.ts";
import { useE2e } from "./support/suite.ts";

// Register, the first admin's standard-repositories question, log in / out,
// change password, and what each registration mode tells the person.

async function fillRegister(page: Page, login: string, password = `pw-${login}-secret`) {
  await page.goto("/#/register");
  await page.getByLabel("Login", { exact: true }).fill(login);
  await page.getByLabel("E-mail").fill(`${login}@example.test`);
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByLabel("Repeat the password").fill(password);
  await page.getByRole("button", { name: "Create account" }).click();
}

describe("accounts", { timeout: 120_000 }, () => {
  const ctx = useE2e({});
  let adminToken = "";

  it("validates the form next to each field, then registers the first user as admin and asks about standard repos", async () => {
    const { context, page } = await openPage(ctx.browser, ctx.inst.httpUrl);
    try {
      await page.goto("/#/register");
      await page.getByLabel("Login", { exact: true }).fill("x");
      await page.getByLabel("E-mail").fill("not-an-email");
      await page.getByLabel("Password", { exact: true }).fill("short");
      await page.getByLabel("Repeat the password").fill("other");
      await page.getByRole("button", { name: "Create account" }).click();
      const errors = page.locator('[data-testid="field-error"]');
      expect(await errors.count()).toBe(4);
      // Each error is tied to its input for assistive technology.
      expect(await page.getByLabel("Login", { exact: true }).getAttribute("aria-invalid")).toBe(
        "true",
      );
      expect(
        await page.getByLabel("Login", { exact: true }).getAttribute("aria-describedby"),
      ).toContain("reg-login-error");

      await fillRegister(page, "firstadmin");
      const dialog = page.locator('[data-testid="first-run"]');
      await dialog.waitFor();
      expect(await dialog.innerText()).toContain("standard unit repositories");
      await dialog.getByRole("button", { name: "Add the standard unit repositories" }).click();
      const message = dialog.locator('[data-testid="standard-repos-message"]');
      await message.waitFor();
      const hasEndpoint = (
        await fetch(`${ctx.inst.httpUrl}/pepeunit/api/v1/openapi.json`).then((r) => r.json())
      ).paths["/admin/standard_repos"];
      if (hasEndpoint) expect(await message.innerText()).toMatch(/Added|added/);
      else expect(await message.innerText()).toContain("cannot add the standard repositories yet");
      await dialog.getByRole("button", { name: "Not now" }).click();
      await dialog.waitFor({ state: "detached" });
      expect(await page.getByTestId("account-link").innerText()).toBe("firstadmin");
      expect(await page.getByRole("link", { name: "Admin", exact: true }).count()).toBe(1);
      adminToken = (await page.evaluate(() => localStorage.getItem("pepeunit.token"))) ?? "";
      expect(adminToken).not.toBe("");
    } finally {
      await context.close();
    }
  });

  it("changes the password, logs out and logs in again", async () => {
    // A wrong current password, then the old password after the change.
    const { context, page } = await openPage(ctx.browser, ctx.inst.httpUrl, {
      allowConsole: [refused(403, "/users/me/password"), refused(401, "/users/auth")],
    });
    try {
      await fillRegister(page, "bob");
      await page.getByTestId("account-link").waitFor();
      expect(await page.locator('[data-testid="first-run"]').count()).toBe(0);
      expect(await page.getByRole("link", { name: "Admin", exact: true }).count()).toBe(0);
      await page.getByTestId("account-link").click();
      await page.getByLabel("Current password").fill("wrong-password");
      await page.getByLabel("New password", { exact: true }).fill("a-new-password");
      await page.getByLabel("Repeat the new password").fill("a-new-password");
      await page.getByRole("button", { name: "Change password" }).click();
      await expect
        .poll(() => page.locator("#pw-old-error").innerText())
        .toContain("old password is wrong");
      await page.getByLabel("Current password").fill("pw-bob-secret");
      await page.getByRole("button", { name: "Change password" }).click();
      await expect
        .poll(() => page.getByTestId("notice").allInnerTexts())
        .toContainEqual(expect.stringContaining("Password changed"));
      await page.getByRole("button", { name: "Log out" }).click();
      // The toolbar's link: the page itself may offer one too once logged out.
      await page
        .getByRole("navigation", { name: "Main" })
        .getByRole("link", { name: "Log in" })
        .click();
      await page.getByLabel("Login or e-mail").fill("bob");
      await page.getByLabel("Password", { exact: true }).fill("pw-bob-secret");
      await page.getByRole("button", { name: "Log in" }).click();
      await expect
        .poll(() => page.getByRole("alert").innerText())
        .toContain("wrong login or password");
      await page.getByLabel("Password", { exact: true }).fill("a-new-password");
      await page.getByRole("button", { name: "Log in" }).click();
      await page.getByTestId("account-link").waitFor();
      expect(await page.getByTestId("account-link").innerText()).toBe("bob");
    } finally {
      await context.close();
    }
  });

  it("tells what each registration mode means for a new account", async () => {
    const setMode = async (mode: string) => {
      const r = await ctx.inst.api.patch(
        "/admin/settings",
        { registration_mode: mode },
        adminToken,
      );
      return r.status;
    };
    // A login awaiting approval, then a registration while closed.
    const { context, page } = await openPage(ctx.browser, ctx.inst.httpUrl, {
      allowConsole: [refused(403, "/users/auth"), refused(403, "/users")],
    });
    try {
      expect(await setMode("ManualApproval")).toBe(200);
      await fillRegister(page, "carol");
      await expect
        .poll(() => page.getByTestId("register-outcome").innerText())
        .toContain("awaiting approval");
      // Logging in before approval explains why it is refused.
      await page.goto("/#/login");
      await page.getByLabel("Login or e-mail").fill("carol");
      await page.getByLabel("Password", { exact: true }).fill("pw-carol-secret");
      await page.getByRole("button", { name: "Log in" }).click();
      await expect.poll(() => page.getByRole("alert").innerText()).toContain("awaiting approval");

      expect(await setMode("Closed")).toBe(200);
      await fillRegister(page, "dave");
      await expect
        .poll(() => page.getByTestId("register-error").innerText())
        .toContain("Registration is closed");
    } finally {
      await context.close();
    }
  });
});

describe("accounts with e-mail verification", { timeout: 120_000 }, () => {
  let smtp: SmtpSink | undefined;
  // The mode needs a mail server: a real SMTP sink on loopback, started before the instance.
  const ctx = useE2e(async () => {
    smtp = await startSmtpSink();
    return { PEPEUNIT_SMTP_URL: smtp.url };
  });
  afterAll(async () => smtp?.close());

  it("says a verification e-mail was sent", async () => {
    const admin = await createUser(ctx.inst.api, "mailadmin");
    const mode = await ctx.inst.api.patch(
      "/admin/settings",
      { registration_mode: "EmailVerification" },
      admin.token,
    );
    expect(mode.status).toBe(200);
    const { context, page } = await openPage(ctx.browser, ctx.inst.httpUrl);
    try {
      await fillRegister(page, "erin");
      await expect
        .poll(() => page.getByTestId("register-outcome").innerText())
        .toContain("verification e-mail has been sent");
      expect(await smtp?.next()).toContain("erin@example.test");
    } finally {
      await context.close();
    }
  });
});
