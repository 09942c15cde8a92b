import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import postgres from "postgres";
import { createPostgresDatabase, testDbKind } from "../helpers/database.ts";
import { type ApiClient, createApiClient, TEST_SCRYPT_LOG_N } from "../helpers/instance.ts";
import { freePort } from "../helpers/ports.ts";

// Cluster mode under test: N real `node src/main.ts` processes on one fresh PostgreSQL
// database and the machine's Redis (under a namespace of their own, so test runs can
// share it), each with its own HTTP and MQTT ports and data dir, sharing the instance
// secrets, the domain and the clones directory. Processes can be killed (also -9) and
// restarted; their output is kept for failure messages.

/** The roles one process of a cluster holds (src/cluster/ leadership). */
export const CLUSTER_ROLES = [
  "sync",
  "ota",
  "federation-queue",
  "history",
  "telegram",
  "backups",
] as const;

export type Healthz = {
  status: string;
  database: string;
  node: string;
  roles: string[];
  cluster: Array<{ node: string; roles: string[]; last_seen: string | number }>;
};

export type ClusterNode = {
  /** PEPEUNIT_NODE_NAME of the process (P1, P2, …). */
  name: string;
  httpUrl: string;
  mqttUrl: string;
  mqttPort: number;
  api: ApiClient;
  /** True from a successful start until kill(). */
  alive: boolean;
};

export type Cluster = {
  nodes: ClusterNode[];
  /** postgres:// URL of the shared database (for a test that moves time, e.g. next_sync_at). */
  databaseUrl: string;
  namespace: string;
  /** The domain every process announces (device topics start with it). */
  domain: string;
  node(name: string): ClusterNode;
  healthz(name: string): Promise<Healthz>;
  /** Sends a signal and waits for the process to exit. */
  kill(name: string, signal?: NodeJS.Signals): Promise<void>;
  /** Starts a stopped process again, same ports, data dir and environment. */
  restart(name: string): Promise<void>;
  /** The last output of every process that wrote any (for a failing test's message). */
  logs(): string;
  close(): Promise<void>;
};

/**
 * Why the cluster tests cannot run here, or undefined. Cluster mode needs PostgreSQL
 * (the embedded PGlite belongs to one process), so the PGlite project skips them.
 */
export function clusterSkipReason(): string | undefined {
  if (testDbKind() !== "postgres")
    return "cluster mode needs PostgreSQL: these tests run in the postgres project (PEPEUNIT_TEST_DB=postgres)";
  return undefined;
}

export const testRedisUrl = () => process.env.PEPEUNIT_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

const LOG_TAIL = 64 * 1024;
const START_TIMEOUT_MS = 120_000;

type Proc = {
  node: ClusterNode;
  env: Record<string, string>;
  child: ChildProcess | null;
  output: string;
};

