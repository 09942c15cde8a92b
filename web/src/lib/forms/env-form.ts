// The unit env editor. Keys only the instance writes are shown read-only;
// secrets are masked until revealed; only changed keys are sent.

const SECRET_RE = /(PASS|PASSWORD|TOKEN|SECRET|KEY)$|(PASS|TOKEN|SECRET|KEY)_/i;

// Mirrors INSTANCE_OWNED_KEYS in src/units/unit-env.ts: the keys PATCH /units/env refuses.
const MANAGED_KEYS = new Set([
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

/** Written only by the instance: shown read-only. */
export function isManagedKey(key: string): boolean {
  return MANAGED_KEYS.has(key);
}

export function isSecretKey(key: string): boolean {
  return SECRET_RE.test(key);
}

export type EnvValue = string | number | boolean;
export type EnvEntry = {
  key: string;
  value: string;
  kind: "string" | "number" | "boolean";
  managed: boolean;
  secret: boolean;
};

export function envEntries(env: Record<string, unknown>): EnvEntry[] {
  return Object.entries(env).map(([key, v]) => ({
    key,
    value: typeof v === "string" ? v : JSON.stringify(v),
    kind: typeof v === "number" ? "number" : typeof v === "boolean" ? "boolean" : "string",
    managed: isManagedKey(key),
    secret: isSecretKey(key),
  }));
}

/** Text back to the JSON type the key had; null when it does not parse. */
export function parseEnvValue(entry: EnvEntry, text: string): EnvValue | null {
  if (entry.kind === "number") {
    const n = Number(text);
    return text.trim() !== "" && Number.isFinite(n) ? n : null;
  }
  if (entry.kind === "boolean") return text === "true" ? true : text === "false" ? false : null;
  return text;
}

/** {key: value} for the keys whose text changed; errors for values that do not parse. */
export function envEditsPayload(
  entries: EnvEntry[],
  edited: Record<string, string>,
): { edits: Record<string, EnvValue>; errors: Record<string, string> } {
  const edits: Record<string, EnvValue> = {};
  const errors: Record<string, string> = {};
  for (const entry of entries) {
    const text = edited[entry.key];
    if (entry.managed || text === undefined || text === entry.value) continue;
    const value = parseEnvValue(entry, text);
    if (value === null)
      errors[entry.key] = entry.kind === "number" ? "Enter a number." : "true or false.";
    else if (typeof value === "string" && value.length > 4096)
      errors[entry.key] = "At most 4096 characters.";
    else edits[entry.key] = value;
  }
  return { edits, errors };
}
