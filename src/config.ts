import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { hostname } from "node:os";
import path from "node:path";
import { z } from "zod";
import { DEFAULT_SHARED_BUFFERS_MB } from "./db/pglite-open.ts";

// The only module that reads process.env: everything else receives a Config.

const bool = z
  .enum(["1", "0", "true", "false", "yes", "no", "on", "off", ""])
  .transform((v) => ["1", "true", "yes", "on"].includes(v));

const base64Key = z
  .string()
  .refine((s) => Buffer.from(s, "base64").length === 32, "must be base64 of 32 bytes");

/** Unset and empty (as in .env.example) both mean "not given". */
const optionalText = z
  .string()
  .optional()
  .transform((v) => (v ? v : undefined));

/** An IP address or a CIDR block (`10.0.0.0/8`, `fd00::/8`). */
function isIpOrCidr(entry: string): boolean {
  const [addr, bits, extra] = entry.split("/");
  if (extra !== undefined || !addr) return false;
  const family = isIP(addr);
  if (!family) return false;
  if (bits === undefined) return true;
  const n = Number(bits);
  return /^\d{1,3}$/.test(bits) && n <= (family === 4 ? 32 : 128);
}

const ipList = z
  .string()
  .default("")
  .transform((v) =>
    v
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean),
  )
  .refine((list) => list.every(isIpOrCidr), "comma-separated IP addresses or CIDR blocks");

