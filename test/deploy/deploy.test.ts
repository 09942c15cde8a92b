import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { WEBSOCKET_PATH } from "../../src/broker/broker.ts";
import { startTestInstance } from "../helpers/instance.ts";

// CI cannot run Docker here: these checks keep the Dockerfile, compose.yaml and
// the systemd unit in step with how the README and .ci/run install and start
// the instance, and with the code (health route, ports, directories).

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const read = (f: string) => readFile(path.join(ROOT, f), "utf8");

type Instruction = { op: string; args: string };

/** Dockerfile instructions, continuation lines joined, comments dropped. */
function dockerInstructions(text: string): Instruction[] {
  const joined = text
    .split("\n")
    .filter((l) => !/^\s*#/.test(l))
    .join("\n")
    .replace(/\\\n/g, " ");
  return joined
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => {
      const [op = "", ...rest] = l.split(/\s+/);
      return { op: op.toUpperCase(), args: rest.join(" ") };
    });
}

/** systemd unit file: section → key → values (keys may repeat). */
function unitFile(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current = new Map<string, string[]>();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#") || line.startsWith(";")) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section?.[1]) {
      current = new Map();
      sections.set(section[1], current);
      continue;
    }
    const eq = line.indexOf("=");
    const key = line.slice(0, eq);
    current.set(key, [...(current.get(key) ?? []), line.slice(eq + 1)]);
  }
  return sections;
}

type ComposeService = {
  profiles?: string[];
  image?: string;
  build?: string;
  ports?: string[];
  volumes?: string[];
  command?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition?: string; required?: boolean }>;
  healthcheck?: { test?: string[] };
};

/** compose.yaml with its YAML merge keys (`<<: *cluster-node`) applied, as Compose does. */
async function readCompose(): Promise<{
  services: Record<string, ComposeService>;
  volumes: Record<string, unknown>;
}> {
  return parseYaml(await read("compose.yaml"), { merge: true });
}

/** haproxy.cfg: section header ("frontend http") → its lines, trimmed, comments dropped. */
function haproxySections(text: string): Map<string, string[]> {
  const sections = new Map<string, string[]>();
  let current: string[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*$/, "").trim();
    if (!line) continue;
    if (!/^\s/.test(raw)) {
      current = [];
      sections.set(line, current);
    } else current.push(line.replace(/\s+/g, " "));
  }
  return sections;
}

/** The install command of .ci/run (`npm ci …`), the one the image must use. */
async function ciInstall(): Promise<string> {
  const line = (await read(".ci/run")).split("\n").find((l) => /^npm ci\b/.test(l.trim()));
  if (!line) throw new Error(".ci/run has no `npm ci` line");
  return line.trim();
}

