import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
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
    expect(JSON.parse(await read("package.json")).scripts.start).toBe("node src/main.ts");
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
    ]) {
      expect(lines.filter((l) => l === needed || l === `${needed}/`)).toEqual([]);
    }
  });
});

describe("compose.yaml", () => {
  it("runs the image with the embedded database by default and PostgreSQL under a profile", async () => {
    const compose = parseYaml(await read("compose.yaml"));
    const app = compose.services.pepeunit;
    expect(app.profiles).toBeUndefined();
    expect(app.build).toBe(".");
    const dockerfile = dockerInstructions(await read("Dockerfile"));
    const volume = JSON.parse(dockerfile.find((i) => i.op === "VOLUME")?.args ?? "[]")[0];
    expect(app.volumes).toEqual([`pepeunit:${volume}`]);
    expect(app.environment.DATABASE_URL).toMatch(/^\$\{DATABASE_URL:-\}$/);
    expect(app.depends_on.postgres.required).toBe(false);
    expect(compose.services.postgres.profiles).toEqual(["postgres"]);
    expect(Object.keys(compose.volumes)).toEqual(["pepeunit", "postgres"]);
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
