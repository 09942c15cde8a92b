import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { Hono } from "hono";
import type { AppEnv } from "../http/types.ts";
import { projectPath } from "../project-root.ts";

/** Where `vite build` (web/vite.config.ts) writes the SPA. */
export const WEB_DIST_DIR = projectPath("web/dist");

// Paths the SPA must never answer: the API, its docs, the health check, the
// MQTT WebSocket endpoint and federation discovery. Unknown paths under them
// keep their JSON 404 instead of receiving index.html.
const RESERVED = ["/pepeunit/api", "/pepeunit/docs", "/healthz", "/mqtt", "/.well-known"];

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".webp": "image/webp",
  ".woff2": "font/woff2",
  ".txt": "text/plain; charset=utf-8",
  ".map": "application/json",
};

function isReserved(p: string): boolean {
  return RESERVED.some((r) => p === r || p.startsWith(`${r}/`));
}

/** A regular file under root, or null (never escapes root, never a directory). */
async function fileUnder(root: string, urlPath: string): Promise<string | null> {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes("\0")) return null;
  const full = path.resolve(root, `.${path.posix.normalize(decoded)}`);
  if (full !== root && !full.startsWith(`${root}${path.sep}`)) return null;
  try {
    return (await stat(full)).isFile() ? full : null;
  } catch {
    return null;
  }
}

/**
 * Serves the built graph UI at `/`: real files from `web/dist` (hashed assets
 * cached for a year), and index.html for every other GET so client routes and
 * deep links load the app. Mounted after the API, so API routes always win.
 */
export function spaRoutes(distDir: string = WEB_DIST_DIR) {
  const app = new Hono<AppEnv>();
  app.on(["GET", "HEAD"], "*", async (c, next) => {
    const urlPath = c.req.path;
    if (isReserved(urlPath)) return next();
    const file = await fileUnder(distDir, urlPath);
    if (file && path.basename(file) !== "index.html") {
      const body = await readFile(file);
      const immutable = urlPath.startsWith("/assets/");
      return c.body(body, 200, {
        "content-type": CONTENT_TYPES[path.extname(file)] ?? "application/octet-stream",
        "cache-control": immutable ? "public, max-age=31536000, immutable" : "no-cache",
        "x-content-type-options": "nosniff",
      });
    }
    // A missing asset is a 404, not the app: a stale cached page asking for an
    // old hashed bundle must fail loudly rather than parse HTML as JavaScript.
    if (urlPath.startsWith("/assets/")) return next();
    try {
      const html = await readFile(path.join(distDir, "index.html"), "utf8");
      return c.html(html, 200, {
        "cache-control": "no-cache",
        "x-content-type-options": "nosniff",
      });
    } catch {
      return c.text("The web UI is not built: run `npm run web:build` (npm start does it).", 503);
    }
  });
  return app;
}
