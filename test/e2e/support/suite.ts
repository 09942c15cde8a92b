import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Browser } from "playwright-core";
import { afterAll, afterEach, beforeAll } from "vitest";
import { startTestInstance, type TestInstance } from "../../helpers/instance.ts";
import { launchBrowser, takeConsoleProblems } from "./browser.ts";
import { ensureSpaBuilt } from "./spa-build.ts";

// Every e2e file: the built SPA, a real instance (which serves it) and one
// headless Chromium. Browsers are heavy on a 2-core machine, so at most
// BROWSER_SLOTS e2e files (across both database projects) run at once.

const BROWSER_SLOTS = Number(process.env.PEPEUNIT_E2E_SLOTS ?? 2);
const slotsDir = fileURLToPath(
  new URL("../../../node_modules/.cache/pepeunit-e2e-slots", import.meta.url),
);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function acquireSlot(): Promise<string> {
  mkdirSync(slotsDir, { recursive: true });
  for (;;) {
    for (let i = 0; i < BROWSER_SLOTS; i++) {
      const dir = path.join(slotsDir, `slot-${i}`);
      try {
        mkdirSync(dir);
        writeFileSync(path.join(dir, "pid"), String(process.pid));
        return dir;
      } catch {
        // Taken: free it if its owner died without releasing.
        try {
          const owner = Number(readFileSync(path.join(dir, "pid"), "utf8"));
          if (owner && !alive(owner)) rmSync(dir, { recursive: true, force: true });
        } catch {}
      }
    }
    await new Promise((r) => setTimeout(r, 300));
  }
}

export type E2eContext = { inst: TestInstance; browser: Browser };

type Env = Record<string, string>;

export function useE2e(
  env: Env | (() => Promise<Env>) = {},
  setup?: (ctx: E2eContext) => Promise<void>,
): E2eContext {
  const ctx = {} as E2eContext;
  let slot: string | null = null;
  beforeAll(async () => {
    await ensureSpaBuilt();
    slot = await acquireSlot();
    ctx.inst = await startTestInstance(typeof env === "function" ? await env() : env);
    ctx.browser = await launchBrowser();
    if (setup) await setup(ctx);
  }, 900_000);
  afterEach(() => {
    // A warning or error in the browser console is a bug unless the test allowed it.
    const problems = takeConsoleProblems();
    if (problems.length)
      throw new Error(`browser console:\n${problems.map((p) => `  ${p}`).join("\n")}`);
  });
  afterAll(async () => {
    await ctx.browser?.close();
    await ctx.inst?.close();
    if (slot) rmSync(slot, { recursive: true, force: true });
  }, 60_000);
  return ctx;
}
