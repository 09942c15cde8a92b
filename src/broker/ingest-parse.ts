// Reading what units report (device-protocol §4): state and log messages. Devices
// in the wild send odd things, so nothing here throws: unknown keys are ignored,
// wrongly typed values dropped, unusable entries skipped.

export type UnitState = Record<string, unknown>;
export type ParsedLog = { level: LogLevel; text: string; createdAt: Date };

export const LOG_LEVELS = ["Debug", "Info", "Warning", "Error", "Critical"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const NUMBER_KEYS = ["millis", "mem_free", "mem_alloc", "freq", "rssi"];
const LIST_KEYS = ["ifconfig", "statvfs"];
const MAX_LOG_TEXT = 8192;
const MAX_LOGS_PER_MESSAGE = 1000;
// Git object names: 40 hex (SHA-1) or 64 hex (SHA-256); short forms tolerated.
const COMMIT_RE = /^[0-9a-fA-F]{7,64}$/;

function parseJson(payload: Buffer): unknown {
  try {
    return JSON.parse(payload.toString("utf8"));
  } catch {
    return undefined;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** PostgreSQL text and jsonb refuse NUL characters; they carry no meaning here. */
export function stripNul(s: string): string {
  return s.includes("\u0000") ? s.replaceAll("\u0000", "") : s;
}

function sanitizeJson(v: unknown, depth = 0): unknown {
  if (depth > 8) return null;
  if (typeof v === "string") return stripNul(v);
  if (Array.isArray(v)) return v.map((x) => sanitizeJson(x, depth + 1));
  if (isObject(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[stripNul(k)] = sanitizeJson(x, depth + 1);
    return out;
  }
  return typeof v === "number" && !Number.isFinite(v) ? null : v;
}

/**
 * A state message → the known keys with usable values, and the running commit.
 * Null when the payload is not a JSON object at all.
 */
export function parseState(payload: Buffer): { state: UnitState; commit: string | null } | null {
  const raw = parseJson(payload);
  if (!isObject(raw)) return null;
  const state: UnitState = {};
  for (const key of NUMBER_KEYS) {
    const v = raw[key];
    if (typeof v === "number" && Number.isFinite(v)) state[key] = v;
  }
  for (const key of LIST_KEYS) {
    const v = raw[key];
    if (Array.isArray(v)) state[key] = sanitizeJson(v);
  }
  let commit: string | null = null;
  const version = raw.pu_commit_version;
  if (typeof version === "string" && COMMIT_RE.test(version.trim())) {
    commit = version.trim().toLowerCase();
    state.pu_commit_version = commit;
  }
  return { state, commit };
}

function parseLevel(v: unknown): LogLevel | null {
  if (typeof v !== "string") return null;
  const lower = v.trim().toLowerCase();
  return LOG_LEVELS.find((l) => l.toLowerCase() === lower) ?? null;
}

const ISO_RE = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/i;

function parseTime(v: unknown): Date | null {
  if (typeof v === "number" && Number.isInteger(v)) return new Date(v);
  if (typeof v === "string" && ISO_RE.test(v.trim())) {
    const d = new Date(v.trim());
    return Number.isNaN(d.getTime()) ? null : d;
  }
  return null;
}

/**
 * A log message (one object or an array of them) → entries. A device clock that is
 * unset (MicroPython boots in 2000) or ahead would misplace entries or get them
 * pruned at once, so a time outside [now - retention, now + 1 min] becomes `now`.
 */
export function parseLogs(payload: Buffer, now: Date, retentionMs: number): ParsedLog[] {
  const raw = parseJson(payload);
  const items = Array.isArray(raw) ? raw.slice(0, MAX_LOGS_PER_MESSAGE) : [raw];
  const out: ParsedLog[] = [];
  for (const item of items) {
    if (!isObject(item)) continue;
    const level = parseLevel(item.level);
    const t = item.text;
    if (!level || !(typeof t === "string" || typeof t === "number" || typeof t === "boolean")) {
      continue;
    }
    const text = stripNul(String(t)).slice(0, MAX_LOG_TEXT);
    let createdAt = parseTime(item.create_datetime) ?? now;
    const ms = createdAt.getTime();
    if (Number.isNaN(ms) || ms < now.getTime() - retentionMs || ms > now.getTime() + 60_000) {
      createdAt = now;
    }
    out.push({ level, text, createdAt });
  }
  return out;
}

/** A variable's value as stored for display: payloads are opaque bytes, the column is text. */
export function storedValue(payload: Buffer): string {
  return stripNul(payload.toString("utf8"));
}