describe("Dockerfile", () => {
  it("builds on Node 24 Debian slim in stages, installs as CI does and starts as the README says", async () => {
    const ins = dockerInstructions(await read("Dockerfile"));
    const froms = ins.filter((i) => i.op === "FROM").map((i) => i.args);
    expect(froms.length).toBeGreaterThanOrEqual(2);
    const engines = JSON.parse(await read("package.json")).engines.node as string;
    const major = /\d+/.exec(engines)?.[0];
    for (const f of froms) expect(f).toMatch(new RegExp(`^node:${major}-[a-z]+-slim\\b`));
    expect(froms.at(-1)).not.toMatch(/ AS /i);

    const runs = ins.filter((i) => i.op === "RUN").map((i) => i.args);
    expect(runs).toContain(await ciInstall());
    expect(runs.some((r) => /apt-get install\b.*\bgit\b/.test(r))).toBe(true);

    // The README's first command line starts the instance with `npm start`; so does the image.
    const readme = await read("README.md");
    expect(readme).toMatch(/^npm install && npm start\b/m);
    const cmd = ins.filter((i) => i.op === "CMD").at(-1)?.args ?? "";
    expect(JSON.parse(cmd)).toEqual(["npm", "start"]);
    const scripts = JSON.parse(await read("package.json")).scripts as Record<string, string>;
    // Its flags (docs/install.md, Memory) reach every way of running it through here.
    expect(scripts.start).toMatch(/^node (--[\w-]+(=\S+)? )*build\/src\/main\.js$/);
    // The image builds what `npm start` runs before TypeScript is pruned away.
    expect(runs.some((r) => /^npm run build && npm prune --omit=dev\b/.test(r))).toBe(true);
  });

  it("runs as a non-root user with one volume holding the data and the repositories", async () => {
    const ins = dockerInstructions(await read("Dockerfile"));
    const last = ins.findLastIndex((i) => i.op === "FROM");
    const runtime = ins.slice(last);
    const user = runtime.filter((i) => i.op === "USER").at(-1)?.args ?? "root";
    expect(user).not.toMatch(/^(root|0)(:|$)/);
    expect(
      runtime.some((i) => i.op === "RUN" && i.args.includes(`useradd`) && i.args.includes(user)),
    ).toBe(true);

    const volumes = runtime.filter((i) => i.op === "VOLUME");
    expect(volumes).toHaveLength(1);
    const volume = (JSON.parse(volumes[0]?.args ?? "[]") as string[])[0] ?? "";
    const env = runtime
      .filter((i) => i.op === "ENV")
      .map((i) => i.args)
      .join(" ");
    for (const key of ["PEPEUNIT_DATA_DIR", "PEPEUNIT_REPOSITORIES_DIR"]) {
      const dir = new RegExp(`${key}=(\\S+)`).exec(env)?.[1] ?? "";
      expect(dir.startsWith(`${volume}/`)).toBe(true);
    }
    const port = /PEPEUNIT_HTTP_PORT=(\d+)/.exec(env)?.[1];
    const mqtt = /PEPEUNIT_MQTT_PORT=(\d+)/.exec(env)?.[1];
    const exposed = runtime.filter((i) => i.op === "EXPOSE").flatMap((i) => i.args.split(/\s+/));
    expect(exposed).toEqual(expect.arrayContaining([port, mqtt]));
  });

  // Starting a real instance (migrations on the project's database) takes a while on a busy machine.
  it("its HEALTHCHECK command passes against a running instance and fails when nothing answers", {
    timeout: 120_000,
  }, async () => {
    const ins = dockerInstructions(await read("Dockerfile"));
    const health = ins.find((i) => i.op === "HEALTHCHECK")?.args ?? "";
    const [cmd, ...argv] = JSON.parse(health.slice(health.indexOf("CMD ") + 4)) as string[];
    expect(cmd).toBe("node");
    const check = (port: string) =>
      promisify(execFile)(process.execPath, argv, {
        env: { PEPEUNIT_HTTP_PORT: port },
      }).then(
        () => 0,
        (err: { code?: number }) => err.code ?? -1,
      );
    const inst = await startTestInstance();
    const port = new URL(inst.httpUrl).port;
    try {
      expect(await check(port)).toBe(0);
    } finally {
      await inst.close();
    }
    expect(await check(port)).toBe(1);
  });

  it(".dockerignore keeps local state and secrets out of the build context", async () => {
    const lines = (await read(".dockerignore")).split("\n").map((l) => l.trim());
    for (const entry of [".git", "node_modules", "data", ".env", "web/dist"]) {
      expect(lines).toContain(entry);
    }
    // …but not what the image builds and runs from.
    for (const needed of [
      "src",
      "web",
      "migrations",
      "examples",
      "federation-vocab",
      "package.json",
      "tsconfig.build.json",
      "deploy",
    ]) {
      expect(lines.filter((l) => l === needed || l === `${needed}/`)).toEqual([]);
    }
  });
});

