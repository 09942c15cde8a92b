import { readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";

// The two files a unit lives by (device-protocol §2, §3), read from its working
// directory as a device reads them from flash after every (re)start.

export type DeviceEnv = {
  PU_DOMAIN: string;
  PU_HTTP_TYPE: string;
  PU_APP_PREFIX: string;
  PU_API_ACTUAL_PREFIX: string;
  PU_MQTT_HOST: string;
  PU_MQTT_PORT: number;
  PU_MQTT_KEEPALIVE: number;
  PU_AUTH_TOKEN: string;
  PU_STATE_SEND_INTERVAL: number;
  PU_MIN_LOG_LEVEL: string;
  PU_MAX_LOG_LENGTH: number;
  PU_COMMIT_VERSION: string;
  [key: string]: unknown;
};

export type SchemaSection =
  | "input_base_topic"
  | "output_base_topic"
  | "input_topic"
  | "output_topic";
/** Each section maps a topic name of the template to its physical topics. */
export type DeviceSchema = Record<SchemaSection, Record<string, string[]>>;

export const ENV_FILE = "env.json";
export const SCHEMA_FILE = "schema.json";
const SECTIONS: SchemaSection[] = [
  "input_base_topic",
  "output_base_topic",
  "input_topic",
  "output_topic",
];

const num = (v: unknown, fallback: number) =>
  typeof v === "number" && Number.isFinite(v) ? v : Number(v) || fallback;

/** Fills what a device would default, and fails on what it cannot run without. */
export function parseEnv(raw: unknown): DeviceEnv {
  if (!raw || typeof raw !== "object" || Array.isArray(raw))
    throw new Error("env.json is not an object");
  const e = raw as Record<string, unknown>;
  if (typeof e.PU_AUTH_TOKEN !== "string" || !e.PU_AUTH_TOKEN) {
    throw new Error("env.json has no PU_AUTH_TOKEN");
  }
  return {
    ...e,
    PU_DOMAIN: String(e.PU_DOMAIN ?? ""),
    PU_HTTP_TYPE: String(e.PU_HTTP_TYPE ?? "http"),
    PU_APP_PREFIX: String(e.PU_APP_PREFIX ?? "/pepeunit"),
    PU_API_ACTUAL_PREFIX: String(e.PU_API_ACTUAL_PREFIX ?? "/api/v1"),
    PU_MQTT_HOST: String(e.PU_MQTT_HOST ?? String(e.PU_DOMAIN ?? "").replace(/:\d+$/, "")),
    PU_MQTT_PORT: num(e.PU_MQTT_PORT, 1883),
    PU_MQTT_KEEPALIVE: num(e.PU_MQTT_KEEPALIVE, 60),
    PU_AUTH_TOKEN: e.PU_AUTH_TOKEN,
    PU_STATE_SEND_INTERVAL: num(e.PU_STATE_SEND_INTERVAL, 60),
    PU_MIN_LOG_LEVEL: String(e.PU_MIN_LOG_LEVEL ?? "Debug"),
    PU_MAX_LOG_LENGTH: num(e.PU_MAX_LOG_LENGTH, 64),
    PU_COMMIT_VERSION: String(e.PU_COMMIT_VERSION ?? ""),
  };
}

export function parseSchema(raw: unknown): DeviceSchema {
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) {
    throw new Error("schema.json is not an object");
  }
  const out = {} as DeviceSchema;
  for (const section of SECTIONS) {
    const value = (raw as Record<string, unknown>)[section] ?? {};
    if (typeof value !== "object" || Array.isArray(value) || value === null) {
      throw new Error(`schema.json: ${section} must map topic names to topic lists`);
    }
    const mapped: Record<string, string[]> = {};
    for (const [name, topics] of Object.entries(value)) {
      if (!Array.isArray(topics) || !topics.every((t) => typeof t === "string")) {
        throw new Error(`schema.json: ${section}.${name} must be a list of topics`);
      }
      mapped[name] = topics;
    }
    out[section] = mapped;
  }
  return out;
}

/**
 * The unit uuid inside its JWT, found as the MicroPython client finds it: by searching
 * the decoded payload for `"uuid":"` (the instance signs exactly `{"uuid":"U","type":"Unit"}`).
 */
export function unitUuidOfToken(token: string): string {
  const payload = Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8");
  const at = payload.indexOf('"uuid":"');
  if (at === -1) throw new Error("PU_AUTH_TOKEN carries no unit uuid");
  return payload.slice(at + 8, at + 8 + 36);
}

export async function readUnitFiles(
  dir: string,
): Promise<{ env: DeviceEnv; schema: DeviceSchema }> {
  const env = parseEnv(JSON.parse(await readFile(path.join(dir, ENV_FILE), "utf8")));
  const schema = parseSchema(JSON.parse(await readFile(path.join(dir, SCHEMA_FILE), "utf8")));
  return { env, schema };
}

/**
 * Writes a body downloaded from the instance (4-space JSON, as the archive carries it).
 * Via a rename, so a reader (or a crash) never sees half a file.
 */
export async function writeUnitFile(dir: string, file: string, value: unknown): Promise<void> {
  const target = path.join(dir, file);
  const tmp = `${target}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await writeFile(tmp, `${JSON.stringify(value, null, 4)}\n`);
  await rename(tmp, target);
}
