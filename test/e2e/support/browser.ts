import { mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";

// Debian's Chromium, driven by playwright-core (no browser download).
export const CHROMIUM = process.env.PEPEUNIT_CHROMIUM ?? "/usr/bin/chromium";
export const SCREENSHOTS = fileURLToPath(new URL("../screenshots", import.meta.url));

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--no-first-run",
    ],
  });
}

export type PageOptions = {
  token?: string;
  viewport?: { width: number; height: number };
  colorScheme?: "light" | "dark";
};

/** A fresh context (own localStorage) on the instance, optionally already logged in. */
export async function openPage(
  browser: Browser,
  baseUrl: string,
  opts: PageOptions = {},
): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({
    baseURL: baseUrl,
    viewport: opts.viewport ?? { width: 1280, height: 800 },
    colorScheme: opts.colorScheme ?? "light",
    acceptDownloads: true,
  });
  if (opts.token) {
    await context.addInitScript((token) => {
      if (!sessionStorage.getItem("e2e-token-set")) {
        localStorage.setItem("pepeunit.token", token);
        sessionStorage.setItem("e2e-token-set", "1");
      }
    }, opts.token);
  }
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  return { context, page };
}

/** Loads a route and waits until the graph has loaded. */
export async function gotoGraph(page: Page, hash = "#/"): Promise<void> {
  await page.goto(`/${hash}`);
  await page.locator('[data-testid="graph-canvas"][data-ready="true"]').waitFor();
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file });
  return file;
}

/** The Svelte Flow node of an entity (node ids are the entities' uuids). */
export function flowNode(page: Page, uuid: string) {
  return page.locator(`.svelte-flow__node[data-id="${uuid}"]`);
}

/** Press at the centre of `from`, move to the centre of `to` (or a point), release. */
export async function dragBetween(
  page: Page,
  from: { x: number; y: number },
  to: { x: number; y: number },
  opts: { shift?: boolean } = {},
): Promise<void> {
  if (opts.shift) await page.keyboard.down("Shift");
  await page.mouse.move(from.x, from.y);
  await page.mouse.down();
  const steps = 12;
  for (let i = 1; i <= steps; i++) {
    await page.mouse.move(
      from.x + ((to.x - from.x) * i) / steps,
      from.y + ((to.y - from.y) * i) / steps,
    );
  }
  await page.mouse.up();
  if (opts.shift) await page.keyboard.up("Shift");
}

export async function centreOf(page: Page, selector: string): Promise<{ x: number; y: number }> {
  const box = await page.locator(selector).first().boundingBox();
  if (!box) throw new Error(`no box for ${selector}`);
  return { x: box.x + box.width / 2, y: box.y + box.height / 2 };
}

/** Screen point in the middle of an edge's drawn path. */
export async function edgeMidpoint(page: Page, edgeId: string): Promise<{ x: number; y: number }> {
  return page.evaluate((id) => {
    const path = document.querySelector(
      `.svelte-flow__edge[data-id="${id}"] path.svelte-flow__edge-path`,
    ) as SVGPathElement | null;
    if (!path) throw new Error(`no edge ${id}`);
    const p = path.getPointAtLength(path.getTotalLength() / 2);
    const m = path.getScreenCTM();
    if (!m) throw new Error("no CTM");
    return { x: p.x * m.a + p.y * m.c + m.e, y: p.x * m.b + p.y * m.d + m.f };
  }, edgeId);
}

/** Records every CSP violation the page reports, from its first script on. */
export async function watchViolations(page: Page): Promise<() => Promise<string[]>> {
  const fromConsole: string[] = [];
  page.on("console", (m) => {
    if (/Content Security Policy/i.test(m.text())) fromConsole.push(m.text());
  });
  await page.addInitScript(() => {
    const w = window as unknown as { cspViolations: string[] };
    w.cspViolations = [];
    document.addEventListener("securitypolicyviolation", (e) => {
      w.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  return async () => [
    ...fromConsole,
    ...(await page.evaluate(
      () => (window as unknown as { cspViolations: string[] }).cspViolations,
    )),
  ];
}
