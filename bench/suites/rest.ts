import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";
import { createFixtureRepo } from "../../test/helpers/git-fixtures.ts";
import { freePort } from "../../test/helpers/ports.ts";
import { CPU_PER_UNIT, cpuMeter, medianOf, usPerUnit, WORK_UNIT } from "../lib/cpu-per-unit.ts";
import { processStats } from "../lib/process-stats.ts";
import { record } from "../lib/report.ts";
import { startBenchServer } from "../lib/server.ts";

// REST reads and archive builds against a server pinned to one core, each read as a
// fraction of the ceiling: a bare Hono app on the same core answering the same body,
// loaded by the same client in the same run (bench/lib/ceiling-server.ts).
// Goal (issue 15): GET /units/{uuid} and /units/env/{uuid} ≥ 1/3 of the ceiling with
// p99 < 10 ms, GET /units (50 units) ≥ 1/6; medians of 3 runs, with min–max.

const RUNS = 3;
const LIST_UNITS = 50;
type ReadCase = { name: string; path: string; token: string; fraction: number };
type Load = {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  requests: number;
  /** The measured process's CPU share of one core. */
  cpu?: number;
  /** Its CPU in µs per request answered. */
  cpuUs?: number | null;
};

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
/** "median (min–max)" rounded to `digits` decimals. */
function spread(xs: number[], digits: number): string {
  const f = (x: number) => x.toFixed(digits);
  return `${f(median(xs))} (${f(Math.min(...xs))}–${f(Math.max(...xs))})`;
}

/** The ceiling app in its own process on the server's core. */
async function startCeiling(body: string): Promise<{ url: string; pid: number; stop(): void }> {
  const port = await freePort();
  const child = spawn(
    "taskset",
    [
      "-c",
      "0",
      process.execPath,
      fileURLToPath(new URL("../lib/ceiling-server.ts", import.meta.url)),
    ],
    {
      env: { PATH: process.env.PATH ?? "", CEILING_BODY: body, CEILING_PORT: String(port) },
      stdio: ["ignore", "inherit", "inherit"],
    },
  );
  const url = `http://127.0.0.1:${port}/pepeunit/api/v1/units/ceiling`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(url)).ok) break;
    } catch {}
    if (i > 100 || child.exitCode !== null) throw new Error("the ceiling app did not start");
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, pid: child.pid ?? 0, stop: () => child.kill() };
}

type Json = Record<string, unknown>;

