import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { type DestinationStream, pino } from "pino";
import { type Config, loadConfig } from "../../src/config.ts";
import { API_PREFIX } from "../../src/http/app.ts";
import { type Instance, startInstance } from "../../src/instance.ts";
import { createTestDatabase } from "./database.ts";
import { freePort } from "./ports.ts";

export type TestInstance = Instance & {
  dir: string;
  api: ApiClient;
  /** mqtt://127.0.0.1:<port> of the instance's broker (the port env.json's PU_MQTT_PORT names). */
  mqttUrl: string;
  close(): Promise<void>;
};

/**
 * Cheap password hashes keep the suite fast (the default, 2^16, costs 64 MiB each); a
 * test that needs the default passes `PEPEUNIT_SCRYPT_LOG_N: undefined`.
 */
export const TEST_SCRYPT_LOG_N = "10";

/** Collects an instance's log lines (pass `stream` as startTestInstance's logStream). */
export function captureLogs(): { stream: Writable; text(): string } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { stream, text: () => lines.join("") };
}

/** The environment of a test instance on loopback (a free MQTT port, the HTTP port chosen at bind). */
export async function testInstanceEnv(): Promise<Record<string, string | undefined>> {
  return {
    PATH: process.env.PATH,
    PEPEUNIT_DOMAIN: "localhost:8080",
    PEPEUNIT_HTTP_HOST: "127.0.0.1",
    PEPEUNIT_HTTP_PORT: "0",
    PEPEUNIT_MQTT_BIND_HOST: "127.0.0.1",
    PEPEUNIT_MQTT_PORT: String(await freePort()),
    PEPEUNIT_GIT_ALLOW_LOCAL: "true",
    PEPEUNIT_LOG_LEVEL: process.env.PEPEUNIT_TEST_LOG_LEVEL ?? "silent",
    PEPEUNIT_SCRYPT_LOG_N: TEST_SCRYPT_LOG_N,
  };
}

/**
 * Starts an instance on ports testInstanceEnv() found free; another test worker may take
 * one between the check and the listen, so EADDRINUSE means new ports and another try.
 */
export async function startOnFreePorts(
  env: () => Promise<Record<string, string | undefined>>,
  start: (config: Config) => Promise<Instance>,
): Promise<Instance> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start(loadConfig(await env()));
    } catch (err) {
      if ((err as { code?: string }).code !== "EADDRINUSE" || attempt >= 5) throw err;
    }
  }
}

/**
 * A real instance on a random loopback port with its own data dir, clones and database.
 * The MQTT port is chosen before start (env.json must carry the real one, so binding
 * port 0 will not do); a port taken in between is retried with another.
 */
export async function startTestInstance(
  env: Record<string, string | undefined> = {},
  opts: {
    /**
     * Another instance whose database and secrets this one uses (a restart, a second
     * process of one installation); the database stays open at close().
     */
    shareWith?: Instance;
    /** Where the instance's log lines (JSON) go, at PEPEUNIT_LOG_LEVEL (tests set it). */
    logStream?: DestinationStream;
  } = {},
): Promise<TestInstance> {
  const dir = await mkdtemp(path.join(tmpdir(), "pepeunit-test-"));
  const database = opts.shareWith?.deps.database ?? (await createTestDatabase());
  const ownsDatabase = !opts.shareWith;
  const shared = opts.shareWith?.deps.config;
  const secrets = shared
    ? {
        PEPEUNIT_SECRET_KEY: Buffer.from(shared.secretKey).toString("base64"),
        PEPEUNIT_ENCRYPT_KEY: Buffer.from(shared.encryptKey).toString("base64"),
      }
    : {};
  const started = await startOnFreePorts(
    async () => ({
      ...(await testInstanceEnv()),
      PEPEUNIT_DATA_DIR: path.join(dir, "data"),
      PEPEUNIT_REPOSITORIES_DIR: path.join(dir, "repositories"),
      ...secrets,
      ...env,
    }),
    (config) =>
      startInstance(config, {
        database,
        logger: opts.logStream
          ? pino({ level: config.logLevel }, opts.logStream)
          : pino({ level: config.logLevel }),
      }),
  ).catch(async (err: unknown) => {
    if (ownsDatabase) await database.close();
    throw err;
  });
  return {
    ...started,
    dir,
    api: createApiClient(started.httpUrl),
    mqttUrl: `mqtt://127.0.0.1:${started.broker.tcpPort}`,
    async close() {
      await started.stop();
      if (ownsDatabase) await database.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

// `any` in this file: API bodies are untyped JSON in tests; each test asserts the shape it reads.
export type ApiResponse<T = any> = { status: number; body: T; headers: Headers };

export type ApiClient = {
  request<T = any>(
    method: string,
    path: string,
    opts?: { token?: string; body?: unknown; headers?: Record<string, string> },
  ): Promise<ApiResponse<T>>;
  get<T = any>(path: string, token?: string): Promise<ApiResponse<T>>;
  post<T = any>(path: string, body?: unknown, token?: string): Promise<ApiResponse<T>>;
  patch<T = any>(path: string, body?: unknown, token?: string): Promise<ApiResponse<T>>;
  delete<T = any>(path: string, token?: string): Promise<ApiResponse<T>>;
};

/** Real HTTP against the API prefix; JSON in, JSON (or text) out. */
export function createApiClient(baseUrl: string): ApiClient {
  async function request(
    method: string,
    p: string,
    opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
  ) {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.token) headers["x-auth-token"] = opts.token;
    let body: string | undefined;
    if (opts.body !== undefined) {
      headers["content-type"] = "application/json";
      body = typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body);
    }
    const res = await fetch(
      `${baseUrl}${p.startsWith("/pepeunit") || p.startsWith("/healthz") ? "" : API_PREFIX}${p}`,
      { method, headers, body },
    );
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {}
    return { status: res.status, body: parsed, headers: res.headers };
  }
  return {
    request,
    get: (p, token) => request("GET", p, { token }),
    post: (p, body, token) => request("POST", p, { token, body }),
    patch: (p, body, token) => request("PATCH", p, { token, body }),
    delete: (p, token) => request("DELETE", p, { token }),
  } as ApiClient;
}

/** Registers and logs in a user; the first one of an instance is its admin. */
export async function createUser(
  api: ApiClient,
  login: string,
): Promise<{ uuid: string; token: string }> {
  const reg = await api.post("/users", {
    login,
    email: `${login}@example.test`,
    password: `pw-${login}-secret`,
  });
  if (reg.status !== 201)
    throw new Error(`register ${login}: ${reg.status} ${JSON.stringify(reg.body)}`);
  const auth = await api.post("/users/auth", { login, password: `pw-${login}-secret` });
  if (auth.status !== 200)
    throw new Error(`auth ${login}: ${auth.status} ${JSON.stringify(auth.body)}`);
  return { uuid: reg.body.uuid, token: auth.body.token };
}