const envSchema = z.object({
  PEPEUNIT_DOMAIN: z
    .string()
    .regex(/^[A-Za-z0-9.-]+(:\d{1,5})?$/, "host or host:port")
    .optional(),
  PEPEUNIT_HTTP_TYPE: z.enum(["http", "https"]).default("http"),
  PEPEUNIT_HTTP_HOST: z.string().default("0.0.0.0"),
  PEPEUNIT_HTTP_PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  PEPEUNIT_MQTT_HOST: z.string().optional(),
  PEPEUNIT_MQTT_PORT: z.coerce.number().int().min(0).max(65535).default(1883),
  PEPEUNIT_MQTT_BIND_HOST: z.string().default("0.0.0.0"),
  PEPEUNIT_MQTTS_PORT: z.coerce.number().int().min(0).max(65535).default(8883),
  PEPEUNIT_TLS_CERT: optionalText,
  PEPEUNIT_TLS_KEY: optionalText,
  PEPEUNIT_MQTT_MAX_PAYLOAD: z.coerce
    .number()
    .int()
    .min(1024)
    .max(64 * 1024 * 1024)
    .default(262144),
  PEPEUNIT_MQTT_MAX_MSG_PER_S: z.coerce.number().positive().default(100),
  // Device topics have 5 levels (D/output_base_topic/U/state/pepeunit); Aedes caps at 100.
  PEPEUNIT_MQTT_MAX_TOPIC_LEVELS: z.coerce.number().int().min(5).max(100).default(10),
  PEPEUNIT_LOG_RETENTION_H: z.coerce.number().positive().default(24),
  PEPEUNIT_DATA_DIR: z.string().default("./data"),
  PEPEUNIT_REPOSITORIES_DIR: z.string().default("./repositories"),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, "must be a postgres:// URL")
    .optional()
    .or(z.literal("").transform(() => undefined)),
  // The embedded database's page cache (PostgreSQL's shared_buffers), held in memory for good.
  PEPEUNIT_PGLITE_SHARED_BUFFERS_MB: z.coerce
    .number()
    .int()
    .min(1)
    .max(4096)
    .default(DEFAULT_SHARED_BUFFERS_MB),
  // PGlite in a worker thread: its statements do not block the event loop (MQTT, HTTP).
  PEPEUNIT_PGLITE_THREAD: bool.default(true),
  PEPEUNIT_MAX_REPO_SIZE_MB: z.coerce.number().positive().default(10),
  PEPEUNIT_GIT_ALLOW_LOCAL: bool.default(false),
  // Comma-separated directories; when set, file:// sources must lie inside one of them.
  PEPEUNIT_GIT_LOCAL_ROOTS: optionalText,
  PEPEUNIT_MAX_FIRMWARE_SIZE_MB: z.coerce.number().positive().default(10),
  PEPEUNIT_SECRET_KEY: base64Key.optional(),
  PEPEUNIT_ENCRYPT_KEY: base64Key.optional(),
  PEPEUNIT_SMTP_URL: z.string().optional(),
  PEPEUNIT_MAIL_FROM: z.string().default("Pepeunit <pepeunit@localhost>"),
  // scrypt cost of new password hashes: N = 2^LOG_N (16: 64 MiB per hash with r=8).
  PEPEUNIT_SCRYPT_LOG_N: z.coerce.number().int().min(4).max(20).default(16),
  // Reverse proxies whose X-Forwarded-For names the client (login throttling per address).
  PEPEUNIT_TRUSTED_PROXIES: ipList,
  PEPEUNIT_LOG_LEVEL: z
    .enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"])
    .default("info"),
  PEPEUNIT_SYNC_TICK_S: z.coerce.number().positive().default(30),
  PEPEUNIT_STATE_SEND_INTERVAL_S: z.coerce.number().int().positive().default(60),
  // Federation (src/federation/): peers on loopback/private addresses only when allowed (labs, tests).
  PEPEUNIT_FEDERATION_ALLOW_LOCAL: bool.default(false),
  PEPEUNIT_FEDERATION_BATCH_MS: z.coerce.number().min(0).max(10_000).default(5),
  PEPEUNIT_FEDERATION_READING_FORMAT: z.coerce.number().int().min(1).max(2).default(2),
  PEPEUNIT_FEDERATION_RETRY_MAX_S: z.coerce.number().positive().default(300),
  PEPEUNIT_FEDERATION_MAX_INBOX_KB: z.coerce.number().int().min(1).max(65_536).default(1024),
  // Value history (src/history/): how often queued values are processed and written.
  PEPEUNIT_HISTORY_FLUSH_MS: z.coerce.number().int().min(50).max(1000).default(500),
  PEPEUNIT_MAX_BODY_KB: z.coerce.number().int().min(1).max(1_048_576).default(1024),
  // Telegram bot (src/telegram/): off unless a token is given.
  PEPEUNIT_TELEGRAM_BOT_TOKEN: optionalText,
  PEPEUNIT_TELEGRAM_API_ROOT: z
    .url({ protocol: /^https?$/ })
    .optional()
    .or(z.literal("").transform(() => undefined)),
  PEPEUNIT_TELEGRAM_MODE: z.enum(["polling", "webhook"]).default("polling"),
  // Prometheus metrics (src/metrics/): GET /metrics answers only when a token is set.
  PEPEUNIT_METRICS_TOKEN: optionalText,
  // Scheduled backups (src/backup/): off unless a directory and an interval are given.
  PEPEUNIT_BACKUP_DIR: optionalText,
  PEPEUNIT_BACKUP_EVERY_H: z.coerce.number().min(0).default(0),
  PEPEUNIT_BACKUP_KEEP: z.coerce.number().int().min(1).default(7),
  // Cluster mode (src/cluster/): several processes on one PostgreSQL and one Redis.
  PEPEUNIT_CLUSTER_REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, "must be a redis:// or rediss:// URL")
    .optional()
    .or(z.literal("").transform(() => undefined)),
  PEPEUNIT_CLUSTER_NAMESPACE: z
    .string()
    .regex(/^[A-Za-z0-9.:_-]{1,100}$/, "letters, digits and . : _ - (at most 100)")
    .optional()
    .or(z.literal("").transform(() => undefined)),
  PEPEUNIT_NODE_NAME: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,100}$/, "letters, digits and . _ - (at most 100)")
    .optional()
    .or(z.literal("").transform(() => undefined)),
});