async function call(
  url: string,
  method: string,
  path: string,
  body?: unknown,
  token?: string,
): Promise<Json> {
  const res = await fetch(`${url}/pepeunit/api/v1${path}`, {
    method,
    headers: { "content-type": "application/json", ...(token ? { "x-auth-token": token } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? (JSON.parse(text) as Json) : {};
}

async function load(opts: {
  url: string;
  headers: Record<string, string>;
  connections: number;
  seconds: number;
}): Promise<Load> {
  const result = await autocannon({
    url: opts.url,
    headers: opts.headers,
    connections: opts.connections,
    duration: opts.seconds,
  });
  return {
    rps: Math.round(result.requests.average),
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx,
    requests: result.requests.total,
  };
}

export async function restSuite(
  database: { name: string; url?: string },
  seconds: number,
): Promise<void> {
  console.log(`\n# REST on ${database.name}`);
  const server = await startBenchServer({ databaseUrl: database.url });
  try {
    const api = server.url;
    await call(api, "POST", "/users", {
      login: "bench",
      email: "bench@example.test",
      password: "bench-password",
    });
    const { token } = (await call(api, "POST", "/users/auth", {
      login: "bench",
      password: "bench-password",
    })) as { token: string };
    const fixture = createFixtureRepo();
    const repo = await call(api, "POST", "/repos", { name: "bench", url: fixture.url }, token);
    await call(api, "PATCH", `/repos/${repo.uuid}`, { default_branch: "main" }, token);
    const unit = await call(
      api,
      "POST",
      "/units",
      { repo_uuid: repo.uuid, name: `bench-${Date.now()}` },
      token,
    );
    const env = (await call(api, "GET", `/units/env/${unit.uuid}`, undefined, token)) as {
      PU_AUTH_TOKEN: string;
    };
    const unitToken = env.PU_AUTH_TOKEN;
    // GET /units answers a page of 50 units (the UI's list, a device's query).
    for (let i = 1; i < LIST_UNITS; i++) {
      await call(
        api,
        "POST",
        "/units",
        { repo_uuid: repo.uuid, name: `bench-${Date.now()}-${i}` },
        token,
      );
    }
    const unitBody = await fetch(`${api}/pepeunit/api/v1/units/${unit.uuid}`, {
      headers: { "x-auth-token": token },
    }).then((r) => r.text());
    const ceiling = await startCeiling(unitBody);
    try {
      const reads: ReadCase[] = [
        { name: "GET /units/{uuid}", path: `/units/${unit.uuid}`, token, fraction: 1 / 3 },
        {
          name: "GET /units/env/{uuid}",
          path: `/units/env/${unit.uuid}`,
          token: unitToken,
          fraction: 1 / 3,
        },
        {
          name: `GET /units (${LIST_UNITS} units)`,
          path: `/units?limit=${LIST_UNITS}`,
          token,
          fraction: 1 / 6,
        },
      ];
      const runs: Array<{ ceiling: Load; reads: Load[] }> = [];
      for (let run = 0; run < RUNS; run++) {
        // Ceiling and reads back to back in each run: their ratio is what noise spares.
        const ceilingCpu = cpuMeter([ceiling.pid]);
        const top_ = await load({ url: ceiling.url, headers: {}, connections: 10, seconds });
        const top = { ...top_, cpuUs: usPerUnit(ceilingCpu(), top_.requests) };
        const reads_: Load[] = [];
        for (const c of reads) {
          const before = processStats(server.pid);
          const r = await load({
            url: `${api}/pepeunit/api/v1${c.path}`,
            headers: { "x-auth-token": c.token },
            connections: 10,
            seconds,
          });
          const after = processStats(server.pid);
          const cpuS = after.cpuSeconds - before.cpuSeconds;
          reads_.push({ ...r, cpu: cpuS / seconds, cpuUs: usPerUnit(cpuS, r.requests) });
        }
        runs.push({ ceiling: top, reads: reads_ });
      }
      const ceilingRps = runs.map((r) => r.ceiling.rps);
      record({
        suite: "rest",
        case: "ceiling (bare Hono, same body)",
        database: database.name,
        metric: {
          "req/s": spread(ceilingRps, 0),
          "p99 ms": spread(
            runs.map((r) => r.ceiling.p99),
            1,
          ),
          errors: sum(runs.map((r) => r.ceiling.errors)),
          [CPU_PER_UNIT]: medianOf(runs.map((r) => r.ceiling.cpuUs ?? null)),
          [WORK_UNIT]: "request answered (the ceiling app's process)",
        },
      });
      reads.forEach((c, i) => {
        const of = (f: (l: Load) => number) => runs.map((r) => f(r.reads[i] as Load));
        const ratios = runs.map((r) => (r.reads[i] as Load).rps / r.ceiling.rps);
        const p99 = of((l) => l.p99);
        const errors = sum(of((l) => l.errors));
        record({
          suite: "rest",
          case: c.name,
          database: database.name,
          metric: {
            "req/s": spread(
              of((l) => l.rps),
              0,
            ),
            "of ceiling": spread(ratios, 2),
            "p99 ms": spread(p99, 1),
            errors,
            "server cpu": `${Math.round(median(of((l) => l.cpu ?? 0)) * 100)}%`,
            [CPU_PER_UNIT]: medianOf(runs.map((r) => (r.reads[i] as Load).cpuUs ?? null)),
            [WORK_UNIT]: "request answered",
          },
          goal: `>= 1/${Math.round(1 / c.fraction)} of the ceiling${c.fraction > 0.2 ? ", p99 < 10 ms" : ""} (medians of ${RUNS})`,
          met:
            median(ratios) >= c.fraction && (c.fraction < 0.2 || median(p99) < 10) && errors === 0,
        });
      });
    } finally {
      ceiling.stop();
    }

    // The archive build: CPU in compression, not in the read path; one run.
    const before = processStats(server.pid);
    const r = await load({
      url: `${api}/pepeunit/api/v1/units/firmware/tgz/${unit.uuid}`,
      headers: { "x-auth-token": unitToken },
      connections: 4,
      seconds,
    });
    const after = processStats(server.pid);
    record({
      suite: "rest",
      case: "GET /units/firmware/tgz/{uuid}",
      database: database.name,
      metric: {
        "req/s": r.rps,
        "p50 ms": r.p50,
        "p99 ms": r.p99,
        errors: r.errors,
        "server cpu": `${Math.round(((after.cpuSeconds - before.cpuSeconds) / seconds) * 100)}%`,
        "rss MB": Math.round(after.rssBytes / 1024 / 1024),
        [CPU_PER_UNIT]: usPerUnit(after.cpuSeconds - before.cpuSeconds, r.requests),
        [WORK_UNIT]: "archive answered",
      },
    });
  } finally {
    await server.stop();
  }
}
