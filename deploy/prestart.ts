import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync, utimesSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

// `npm start` runs this first (prestart). A fresh checkout gets its graph UI built once
// (web/dist; `npm run web:build` rebuilds on demand), and the server's JavaScript
// (build/, see tsconfig.build.json) is emitted again whenever a source is newer than it.
// An installation whose code is read-only (the image, the systemd unit) built both at
// install time (`npm run build`) and skips this.

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = (name: string) => path.join(root, "node_modules", name);

function run(what: string, args: string[]): void {
  console.log(`${what} …`);
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: "inherit" });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

/** Newest modification time under `dir` of files with `ext`, 0 for none. */
function newest(dir: string, ext: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name.endsWith(ext)) {
      t = Math.max(t, statSync(path.join(e.parentPath, e.name)).mtimeMs);
    }
  }
  return t;
}

if (!existsSync(path.join(root, "web/dist/index.html"))) {
  run("building the web UI (web/dist)", [
    bin("vite/bin/vite.js"),
    "build",
    "--config",
    "web/vite.config.ts",
    "--logLevel",
    "warn",
  ]);
}

// tsc rewrites only the files whose output changed: its build info, touched after each
// build, is what tells when the build last caught up with the sources.
const stamp = path.join(root, "build/.tsbuildinfo");
const sources = Math.max(
  newest(path.join(root, "src"), ".ts"),
  statSync(path.join(root, "federation-vocab/vocab.ts")).mtimeMs,
  statSync(path.join(root, "tsconfig.build.json")).mtimeMs,
);
if (
  !existsSync(path.join(root, "build/src/main.js")) ||
  !existsSync(stamp) ||
  statSync(stamp).mtimeMs < sources
) {
  run("building the server (build/)", [bin("typescript/bin/tsc"), "-p", "tsconfig.build.json"]);
  const now = new Date();
  utimesSync(stamp, now, now);
}
