import { randomBytes } from "node:crypto";
import type { Config } from "../config.ts";
import { decryptJson } from "../crypto/aes-gcm.ts";
import { signUnitToken } from "../crypto/tokens.ts";
import { unprocessable } from "../http/errors.ts";

// The unit's env.json (device-protocol §2). Key names and value TYPES are a wire
// contract with the published device clients: integers stay numbers, keys are base64.

export type UnitEnv = Record<string, unknown>;
export type EnvEditValue = string | number | boolean;

export const LOG_LEVELS = ["Debug", "Info", "Warning", "Error", "Critical"] as const;

/** Keys only the instance writes: a user edit of one is refused. */
export const INSTANCE_OWNED_KEYS: ReadonlySet<string> = new Set([
  "PU_DOMAIN",
  "PU_HTTP_TYPE",
  "PU_APP_PREFIX",
  "PU_API_ACTUAL_PREFIX",
  "PU_AUTH_TOKEN",
  "PEPEUNIT_TOKEN",
  "PU_COMMIT_VERSION",
  "PU_SECRET_KEY",
  "PU_ENCRYPT_KEY",
  "SYNC_ENCRYPT_KEY",
  "SECRET_KEY",
  "PEPEUNIT_URL",
]);

/** Generated keys a user may tune, with the type the device clients parse them as. */
const EDITABLE_GENERATED: Record<string, "int" | "string" | "logLevel"> = {
  PU_MQTT_HOST: "string",
  PU_MQTT_PORT: "int",
  PU_MQTT_PING_INTERVAL: "int",
  PU_MQTT_KEEPALIVE: "int",
  PU_STATE_SEND_INTERVAL: "int",
  PU_MIN_LOG_LEVEL: "logLevel",
  PU_MAX_LOG_LENGTH: "int",
};

/** Seed-era aliases, present only when the repository's env_example.json lists them. */
const ALIASES = ["PEPEUNIT_URL", "PEPEUNIT_TOKEN", "SYNC_ENCRYPT_KEY", "SECRET_KEY"] as const;

/** What the instance knows about a unit when it (re)builds the env. */
export type EnvInputs = {
  unitUuid: string;
  tokenSalt: string;
  /** 40-hex target commit. */
  commit: string;
  /** env_example.json of the target version. */
  envExample: Record<string, unknown>;
  /** The env stored so far ({} for a new unit). */
  stored: UnitEnv;
  /** User edits, already checked by checkEnvEdits. */
  edits?: Record<string, EnvEditValue>;
};

const randomKey = () => randomBytes(32).toString("base64");

/**
 * Merge order (later wins): env_example defaults → generated → stored → edits.
 * Only env_example and generated keys survive; generated keys stay stable once
 * stored, except PU_COMMIT_VERSION (follows the target) and the token (follows rotation).
 */
export async function buildUnitEnv(config: Config, input: EnvInputs): Promise<UnitEnv> {
  const { stored, envExample } = input;
  const token = await signUnitToken(config.secretKey, input.unitUuid, input.tokenSalt);
  const keepString = (key: string, fresh: () => string): string =>
    typeof stored[key] === "string" && stored[key] !== "" ? (stored[key] as string) : fresh();
  const secretKey = keepString("PU_SECRET_KEY", randomKey);
  const encryptKey = keepString("PU_ENCRYPT_KEY", randomKey);

  const generated: UnitEnv = {
    PU_DOMAIN: config.domain,
    PU_HTTP_TYPE: config.httpType,
    PU_APP_PREFIX: "/pepeunit",
    PU_API_ACTUAL_PREFIX: "/api/v1",
    PU_MQTT_HOST: config.mqttHost,
    PU_MQTT_PORT: config.mqttPort,
    PU_MQTT_PING_INTERVAL: 20,
    PU_MQTT_KEEPALIVE: 60,
    PU_AUTH_TOKEN: token,
    PU_SECRET_KEY: secretKey,
    PU_ENCRYPT_KEY: encryptKey,
    PU_STATE_SEND_INTERVAL: config.stateSendIntervalS,
    PU_MIN_LOG_LEVEL: "Debug",
    PU_MAX_LOG_LENGTH: 64,
    PU_COMMIT_VERSION: input.commit,
  };
  const aliasValues: Record<(typeof ALIASES)[number], string> = {
    PEPEUNIT_URL: config.baseUrl,
    PEPEUNIT_TOKEN: token,
    SYNC_ENCRYPT_KEY: encryptKey,
    SECRET_KEY: secretKey,
  };
  for (const alias of ALIASES) {
    if (Object.hasOwn(envExample, alias)) generated[alias] = aliasValues[alias];
  }

  const env: UnitEnv = { ...envExample, ...generated };
  for (const [key, value] of Object.entries(stored)) {
    if (Object.hasOwn(env, key)) env[key] = value;
  }
  for (const [key, value] of Object.entries(input.edits ?? {})) {
    if (Object.hasOwn(env, key)) env[key] = value;
  }
  // Values that must follow the instance, whatever was stored: the target version,
  // the current token, and aliases that mirror a generated key.
  env.PU_COMMIT_VERSION = input.commit;
  env.PU_AUTH_TOKEN = token;
  if (Object.hasOwn(env, "PEPEUNIT_TOKEN")) env.PEPEUNIT_TOKEN = token;
  if (Object.hasOwn(env, "SYNC_ENCRYPT_KEY")) env.SYNC_ENCRYPT_KEY = encryptKey;
  if (Object.hasOwn(env, "SECRET_KEY")) env.SECRET_KEY = secretKey;
  return env;
}

/** Refuses unknown keys, instance-owned keys and values a device client would misparse. */
export function checkEnvEdits(current: UnitEnv, edits: Record<string, EnvEditValue>): void {
  for (const [key, value] of Object.entries(edits)) {
    if (!Object.hasOwn(current, key)) {
      throw unprocessable(`${key} is not a key of this unit's env (see env_example.json)`);
    }
    if (INSTANCE_OWNED_KEYS.has(key)) {
      throw unprocessable(`${key} is managed by the instance and cannot be edited`);
    }
    const kind = EDITABLE_GENERATED[key];
    if (kind === "int" && !(typeof value === "number" && Number.isInteger(value) && value >= 0)) {
      throw unprocessable(`${key} must be a non-negative integer`);
    }
    if (kind === "string" && (typeof value !== "string" || value === "")) {
      throw unprocessable(`${key} must be a non-empty string`);
    }
    if (kind === "logLevel" && !(LOG_LEVELS as readonly unknown[]).includes(value)) {
      throw unprocessable(`${key} must be one of ${LOG_LEVELS.join(", ")}`);
    }
  }
}

/**
 * The unit's PU_STATE_SEND_INTERVAL in whole seconds (its env value; the instance default
 * when unset or unreadable): how often a running device reports its state.
 */
export function stateIntervalS(
  config: Pick<Config, "encryptKey" | "stateSendIntervalS">,
  envEnc: string,
  onUnreadable: (err: unknown) => void,
): number {
  let interval = config.stateSendIntervalS;
  try {
    const v = decryptJson<UnitEnv>(config.encryptKey, envEnc).PU_STATE_SEND_INTERVAL;
    if (typeof v === "number" && Number.isFinite(v) && v > 0) interval = v;
  } catch (err) {
    onUnreadable(err);
  }
  return Math.max(1, Math.ceil(interval));
}
