import autocannon from "autocannon";
import { createFixtureRepo } from "../test/helpers/git-fixtures.ts";
import { monotonicUs, newestProfile, printProfile } from "./lib/cpu-profile.ts";
import { startBenchServer } from "./lib/server.ts";

const path = process.argv[2] ?? "unit";
const server = await startBenchServer({ databaseUrl: process.env.DB, cpuProfile: true });
const api = `${server.url}/pepeunit/api/v1`;
const call = async (m: string, p: string, body?: unknown, token?: string) => {
  const r = await fetch(api + p, { method: m, headers: { "content-type": "application/json", ...(token ? { "x-auth-token": token } : {}) }, body: body === undefined ? undefined : JSON.stringify(body) });
  const t = await r.text();
  return t ? JSON.parse(t) : {};
};
await call("POST", "/users", { login: "bench", email: "b@e.test", password: "bench-password" });
const { token } = await call("POST", "/users/auth", { login: "bench", password: "bench-password" });
const fixture = createFixtureRepo();
const repo = await call("POST", "/repos", { name: "bench", url: fixture.url }, token);
await call("PATCH", `/repos/${repo.uuid}`, { default_branch: "main" }, token);
const unit = await call("POST", "/units", { repo_uuid: repo.uuid, name: `bench-${Date.now()}` }, token);
const env = await call("GET", `/units/env/${unit.uuid}`, undefined, token);
const paths: Record<string, [string, string]> = {
  unit: [`/units/${unit.uuid}`, token],
  env: [`/units/env/${unit.uuid}`, env.PU_AUTH_TOKEN],
};
const [p, t] = paths[path]!;
const fromUs = monotonicUs();
const r = await autocannon({ url: api + p, headers: { "x-auth-token": t }, connections: 10, duration: 5 });
const toUs = monotonicUs();
console.log("rps", r.requests.average, "p99", r.latency.p99);
await server.stop();
printProfile(path, newestProfile(server.cpuProfDir!)!, 40, { fromUs, toUs });
