import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

// `npm start` runs this first (prestart): a fresh checkout gets its graph UI
// built once; later starts skip it. `npm run web:build` rebuilds on demand.

const root = fileURLToPath(new URL("../..", import.meta.url));
if (!existsSync(path.join(root, "web/dist/index.html"))) {
  console.log("building the web UI (web/dist) …");
  const r = spawnSync(
    process.execPath,
    [
      path.join(root, "node_modules/vite/bin/vite.js"),
      "build",
      "--config",
      "web/vite.config.ts",
      "--logLevel",
      "warn",
    ],
    { cwd: root, stdio: "inherit" },
  );
  if (r.status !== 0) process.exit(r.status ?? 1);
}