export type Config = {
  domain: string;
  httpType: "http" | "https";
  baseUrl: string;
  httpHost: string;
  httpPort: number;
  mqttHost: string;
  mqttPort: number;
  mqttBindHost: string;
  /** MQTT over TLS listens only when both files are given. */
  mqttsPort: number;
  tlsCertFile: string | undefined;
  tlsKeyFile: string | undefined;
  mqttMaxPayloadBytes: number;
  mqttMaxMsgPerS: number;
  mqttMaxTopicLevels: number;
  logRetentionMs: number;
  dataDir: string;
  repositoriesDir: string;
  databaseUrl: string | undefined;
  /** PGlite's shared_buffers (MB): its page cache, the part of its memory that is sized. */
  pgliteSharedBuffersMb: number;
  /** PGlite runs in a worker thread (true) or on the main thread. */
  pgliteThread: boolean;
  maxRepoSizeBytes: number;
  gitAllowLocal: boolean;
  /** With local sources allowed: the only directories file:// may name (undefined: any but ours). */
  gitLocalRoots: string[] | undefined;
  /** Largest unpacked firmware (the trimmed tree of one version) an archive is built from. */
  maxFirmwareSizeBytes: number;
  /** HMAC key for every JWT the instance issues. */
  secretKey: Uint8Array;
  /** AES-GCM key for secrets at rest (credentials, unit env, state storage). */
  encryptKey: Uint8Array;
  smtpUrl: string | undefined;
  mailFrom: string;
  /** scrypt parameters of new password hashes; older hashes are redone at the next login. */
  scrypt: { logN: number; r: number; p: number };
  /** IPs / CIDR blocks of reverse proxies trusted to set X-Forwarded-For. */
  trustedProxies: string[];
  logLevel: z.infer<typeof envSchema>["PEPEUNIT_LOG_LEVEL"];
  syncTickMs: number;
  stateSendIntervalS: number;
  /** PATH handed to child processes (git). */
  childPath: string;
  /** Peers on loopback or private addresses may federate (off: refused, also via DNS). */
  federationAllowLocal: boolean;
  /** Readings for one peer wait at most this long to travel together in one activity. */
  federationBatchMs: number;
  /** Highest readings format announced and sent (1: as instances before format 2 did). */
  federationReadingFormat: 1 | 2;
  /** Upper bound of the delivery retry back-off. */
  federationRetryMaxMs: number;
  /** Largest activity body the inboxes accept. */
  federationMaxInboxBytes: number;
  /** Value history: batch interval; at most this much is lost on a crash (≤ 1 s). */
  historyFlushMs: number;
  /** Largest request body of any other route (src/http/body-limit.ts lists the few larger ones). */
  maxBodyBytes: number;
  /** The Telegram bot; undefined when no token is configured (nothing of it starts). */
  telegram: TelegramConfig | undefined;
  /** Bearer token of GET /metrics (a secret: never logged); undefined: metrics are off. */
  metricsToken: string | undefined;
  /** Where `npm run backup` and the scheduled backups write by default. */
  backupDir: string | undefined;
  /** Scheduled backups: every this many ms (0: none). */
  backupEveryMs: number;
  /** Scheduled backups kept in backupDir; older ones are removed. */
  backupKeep: number;
  /** This process's name in the cluster (and in GET /healthz): unique per process. */
  nodeName: string;
  /** Cluster mode; undefined: one process, the default. */
  cluster: ClusterConfig | undefined;
};

export type ClusterConfig = {
  /** The broker's message fabric, sessions, the event bridge and presence (a secret: never logged). */
  redisUrl: string;
  /** Prefix of every Redis key and channel, so two clusters (or test runs) can share one Redis. */
  namespace: string;
};

export type TelegramConfig = {
  /** A secret: never logged. */
  token: string;
  /** Bot API base URL (Telegram's own by default; a self-hosted Bot API server, tests). */
  apiRoot: string;
  mode: "polling" | "webhook";
};

export class ConfigError extends Error {}

/**
 * Instance secrets live in `<dataDir>/.env` when they are not given: created on
 * first start so a fresh `npm start` works, and never regenerated, because the
 * database content is encrypted with them.
 */
function loadOrCreateSecrets(
  dataDir: string,
  given: { secret?: string; encrypt?: string },
): { secret: string; encrypt: string } {
  const file = path.join(dataDir, ".env");
  const stored = existsSync(file) ? parseDotEnv(readFileSync(file, "utf8")) : {};
  const secret = given.secret ?? stored.PEPEUNIT_SECRET_KEY;
  const encrypt = given.encrypt ?? stored.PEPEUNIT_ENCRYPT_KEY;
  if (secret && encrypt) return { secret, encrypt };
  const created = {
    secret: secret ?? randomBytes(32).toString("base64"),
    encrypt: encrypt ?? randomBytes(32).toString("base64"),
  };
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeFileSync(file, secretsFileText("Generated by Pepeunit on first start", created), {
    mode: 0o600,
  });
  return created;
}

