import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { Hono } from "hono";
import type { AppEnv } from "./types.ts";

// Swagger UI from the installed swagger-ui-dist package, on our own origin: no CDN
// script runs next to the tokens the docs page holds, and the version is the
// locked one. The page has no inline script, so it works under script-src 'self'.

const SWAGGER_DIR = path.dirname(createRequire(import.meta.url).resolve("swagger-ui-dist"));

const ASSETS: Record<string, string> = {
  "swagger-ui.css": "text/css; charset=utf-8",
  "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
  "favicon-32x32.png": "image/png",
};

const escapeAttr = (s: string) => s.replace(/&/g, "&amp;").replace(/"/g, "&quot;");

function page(docsPath: string, specUrl: string): string {
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>Pepeunit API</title>
    <link rel="stylesheet" href="${docsPath}/assets/swagger-ui.css" />
    <link rel="icon" type="image/png" href="${docsPath}/assets/favicon-32x32.png" />
  </head>
  <body>
    <div id="swagger-ui" data-spec-url="${escapeAttr(specUrl)}"></div>
    <script src="${docsPath}/assets/swagger-ui-bundle.js"></script>
    <script src="${docsPath}/assets/init.js"></script>
  </body>
</html>
`;
}

// Reads the spec URL from the page, so this file is static.
const INIT_JS = `window.addEventListener("load", function () {
  var el = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({ url: el.dataset.specUrl, dom_id: "#swagger-ui", deepLinking: true });
});
`;

/** The docs page at `docsPath` and its assets under `${docsPath}/assets/`. */
export function docsRoutes(docsPath: string, specUrl: string) {
  const app = new Hono<AppEnv>();
  const html = page(docsPath, specUrl);
  app.get(docsPath, (c) => c.html(html, 200, { "cache-control": "no-cache" }));
  app.get(`${docsPath}/assets/init.js`, (c) =>
    c.body(INIT_JS, 200, { "content-type": "text/javascript; charset=utf-8" }),
  );
  app.get(`${docsPath}/assets/:file`, async (c) => {
    const file = c.req.param("file");
    const type = ASSETS[file];
    if (!type) return c.json({ detail: "not found" }, 404);
    const body = await readFile(path.join(SWAGGER_DIR, file));
    return c.body(body, 200, { "content-type": type, "cache-control": "public, max-age=3600" });
  });
  return app;
}
