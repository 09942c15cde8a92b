import { execFile } from "node:child_process";
import { copyFile, readdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { fetchOpenApiDocument } from "../../web/scripts/generate-api-types.ts";
import { writeApiPages } from "./openapi-to-myst.ts";

// `npm run docs`: the API reference pages from a throw-away instance's OpenAPI
// document, then Sphinx with -W (a warning fails the build) into docs/_build/html.
// `npm run docs -- --screens` first copies the e2e suite's fresh screenshots
// (test/e2e/screenshots/) over the committed ones the pages use.

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
export const DOCS_DIR = path.join(repoRoot, "docs");
export const E2E_SCREENSHOTS = path.join(repoRoot, "test/e2e/screenshots");
/** The screenshots the pages show: committed, so a clean clone builds without running e2e. */
export const SCREENS_SUBDIR = "_static/screens";

const run = promisify(execFile);

/** Copies every screenshot the docs use that the e2e suite has (re)written; returns their names. */
export async function refreshScreens(srcDir = DOCS_DIR, from = E2E_SCREENSHOTS): Promise<string[]> {
  const used = (await readdir(path.join(srcDir, SCREENS_SUBDIR))).filter((f) => f.endsWith(".png"));
  const fresh = new Set(await readdir(from).catch(() => [] as string[]));
  const copied = used.filter((f) => fresh.has(f));
  for (const f of copied) await copyFile(path.join(from, f), path.join(srcDir, SCREENS_SUBDIR, f));
  return copied;
}

/** Generates docs/api from the OpenAPI document and builds the HTML; throws with Sphinx's output on any warning. */
export async function buildDocs(
  opts: { srcDir?: string; outDir?: string; openapi?: unknown } = {},
): Promise<{ outDir: string; apiPages: number }> {
  const srcDir = opts.srcDir ?? DOCS_DIR;
  const outDir = opts.outDir ?? path.join(srcDir, "_build/html");
  const doc = opts.openapi ?? (await fetchOpenApiDocument());
  // The document is JSON from the instance; its shape is checked page by page.
  const apiPages = await writeApiPages(
    doc as Parameters<typeof writeApiPages>[0],
    path.join(srcDir, "api"),
  );
  try {
    await run(
      "sphinx-build",
      [
        "-W",
        "--keep-going",
        "-q",
        "-b",
        "html",
        "-d",
        path.join(outDir, "..", "doctrees"),
        srcDir,
        outDir,
      ],
      { maxBuffer: 16 * 1024 * 1024 },
    );
  } catch (err) {
    const e = err as { code?: string; stderr?: string; stdout?: string };
    if (e.code === "ENOENT") {
      throw new Error(
        "sphinx-build not found: install python3-sphinx, python3-sphinx-rtd-theme and python3-myst-parser",
      );
    }
    throw new Error(`sphinx-build failed:\n${e.stderr ?? ""}${e.stdout ?? ""}`);
  }
  return { outDir, apiPages };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (process.argv.includes("--screens")) {
    const copied = await refreshScreens();
    console.log(`screenshots refreshed from test/e2e/screenshots: ${copied.join(", ") || "none"}`);
  }
  try {
    const { outDir, apiPages } = await buildDocs();
    console.log(`${apiPages} API pages generated; HTML in ${path.relative(repoRoot, outDir)}`);
  } catch (err) {
    console.error((err as Error).message);
    process.exit(1);
  }
}