/** KEY=value lines of a .env file (comments and other lines ignored). */
export function parseDotEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^\s*([A-Z_]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (m?.[1] && m[2] !== undefined) out[m[1]] = m[2];
  }
  return out;
}

/** The text of `<dataDir>/.env` holding the instance secrets (also written by a restore). */
export function secretsFileText(origin: string, keys: { secret: string; encrypt: string }): string {
  return [
    `# ${origin}. BACK THIS FILE UP with the database:`,
    "# every secret stored in the database is encrypted with these keys.",
    `PEPEUNIT_SECRET_KEY=${keys.secret}`,
    `PEPEUNIT_ENCRYPT_KEY=${keys.encrypt}`,
    "",
  ].join("\n");
}

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const details = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    throw new ConfigError(`invalid configuration: ${details.join("; ")}`);
  }
  const e = parsed.data;
  if (Boolean(e.PEPEUNIT_TLS_CERT) !== Boolean(e.PEPEUNIT_TLS_KEY)) {
    throw new ConfigError(
      "invalid configuration: PEPEUNIT_TLS_CERT and PEPEUNIT_TLS_KEY must be given together",
    );
  }
  if (e.PEPEUNIT_CLUSTER_REDIS_URL && !e.DATABASE_URL) {
    throw new ConfigError(
      "invalid configuration: PEPEUNIT_CLUSTER_REDIS_URL needs DATABASE_URL: the processes of a cluster share one PostgreSQL (the embedded PGlite belongs to one process)",
    );
  }
  if (e.PEPEUNIT_CLUSTER_REDIS_URL && !(e.PEPEUNIT_SECRET_KEY && e.PEPEUNIT_ENCRYPT_KEY)) {
    throw new ConfigError(
      "invalid configuration: PEPEUNIT_CLUSTER_REDIS_URL needs PEPEUNIT_SECRET_KEY and PEPEUNIT_ENCRYPT_KEY: every process of a cluster must use the same keys (generated ones would differ per process)",
    );
  }
  const dataDir = path.resolve(e.PEPEUNIT_DATA_DIR);
  const secrets = loadOrCreateSecrets(dataDir, {
    secret: e.PEPEUNIT_SECRET_KEY,
    encrypt: e.PEPEUNIT_ENCRYPT_KEY,
  });
  // Default: reachable from this machine on the HTTP port the instance listens on.
  const domain = e.PEPEUNIT_DOMAIN ?? `localhost:${e.PEPEUNIT_HTTP_PORT}`;
  const domainHost = domain.replace(/:\d+$/, "");
  return {
    domain,
    httpType: e.PEPEUNIT_HTTP_TYPE,
    baseUrl: `${e.PEPEUNIT_HTTP_TYPE}://${domain}`,
    httpHost: e.PEPEUNIT_HTTP_HOST,
    httpPort: e.PEPEUNIT_HTTP_PORT,
    mqttHost: e.PEPEUNIT_MQTT_HOST ?? domainHost,
    mqttPort: e.PEPEUNIT_MQTT_PORT,
    mqttBindHost: e.PEPEUNIT_MQTT_BIND_HOST,
    mqttsPort: e.PEPEUNIT_MQTTS_PORT,
    tlsCertFile: e.PEPEUNIT_TLS_CERT && path.resolve(e.PEPEUNIT_TLS_CERT),
    tlsKeyFile: e.PEPEUNIT_TLS_KEY && path.resolve(e.PEPEUNIT_TLS_KEY),
    mqttMaxPayloadBytes: e.PEPEUNIT_MQTT_MAX_PAYLOAD,
    mqttMaxMsgPerS: e.PEPEUNIT_MQTT_MAX_MSG_PER_S,
    mqttMaxTopicLevels: e.PEPEUNIT_MQTT_MAX_TOPIC_LEVELS,
    logRetentionMs: Math.round(e.PEPEUNIT_LOG_RETENTION_H * 3600 * 1000),
    dataDir,
    repositoriesDir: path.resolve(e.PEPEUNIT_REPOSITORIES_DIR),
    databaseUrl: e.DATABASE_URL,
    pgliteSharedBuffersMb: e.PEPEUNIT_PGLITE_SHARED_BUFFERS_MB,
    pgliteThread: e.PEPEUNIT_PGLITE_THREAD,
    maxRepoSizeBytes: Math.round(e.PEPEUNIT_MAX_REPO_SIZE_MB * 1024 * 1024),
    gitAllowLocal: e.PEPEUNIT_GIT_ALLOW_LOCAL,
    gitLocalRoots: e.PEPEUNIT_GIT_LOCAL_ROOTS?.split(",")
      .map((d) => d.trim())
      .filter(Boolean)
      .map((d) => path.resolve(d)),
    maxFirmwareSizeBytes: Math.round(e.PEPEUNIT_MAX_FIRMWARE_SIZE_MB * 1024 * 1024),
    secretKey: new Uint8Array(Buffer.from(secrets.secret, "base64")),
    encryptKey: new Uint8Array(Buffer.from(secrets.encrypt, "base64")),
    smtpUrl: e.PEPEUNIT_SMTP_URL,
    mailFrom: e.PEPEUNIT_MAIL_FROM,
    scrypt: { logN: e.PEPEUNIT_SCRYPT_LOG_N, r: 8, p: 1 },
    trustedProxies: e.PEPEUNIT_TRUSTED_PROXIES,
    logLevel: e.PEPEUNIT_LOG_LEVEL,
    syncTickMs: e.PEPEUNIT_SYNC_TICK_S * 1000,
    stateSendIntervalS: e.PEPEUNIT_STATE_SEND_INTERVAL_S,
    childPath: env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
    federationAllowLocal: e.PEPEUNIT_FEDERATION_ALLOW_LOCAL,
    federationBatchMs: e.PEPEUNIT_FEDERATION_BATCH_MS,
    federationReadingFormat: e.PEPEUNIT_FEDERATION_READING_FORMAT as 1 | 2,
    federationRetryMaxMs: Math.round(e.PEPEUNIT_FEDERATION_RETRY_MAX_S * 1000),
    federationMaxInboxBytes: e.PEPEUNIT_FEDERATION_MAX_INBOX_KB * 1024,
    historyFlushMs: e.PEPEUNIT_HISTORY_FLUSH_MS,
    maxBodyBytes: e.PEPEUNIT_MAX_BODY_KB * 1024,
    telegram: e.PEPEUNIT_TELEGRAM_BOT_TOKEN
      ? {
          token: e.PEPEUNIT_TELEGRAM_BOT_TOKEN,
          apiRoot: (e.PEPEUNIT_TELEGRAM_API_ROOT ?? "https://api.telegram.org").replace(/\/+$/, ""),
          mode: e.PEPEUNIT_TELEGRAM_MODE,
        }
      : undefined,
    metricsToken: e.PEPEUNIT_METRICS_TOKEN,
    backupDir: e.PEPEUNIT_BACKUP_DIR && path.resolve(e.PEPEUNIT_BACKUP_DIR),
    backupEveryMs: Math.round(e.PEPEUNIT_BACKUP_EVERY_H * 3600 * 1000),
    backupKeep: e.PEPEUNIT_BACKUP_KEEP,
    nodeName: e.PEPEUNIT_NODE_NAME ?? `${hostname()}-${process.pid}`,
    cluster: e.PEPEUNIT_CLUSTER_REDIS_URL
      ? {
          redisUrl: e.PEPEUNIT_CLUSTER_REDIS_URL,
          namespace: e.PEPEUNIT_CLUSTER_NAMESPACE ?? domain,
        }
      : undefined,
  };
}

/**
 * The configuration a restore runs with: the instance secrets given as variables are
 * reported (they must match the backup's), and nothing is created in the data dir
 * (a restore writes its .env from the backup).
 */
export function loadRestoreConfig(env: Record<string, string | undefined> = process.env): {
  config: Config;
  givenSecret: string | undefined;
  givenEncrypt: string | undefined;
} {
  const placeholder = Buffer.alloc(32).toString("base64");
  const config = loadConfig({
    ...env,
    PEPEUNIT_SECRET_KEY: env.PEPEUNIT_SECRET_KEY || placeholder,
    PEPEUNIT_ENCRYPT_KEY: env.PEPEUNIT_ENCRYPT_KEY || placeholder,
  });
  return {
    config,
    givenSecret: env.PEPEUNIT_SECRET_KEY || undefined,
    givenEncrypt: env.PEPEUNIT_ENCRYPT_KEY || undefined,
  };
}
