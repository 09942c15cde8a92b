import autocannon from "autocannon";
import { createFixtureRepo } from "../../test/helpers/git-fixtures.ts";
import { processStats } from "../lib/process-stats.ts";
import { record } from "../lib/report.ts";
import { startBenchServer } from "../lib/server.ts";

// REST reads and archive builds against a server pinned to one core.
// Goal (issue 2): ≥ 3 000 req/s with p99 < 20 ms for the reads.

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
}) {
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

    const cases = [
      {
        name: "GET /units/{uuid}",
        path: `/units/${unit.uuid}`,
        token,
        connections: 10,
        goal: true,
      },
      {
        name: "GET /units/env/{uuid}",
        path: `/units/env/${unit.uuid}`,
        token: unitToken,
        connections: 10,
        goal: true,
      },
      {
        name: "GET /units/firmware/tgz/{uuid}",
        path: `/units/firmware/tgz/${unit.uuid}`,
        token: unitToken,
        connections: 4,
        goal: false,
      },
    ];
    for (const c of cases) {
      const before = processStats(server.pid);
      const r = await load({
        url: `${api}/pepeunit/api/v1${c.path}`,
        headers: { "x-auth-token": c.token },
        connections: c.connections,
        seconds,
      });
      const after = processStats(server.pid);
      const cpu = (after.cpuSeconds - before.cpuSeconds) / seconds;
      record({
        suite: "rest",
        case: c.name,
        database: database.name,
        metric: {
          "req/s": r.rps,
          "p50 ms": r.p50,
          "p99 ms": r.p99,
          errors: r.errors,
          "server cpu": `${Math.round(cpu * 100)}%`,
          "rss MB": Math.round(after.rssBytes / 1024 / 1024),
        },
        ...(c.goal
          ? {
              goal: ">= 3000 req/s, p99 < 20 ms",
              met: r.rps >= 3000 && r.p99 < 20 && r.errors === 0,
            }
          : {}),
      });
    }
  } finally {
    await server.stop();
  }
}
