import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "../../test/helpers/ports.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));
/** What `npm start` runs: the server's build (bench/run.ts brings it up to date first). */
export const SERVER_ENTRY = path.join(root, "build/src/main.js");

/** The node flags `npm start` gives the server (package.json), so benches run it alike. */
export function startNodeFlags(): string[] {
  const pkg = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8"));
  const words = String(pkg.scripts.start).split(/\s+/);
  return words.slice(1).filter((w) => w.startsWith("--"));
}

export type BenchServer = {
  url: string;
  mqttPort: number;
  pid: number;
  dir: string;
  env: Record<string, string>;
  /** Where `node --cpu-prof` writes the server's profile on stop (when profiling). */
  cpuProfDir: string | null;
  /** The inspector port, when started with `inspect: true` (see inspector.ts). */
  inspectPort: number | null;
  stop(): Promise<void>;
};

/**
 * Starts the instance as `npm start` runs it (SERVER_ENTRY) as its own process, pinned to one core with taskset
 * (the load generator runs on the other), so figures are "per core".
 * `cpuProfile: true` (or BENCH_CPU_PROF=1 for every server) runs it under
 * `node --cpu-prof`; the profile is written into `cpuProfDir` when it stops.
 */
export async function startBenchServer(opts: {
  databaseUrl?: string;
  env?: Record<string, string>;
  cpuProfile?: boolean;
  /** Opens the inspector on a loopback port, for forced garbage collections. */
  inspect?: boolean;
  /** The cores the server may run on (taskset -c list); default core 0. */
  cpus?: string;
  /** Start again on the data of an earlier server (its `dir`) instead of a new one. */
  dir?: string;
}): Promise<BenchServer> {
  const dir = opts.dir ?? mkdtempSync(path.join(tmpdir(), "pepeunit-bench-"));
  const profile = opts.cpuProfile ?? ["1", "true"].includes(process.env.BENCH_CPU_PROF ?? "");
  const cpuProfDir = profile ? path.join(dir, "cpu-prof") : null;
  const nodeArgs = startNodeFlags();
  if (cpuProfDir) nodeArgs.push("--cpu-prof", `--cpu-prof-dir=${cpuProfDir}`);
  // BENCH_SERVER_NODE_ARGS: extra node flags for every bench server (e.g. --trace-gc).
  nodeArgs.push(...(process.env.BENCH_SERVER_NODE_ARGS ?? "").split(" ").filter(Boolean));
  const port = await freePort();
  const mqttPort = await freePort();
  const inspectPort = opts.inspect ? await freePort() : null;
  if (inspectPort) nodeArgs.push(`--inspect=127.0.0.1:${inspectPort}`);
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    PEPEUNIT_HTTP_HOST: "127.0.0.1",
    PEPEUNIT_HTTP_PORT: String(port),
    PEPEUNIT_MQTT_PORT: String(mqttPort),
    PEPEUNIT_DATA_DIR: path.join(dir, "data"),
    PEPEUNIT_REPOSITORIES_DIR: path.join(dir, "repositories"),
    PEPEUNIT_GIT_ALLOW_LOCAL: "true",
    PEPEUNIT_LOG_LEVEL: "warn",
    DATABASE_URL: opts.databaseUrl ?? "",
    ...opts.env,
  };
  const child: ChildProcess = spawn(
    "taskset",
    ["-c", opts.cpus ?? "0", process.execPath, ...nodeArgs, SERVER_ENTRY],
    {
      env,
      stdio: ["ignore", "inherit", "inherit"],
    },
  );
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`bench server exited with ${child.exitCode}`);
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok) break;
    } catch {}
    if (Date.now() > deadline) throw new Error("bench server did not start in 60 s");
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    mqttPort,
    pid: child.pid ?? 0,
    dir,
    env,
    cpuProfDir,
    inspectPort,
    stop: () =>
      new Promise((resolve) => {
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
        setTimeout(() => child.kill("SIGKILL"), 10_000).unref();
      }),
  };
}