describe("compose.yaml", () => {
  it("runs the image with the embedded database by default and PostgreSQL under a profile", async () => {
    const compose = await readCompose();
    const app = compose.services.pepeunit ?? {};
    expect(app.profiles).toBeUndefined();
    expect(app.build).toBe(".");
    const dockerfile = dockerInstructions(await read("Dockerfile"));
    const volume = JSON.parse(dockerfile.find((i) => i.op === "VOLUME")?.args ?? "[]")[0];
    expect(app.volumes).toEqual([`pepeunit:${volume}`]);
    expect(app.environment?.DATABASE_URL).toMatch(/^\$\{DATABASE_URL:-\}$/);
    expect(app.depends_on?.postgres?.required).toBe(false);
    expect(compose.services.postgres?.profiles).toEqual(["postgres", "cluster"]);
    expect(Object.keys(compose.volumes)).toEqual(["pepeunit", "postgres", "cluster", "redis"]);
    // Without a profile only the instance runs: every other service belongs to one.
    const always = Object.entries(compose.services).filter(([, s]) => !s.profiles);
    expect(always.map(([name]) => name)).toEqual(["pepeunit"]);
  });
});

describe("compose.yaml, cluster profile", () => {
  const NODES = ["pepeunit-1", "pepeunit-2"];

  it("has two instance processes, PostgreSQL, Redis and HAProxy", async () => {
    const compose = await readCompose();
    const cluster = Object.entries(compose.services)
      .filter(([, s]) => s.profiles?.includes("cluster"))
      .map(([name]) => name);
    expect(cluster.sort()).toEqual([...NODES, "haproxy", "postgres", "redis"].sort());
    for (const name of NODES) {
      const node = compose.services[name] ?? {};
      expect(node.image).toBe(compose.services.pepeunit?.image);
      expect(node.build).toBe(".");
      expect(node.ports).toBeUndefined(); // reached through HAProxy only
      expect(node.depends_on?.postgres?.condition).toBe("service_healthy");
      expect(node.depends_on?.redis?.condition).toBe("service_healthy");
    }
    expect(compose.services.redis?.healthcheck?.test).toEqual(["CMD", "redis-cli", "ping"]);

    // The command the README, the docs and compose.yaml's header give starts the balancer
    // (and through depends_on, the rest), not the single-process service.
    const command = "docker compose --profile cluster up -d haproxy";
    for (const doc of ["README.md", "docs/cluster.md", "compose.yaml"]) {
      expect(await read(doc), doc).toContain(command);
    }
    const lb = compose.services.haproxy ?? {};
    expect(Object.keys(lb.depends_on ?? {}).sort()).toEqual(NODES);
  });

  it("gives every process the same secrets, domain, PostgreSQL, Redis and repositories, and its own name and data dir", async () => {
    const compose = await readCompose();
    const envs = NODES.map((n) => compose.services[n]?.environment ?? {});
    const [first = {}, second = {}] = envs;
    for (const key of [
      "PEPEUNIT_SECRET_KEY",
      "PEPEUNIT_ENCRYPT_KEY",
      "PEPEUNIT_DOMAIN",
      "DATABASE_URL",
      "PEPEUNIT_CLUSTER_REDIS_URL",
      "PEPEUNIT_REPOSITORIES_DIR",
    ]) {
      expect(first[key], key).toBeTruthy();
      expect(second[key], key).toBe(first[key]);
    }
    // The secrets come from the operator (Compose's .env), never generated per process.
    expect(first.PEPEUNIT_SECRET_KEY).toMatch(/^\$\{PEPEUNIT_SECRET_KEY\b/);
    expect(first.PEPEUNIT_ENCRYPT_KEY).toMatch(/^\$\{PEPEUNIT_ENCRYPT_KEY\b/);
    for (const name of NODES) {
      const command = (compose.services[name]?.command ?? []).join(" ");
      expect(command).toMatch(
        /test -n "\$\$PEPEUNIT_SECRET_KEY" && test -n "\$\$PEPEUNIT_ENCRYPT_KEY"/,
      );
      expect(command).toMatch(/exec npm start$/);
    }

    // The database and Redis are the services of this file.
    const pg = compose.services.postgres?.environment ?? {};
    const db = new URL(String(first.DATABASE_URL).replace(/\$\{POSTGRES_PASSWORD:-\w+\}/, "pw"));
    expect(db.protocol).toBe("postgres:");
    expect([db.hostname, db.port, db.username, db.pathname]).toEqual([
      "postgres",
      "5432",
      pg.POSTGRES_USER,
      `/${pg.POSTGRES_DB}`,
    ]);
    const redis = new URL(String(first.PEPEUNIT_CLUSTER_REDIS_URL));
    expect([redis.protocol, redis.hostname, redis.port]).toEqual(["redis:", "redis", "6379"]);

    // One volume shared by all: the clones in one place, each data dir apart inside it.
    const volumes = NODES.map((n) => compose.services[n]?.volumes ?? []);
    expect(volumes[0]).toHaveLength(1);
    expect(volumes[1]).toEqual(volumes[0]);
    const [volume = "", mount = ""] = String(volumes[0]?.[0]).split(":");
    expect(volume).toBe("cluster");
    expect(String(first.PEPEUNIT_REPOSITORIES_DIR).startsWith(`${mount}/`)).toBe(true);
    const names = envs.map((e) => e.PEPEUNIT_NODE_NAME);
    const dataDirs = envs.map((e) => String(e.PEPEUNIT_DATA_DIR));
    expect(new Set(names).size).toBe(NODES.length);
    expect(new Set(dataDirs).size).toBe(NODES.length);
    for (const dir of dataDirs) {
      expect(dir.startsWith(`${mount}/`)).toBe(true);
      expect(dir.startsWith(`${first.PEPEUNIT_REPOSITORIES_DIR}/`)).toBe(false);
    }

    // Only variables the instance knows (.env.example lists every one).
    const example = await read(".env.example");
    const known = new Set([...example.matchAll(/^#?\s*([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]));
    const unknown = envs.flatMap((e) => Object.keys(e)).filter((k) => !known.has(k));
    expect(unknown).toEqual([]);
  });

  it("puts HAProxy in front: every port to every process, checked on /healthz", async () => {
    const compose = await readCompose();
    const lb = compose.services.haproxy ?? {};
    const [source = "", target = ""] = String(lb.volumes?.[0]).split(":");
    expect(target).toBe("/usr/local/etc/haproxy/haproxy.cfg");
    const cfg = haproxySections(await read(source));
    const dockerfile = dockerInstructions(await read("Dockerfile"));
    const env = dockerfile
      .filter((i) => i.op === "ENV")
      .map((i) => i.args)
      .join(" ");
    const port = (key: string) => new RegExp(`${key}=(\\d+)`).exec(env)?.[1] ?? "";
    const http = port("PEPEUNIT_HTTP_PORT");
    const mqtt = port("PEPEUNIT_MQTT_PORT");
    const mqtts = "8883"; // PEPEUNIT_MQTTS_PORT's default (config.ts); EXPOSEd by the image
    expect(
      dockerfile.filter((i) => i.op === "EXPOSE").flatMap((i) => i.args.split(/\s+/)),
    ).toContain(mqtts);
    expect(lb.ports).toEqual([`${http}:${http}`, `${mqtt}:${mqtt}`, `${mqtts}:${mqtts}`]);

    const frontend = (bind: string) =>
      [...cfg.entries()].find(
        ([name, lines]) => name.startsWith("frontend ") && lines.includes(`bind :${bind}`),
      );
    const backendsOf = (lines: string[]) =>
      lines.flatMap((l) => /^(?:default_backend|use_backend) (\S+)/.exec(l)?.[1] ?? []);
    const expected: [string, string, string][] = [
      [http, "http", http],
      [mqtt, "tcp", mqtt],
      [mqtts, "tcp", mqtts],
    ];
    for (const [bind, mode, target] of expected) {
      const [, lines = []] = frontend(bind) ?? [];
      expect(lines, `frontend on ${bind}`).toContain(`mode ${mode}`);
      const backends = backendsOf(lines);
      expect(backends.length).toBeGreaterThan(0);
      for (const b of backends) {
        const body = cfg.get(`backend ${b}`) ?? [];
        expect(body, b).toContain(`mode ${mode}`);
        const servers = body.filter((l) => l.startsWith("server "));
        expect(servers.map((l) => l.split(/\s+/)[2])).toEqual(NODES.map((n) => `${n}:${target}`));
        expect(servers.every((l) => /\bcheck\b/.test(l))).toBe(true);
        // Healthy means GET /healthz answers 200, asked on the HTTP port.
        const checks = body.join("\n");
        expect(checks).toMatch(/GET \/healthz|uri \/healthz/);
        if (target !== http)
          expect(checks).toMatch(new RegExp(`check port ${http}|connect port ${http}`));
      }
    }
    // WebSocket (MQTT in the browser) and the live channel are long-lived: their own timeouts.
    const [, httpFront = []] = frontend(http) ?? [];
    const acl = httpFront.find((l) => l.startsWith("acl long_lived ")) ?? "";
    expect(acl.split(/\s+/)).toEqual(
      expect.arrayContaining([WEBSOCKET_PATH, "/pepeunit/api/v1/live"]),
    );
    expect(cfg.get("backend http_long")).toEqual(expect.arrayContaining(["timeout tunnel 1h"]));
    // The processes trust X-Forwarded-For only because HAProxy sets it (never appends to it).
    expect(httpFront).toContain("http-request set-header X-Forwarded-For %[src]");
  });

  it("its haproxy.cfg passes haproxy -c where HAProxy is installed", async () => {
    const run = promisify(execFile);
    const found = await run("haproxy", ["-v"]).then(
      () => true,
      () => false,
    );
    if (!found) return; // not a requirement of CI; the checks above still run
    const result = await run("haproxy", [
      "-c",
      "-f",
      path.join(ROOT, "deploy/cluster/haproxy.cfg"),
    ]);
    const out = `${result.stdout}${result.stderr}`;
    expect(out).toMatch(/Configuration file is valid/);
    // The processes' names resolve inside Compose's network only; nothing else may warn.
    const warnings = out.split("\n").filter((l) => l.includes("[WARNING]"));
    expect(warnings.filter((l) => !/could not resolve address 'pepeunit-\d+'/.test(l))).toEqual([]);
  });
});

describe("deploy/pepeunit.service", () => {
  it("has the keys a service needs and starts the instance as the README does", async () => {
    const unit = unitFile(await read("deploy/pepeunit.service"));
    const service = unit.get("Service");
    expect(service).toBeDefined();
    const one = (k: string) => service?.get(k)?.at(-1);
    expect(one("User")).toBe("pepeunit");
    expect(one("Restart")).toBe("on-failure");
    expect(one("EnvironmentFile")).toMatch(/^-?\/etc\/pepeunit\//);
    const state = one("StateDirectory");
    expect(state).toBe("pepeunit");
    const envs = service?.get("Environment") ?? [];
    for (const key of ["PEPEUNIT_DATA_DIR", "PEPEUNIT_REPOSITORIES_DIR"]) {
      const value = envs.find((e) => e.startsWith(`${key}=`))?.split("=")[1] ?? "";
      expect(value.startsWith(`/var/lib/${state}/`)).toBe(true);
    }
    expect(one("ExecStart")).toMatch(/^\/\S+ (npm start)$/);
    expect(unit.get("Install")?.get("WantedBy")).toEqual(["multi-user.target"]);
  });

  it("passes systemd-analyze verify where systemd is installed", async () => {
    const run = promisify(execFile);
    const found = await run("systemd-analyze", ["--version"]).then(
      () => true,
      () => false,
    );
    if (!found) return; // not every CI machine has systemd; the key checks above still run
    const { stderr } = await run("systemd-analyze", [
      "verify",
      path.join(ROOT, "deploy/pepeunit.service"),
    ]);
    expect(stderr).toBe("");
  });
});
