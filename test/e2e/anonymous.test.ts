import { describe, expect, it } from "vitest";
import { createFixtureRepo } from "../helpers/git-fixtures.ts";
import { createUser } from "../helpers/instance.ts";
import { createRepo } from "../helpers/repos.ts";
import { createUnit } from "../helpers/units.ts";
import { flowNode, gotoGraph, openPage } from "./support/browser.ts";
import { useE2e } from "./support/suite.ts";

// Without an account: only Public nodes, opened read-only. Also how the server
// serves the SPA without shadowing the API.

describe("anonymous visitor", { timeout: 120_000 }, () => {
  const seeded: Record<string, string> = {};
  const ctx = useE2e({}, async ({ inst }) => {
    const admin = await createUser(inst.api, "owner");
    const fixture = createFixtureRepo();
    const pub = await createRepo(inst.api, admin.token, fixture, {
      name: "public-repo",
      visibility: "Public",
    });
    const internal = await createRepo(inst.api, admin.token, createFixtureRepo(), {
      name: "internal-repo",
      visibility: "Internal",
    });
    const priv = await createRepo(inst.api, admin.token, createFixtureRepo(), {
      name: "private-repo",
      visibility: "Private",
    });
    seeded.pubRepo = pub.uuid;
    seeded.internalRepo = internal.uuid;
    seeded.privRepo = priv.uuid;
    seeded.pubUnit = (
      await createUnit(inst.api, admin.token, pub.uuid, {
        name: "public-unit",
        visibility: "Public",
      })
    ).uuid;
    seeded.internalUnit = (
      await createUnit(inst.api, admin.token, pub.uuid, {
        name: "internal-unit",
        visibility: "Internal",
      })
    ).uuid;
    seeded.privUnit = (
      await createUnit(inst.api, admin.token, priv.uuid, {
        name: "private-unit",
        visibility: "Private",
      })
    ).uuid;
  });

  it("sees only Public repos, units and variables", async () => {
    const { context, page } = await openPage(ctx.browser, ctx.inst.httpUrl);
    try {
      await gotoGraph(page);
      await expect.poll(() => flowNode(page, seeded.pubRepo as string).count()).toBe(1);
      expect(await flowNode(page, seeded.pubUnit as string).count()).toBe(1);
      for (const hidden of ["internalRepo", "privRepo", "internalUnit", "privUnit"]) {
        expect(await flowNode(page, seeded[hidden] as string).count(), hidden).toBe(0);
      }
      // The public unit's variables are drawn around it (2 inputs, 2 outputs in the fixture).
      expect(await page.locator('[data-testid="input-node"]').count()).toBe(2);
      expect(await page.locator('[data-testid="output-node"]').count()).toBe(2);
      const text = await page.locator('[data-testid="graph-canvas"]').innerText();
      expect(text).toContain("public-unit");
      expect(text).not.toContain("internal-unit");
      expect(text).not.toContain("private-");
      // Nothing to create without an account.
      expect(await page.getByRole("button", { name: "+ Repository" }).count()).toBe(0);
      expect(await page.getByRole("button", { name: /New unit from/ }).count()).toBe(0);
      expect(await page.getByRole("link", { name: "Log in" }).count()).toBe(1);
    } finally {
      await context.close();
    }
  });

  it("opens nodes read-only", async () => {
    const { context, page } = await openPage(ctx.browser, ctx.inst.httpUrl);
    try {
      await gotoGraph(page);
      await flowNode(page, seeded.pubUnit as string)
        .getByRole("button", { name: "public-unit" })
        .click();
      const panel = page.locator('[data-testid="panel-unit"]');
      await panel.waitFor();
      expect(page.url()).toContain(`#/unit/${seeded.pubUnit}`);
      await expect.poll(() => panel.innerText()).toContain("offline");
      for (const name of ["Delete unit", "Edit env", "Download zip", "Save target version"]) {
        expect(await panel.getByRole("button", { name }).count(), name).toBe(0);
      }
      await page.goto(`/#/repo/${seeded.pubRepo}`);
      const repoPanel = page.locator('[data-testid="panel-repo"]');
      await repoPanel.waitFor();
      for (const name of ["Sync now", "Edit", "Delete", "+ New unit"]) {
        expect(await repoPanel.getByRole("button", { name, exact: true }).count(), name).toBe(0);
      }
      // A deep link to something not Public says so instead of showing it.
      await page.goto(`/#/unit/${seeded.privUnit}`);
      await expect.poll(() => page.locator(".panel").innerText()).toContain("not visible to you");
    } finally {
      await context.close();
    }
  });

  it("the SPA is served at / with a fallback, never over the API, docs or health check", async () => {
    const base = ctx.inst.httpUrl;
    const home = await fetch(`${base}/`);
    expect(home.status).toBe(200);
    expect(home.headers.get("content-type")).toContain("text/html");
    const html = await home.text();
    expect(html).toContain('<div id="app">');
    const asset = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(asset).toBeDefined();
    const js = await fetch(`${base}${asset}`);
    expect(js.status).toBe(200);
    expect(js.headers.get("content-type")).toContain("javascript");
    expect(js.headers.get("cache-control")).toContain("immutable");
    // Client routes fall back to index.html.
    const deep = await fetch(`${base}/some/client/route`);
    expect(deep.status).toBe(200);
    expect(await deep.text()).toContain('<div id="app">');
    // Never shadowed: API 404s stay JSON, docs and health check answer as before.
    const apiMissing = await fetch(`${base}/pepeunit/api/v1/no-such-thing`);
    expect(apiMissing.status).toBe(404);
    expect(await apiMissing.json()).toEqual({ detail: "not found" });
    expect((await fetch(`${base}/healthz`)).headers.get("content-type")).toContain(
      "application/json",
    );
    expect(await (await fetch(`${base}/pepeunit/docs`)).text()).toContain("swagger");
    const wellKnown = await fetch(`${base}/.well-known/nodeinfo`);
    expect(await wellKnown.text()).not.toContain('<div id="app">');
    // A missing hashed asset is a 404, not the app; no path escapes web/dist.
    expect((await fetch(`${base}/assets/missing-123.js`)).status).toBe(404);
    const traversal = await fetch(`${base}/..%2f..%2fpackage.json`);
    expect(await traversal.text()).not.toContain('"name": "pepeunit"');
  });
});
