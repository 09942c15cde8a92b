import { describe, expect, it } from "vitest";
import { createFixtureRepo } from "../helpers/git-fixtures.ts";
import { createUser } from "../helpers/instance.ts";
import { createRepo } from "../helpers/repos.ts";
import { createUnit } from "../helpers/units.ts";
import { flowNode, gotoGraph, openPage, watchViolations } from "./support/browser.ts";
import { useE2e } from "./support/suite.ts";

// The graph UI and the API docs work under the Content-Security-Policy the
// server sends (src/http/security-headers.ts): nothing they load or run is refused.

describe("content security policy in the browser", { timeout: 120_000 }, () => {
  const seeded: Record<string, string> = {};
  const ctx = useE2e({}, async ({ inst }) => {
    const owner = await createUser(inst.api, "owner");
    const repo = await createRepo(inst.api, owner.token, createFixtureRepo(), { name: "csp-repo" });
    const unit = await createUnit(inst.api, owner.token, repo.uuid, { name: "csp-unit" });
    Object.assign(seeded, { token: owner.token, repo: repo.uuid, unit: unit.uuid });
  });

  it("the graph renders its nodes with no violation", async () => {
    const { context, page } = await openPage(ctx.browser, ctx.inst.httpUrl, {
      token: seeded.token,
    });
    try {
      const violations = await watchViolations(page);
      const res = await page.goto("/");
      expect(res?.headers()["content-security-policy"]).toMatch(/script-src 'self';/);
      await gotoGraph(page);
      await expect.poll(() => flowNode(page, seeded.unit as string).count()).toBe(1);
      expect(await violations()).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it("Swagger UI renders the API document with no violation", async () => {
    const { context, page } = await openPage(ctx.browser, ctx.inst.httpUrl);
    try {
      const violations = await watchViolations(page);
      const res = await page.goto("/pepeunit/docs");
      expect(res?.headers()["content-security-policy"]).toMatch(/script-src 'self';/);
      await page.locator(".swagger-ui .info .title").filter({ hasText: "Pepeunit API" }).waitFor();
      await page.locator(".opblock").first().waitFor();
      expect(await violations()).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