export async function startCluster(opts: {
  size: number;
  /** Extra environment for every process. */
  env?: Record<string, string>;
  /** Domain shared by the processes (device topics start with it). */
  domain?: string;
}): Promise<Cluster> {
  const redisUrl = testRedisUrl();
  await assertRedis(redisUrl);
  const dir = await mkdtemp(path.join(tmpdir(), "pepeunit-cluster-"));
  const pg = await createPostgresDatabase();
  const namespace = `pepeunit-test-${randomBytes(6).toString("hex")}`;
  const domain = opts.domain ?? "localhost:8080";
  const shared: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    DATABASE_URL: pg.url,
    PEPEUNIT_CLUSTER_REDIS_URL: redisUrl,
    PEPEUNIT_CLUSTER_NAMESPACE: namespace,
    PEPEUNIT_SECRET_KEY: randomBytes(32).toString("base64"),
    PEPEUNIT_ENCRYPT_KEY: randomBytes(32).toString("base64"),
    PEPEUNIT_DOMAIN: domain,
    PEPEUNIT_REPOSITORIES_DIR: path.join(dir, "repositories"),
    PEPEUNIT_HTTP_HOST: "127.0.0.1",
    PEPEUNIT_MQTT_BIND_HOST: "127.0.0.1",
    PEPEUNIT_GIT_ALLOW_LOCAL: "true",
    PEPEUNIT_SCRYPT_LOG_N: TEST_SCRYPT_LOG_N,
    PEPEUNIT_LOG_LEVEL: process.env.PEPEUNIT_TEST_LOG_LEVEL ?? "silent",
    ...opts.env,
  };
  const procs: Proc[] = [];
  for (let i = 1; i <= opts.size; i++) {
    const name = `P${i}`;
    const [httpPort, mqttPort] = [await freePort(), await freePort()];
    const httpUrl = `http://127.0.0.1:${httpPort}`;
    procs.push({
      node: {
        name,
        httpUrl,
        mqttUrl: `mqtt://127.0.0.1:${mqttPort}`,
        mqttPort,
        api: createApiClient(httpUrl),
        alive: false,
      },
      env: {
        ...shared,
        PEPEUNIT_NODE_NAME: name,
        PEPEUNIT_HTTP_PORT: String(httpPort),
        PEPEUNIT_MQTT_PORT: String(mqttPort),
        PEPEUNIT_DATA_DIR: path.join(dir, `data-${name}`),
      },
      child: null,
      output: "",
    });
  }

  const find = (name: string): Proc => {
    const p = procs.find((x) => x.node.name === name);
    if (!p) throw new Error(`no process ${name} in the cluster`);
    return p;
  };

  async function start(p: Proc): Promise<void> {
    const child = spawn(process.execPath, ["src/main.ts"], {
      cwd: path.resolve(import.meta.dirname, "../.."),
      env: p.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    p.child = child;
    const keep = (d: Buffer) => {
      p.output = (p.output + d.toString()).slice(-LOG_TAIL);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    // A process that dies on its own says so in the failure message.
    child.once("exit", (code, signal) => {
      if (p.child !== child) return;
      p.node.alive = false;
      p.output = `${p.output}\n[${p.node.name} exited on its own: ${code ?? signal}]\n`;
    });
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(
          `${p.node.name} exited (${child.exitCode ?? child.signalCode}) while starting:\n${p.output}`,
        );
      }
      const res = await fetch(`${p.node.httpUrl}/healthz`).catch(() => null);
      if (res?.status === 200) break;
      if (Date.now() > deadline)
        throw new Error(`${p.node.name} not healthy in time:\n${p.output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    p.node.alive = true;
  }

  async function kill(p: Proc, signal: NodeJS.Signals): Promise<void> {
    const child = p.child;
    p.node.alive = false;
    p.child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill(signal);
    await exited;
  }

  async function close(): Promise<void> {
    await Promise.all(procs.map((p) => kill(p, "SIGKILL")));
    await pg.drop().catch(() => undefined);
    await deleteNamespace(redisUrl, namespace).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }

  try {
    // Together, as a deployment starts them (the migrations run under a lock).
    await Promise.all(procs.map(start));
  } catch (err) {
    await close();
    throw err;
  }

  return {
    nodes: procs.map((p) => p.node),
    databaseUrl: pg.url,
    namespace,
    domain,
    node: (name) => find(name).node,
    async healthz(name) {
      const res = await find(name).node.api.get("/healthz");
      if (res.status !== 200)
        throw new Error(`${name} healthz: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body as Healthz;
    },
    kill: (name, signal = "SIGKILL") => kill(find(name), signal),
    async restart(name) {
      const p = find(name);
      await kill(p, "SIGKILL");
      await start(p);
    },
    logs: () =>
      procs
        .filter((p) => p.output)
        .map((p) => `--- ${p.node.name} (${p.node.alive ? "alive" : "stopped"}) ---\n${p.output}`)
        .join("\n"),
    close,
  };
}

/** Fails with a clear message when the test Redis is not there (as a missing PostgreSQL does). */
async function assertRedis(url: string): Promise<void> {
  const redis = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    throw new Error(
      `cluster tests need Redis at ${url} (set PEPEUNIT_TEST_REDIS_URL): ${(err as Error).message}`,
    );
  } finally {
    redis.disconnect();
  }
}

/** Removes every key of the namespace (sessions, presence, …) so nothing outlives the run. */
async function deleteNamespace(url: string, namespace: string): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${namespace}*`, "COUNT", 1000);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}

/** Only for a test that must reach into the shared database (the caller ends it). */
export function clusterSql(cluster: Cluster) {
  return postgres(cluster.databaseUrl, { max: 1, onnotice: () => {} });
}
