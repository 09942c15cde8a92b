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
  /**
   * Console warnings/errors this test provokes on purpose (a refused request
   * logs "Failed to load resource: … 403"): each pattern is matched against
   * "<type>: <text> (<url>)". Anything else fails the test (see suite.ts).
   */
  allowConsole?: RegExp[];
};

// Every console warning or error and every uncaught page error of the pages
// opened here, unless allowed; useE2e fails the test that produced them.
const problems: string[] = [];
const allowed = new WeakMap<Page, RegExp[]>();
/**
 * Allowed on every page: the API answers "this variable has no data pipe config
 * yet" with a 404, which the pipe editor (open to the unit's creator) expects.
 */
const ALWAYS = [/status of 404 .*\/unit_nodes\/get_data_pipe_config\//];

/** Allows more console output on a page, for what the rest of the test provokes. */
export function allowConsole(page: Page, ...patterns: RegExp[]): void {
  allowed.set(page, [...(allowed.get(page) ?? []), ...patterns]);
}

/** The console problems since the last call (and forgets them). */
export function takeConsoleProblems(): string[] {
  return problems.splice(0);
}

function watchConsole(page: Page): void {
  const report = (line: string) => {
    if (![...ALWAYS, ...(allowed.get(page) ?? [])].some((re) => re.test(line))) problems.push(line);
  };
  page.on("console", (m) => {
    if (m.type() !== "warning" && m.type() !== "error") return;
    report(`${m.type()}: ${m.text()} (${m.location().url})`);
  });
  page.on("pageerror", (err) => report(`pageerror: ${err.stack ?? err.message}`));
}

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
  watchConsole(page);
  if (opts.allowConsole) allowConsole(page, ...opts.allowConsole);
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

/** The console line Chromium logs for a request the server refused with `status`. */
export function refused(status: number, path: string): RegExp {
  const escaped = path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`status of ${status} .*${escaped}`);
}

/** Whether the focused element matches `selector` (or is inside what it matches). */
export function focusIn(page: Page, selector: string): Promise<boolean> {
  return page.evaluate((sel) => !!document.activeElement?.closest(sel), selector);
}

/** Presses Tab (Shift+Tab when `back`) until focus is in `selector`: keyboard-only navigation. */
export async function tabTo(page: Page, selector: string, back = false, max = 200): Promise<void> {
  for (let i = 0; i < max; i++) {
    if (await focusIn(page, selector)) return;
    await page.keyboard.press(back ? "Shift+Tab" : "Tab");
  }
  const at = await page.evaluate(() => document.activeElement?.outerHTML.slice(0, 200));
  throw new Error(`Tab never reached ${selector}; focus is on ${at}`);
}

/** The graph's viewport (pan and zoom) from its transform. */
export function viewportOf(page: Page): Promise<{ x: number; y: number; zoom: number }> {
  return page.evaluate(() => {
    const el = document.querySelector(".svelte-flow__viewport") as HTMLElement;
    const m = /translate\(([-\d.]+)px, ([-\d.]+)px\) scale\(([-\d.]+)\)/.exec(el.style.transform);
    return { x: Number(m?.[1]), y: Number(m?.[2]), zoom: Number(m?.[3]) };
  });
}
