import type { GitStore } from "../git/git-store.ts";
import { HttpError } from "../http/errors.ts";

// The unit repository standard (device-protocol §1): every version a unit is made
// from must carry env_example.json and a schema template. Validated per version.

export const SCHEMA_SECTIONS = [
  "input_base_topic",
  "output_base_topic",
  "input_topic",
  "output_topic",
] as const;
export type SchemaSection = (typeof SCHEMA_SECTIONS)[number];
export type SchemaTemplate = Record<SchemaSection, string[]>;

export type UnitTemplate = {
  envExample: Record<string, unknown>;
  schema: SchemaTemplate;
  /** Which file the schema came from. */
  schemaFile: "schema_example.json" | "schema.json";
};

/** A version that is not a valid unit template: a 422 wherever it surfaces. */
export class TemplateError extends HttpError {
  constructor(detail: string) {
    super(422, detail);
  }
}

const TOPIC_NAME_RE = /^[A-Za-z0-9/_-]{1,128}$/;
// Seed-era section names accepted as synonyms.
const SECTION_SYNONYMS: Partial<Record<string, SchemaSection>> = {
  input_variables: "input_topic",
  output_variables: "output_topic",
};

function parseJsonObject(bytes: Buffer, file: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString("utf8"));
  } catch (err) {
    throw new TemplateError(`${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TemplateError(`${file} must be a JSON object`);
  }
  return value as Record<string, unknown>;
}

/** Validates a parsed schema template; the error names the file, section and topic at fault. */
export function parseSchemaTemplate(raw: Record<string, unknown>, file: string): SchemaTemplate {
  const out: SchemaTemplate = {
    input_base_topic: [],
    output_base_topic: [],
    input_topic: [],
    output_topic: [],
  };
  const seen = new Set<SchemaSection>();
  for (const [key, value] of Object.entries(raw)) {
    const section = (SCHEMA_SECTIONS as readonly string[]).includes(key)
      ? (key as SchemaSection)
      : SECTION_SYNONYMS[key];
    if (!section) continue;
    if (seen.has(section)) throw new TemplateError(`${file}: section ${section} is given twice`);
    seen.add(section);
    if (!Array.isArray(value))
      throw new TemplateError(`${file}: ${key} must be a list of topic names`);
    for (const name of value) {
      if (
        typeof name !== "string" ||
        !TOPIC_NAME_RE.test(name) ||
        name.includes("//") ||
        name.startsWith("/") ||
        name.endsWith("/")
      ) {
        throw new TemplateError(
          `${file}: ${key} has a bad topic name ${JSON.stringify(name)} (allowed: A-Z a-z 0-9 / _ -)`,
        );
      }
      if (out[section].includes(name))
        throw new TemplateError(`${file}: ${key} lists ${name} twice`);
      out[section].push(name);
    }
  }
  for (const section of SCHEMA_SECTIONS) {
    if (!seen.has(section)) throw new TemplateError(`${file}: section ${section} is missing`);
  }
  return out;
}

// A commit's content never changes, so its template (or its TemplateError) is cached
// per git store: env, schema and archive reads then cost no git process. Cached
// templates are frozen, so no caller can change what the next one reads.
const CACHE_LIMIT = 2000;
const caches = new WeakMap<GitStore, Map<string, Promise<UnitTemplate>>>();

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object") {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** Reads and validates the templates of one commit; throws TemplateError with a clear reason. */
export function loadUnitTemplate(
  git: GitStore,
  repoUuid: string,
  commit: string,
): Promise<UnitTemplate> {
  let cache = caches.get(git);
  if (!cache) {
    cache = new Map();
    caches.set(git, cache);
  }
  const key = `${repoUuid}:${commit}`;
  const hit = cache.get(key);
  if (hit) {
    // Refresh recency: a Map iterates in insertion order, so the oldest is evicted first.
    cache.delete(key);
    cache.set(key, hit);
    return hit;
  }
  const loading = readUnitTemplate(git, repoUuid, commit).then(deepFreeze);
  cache.set(key, loading);
  if (cache.size > CACHE_LIMIT) cache.delete(cache.keys().next().value as string);
  // Only a definite answer is kept: a git failure (e.g. a missing clone) is retried next time.
  loading.catch((err) => {
    if (!(err instanceof TemplateError)) cache.delete(key);
  });
  return loading;
}

async function readUnitTemplate(
  git: GitStore,
  repoUuid: string,
  commit: string,
): Promise<UnitTemplate> {
  const envBytes = await git.readFile(repoUuid, commit, "env_example.json");
  if (!envBytes) throw new TemplateError(`version ${commit.slice(0, 8)} has no env_example.json`);
  const envExample = parseJsonObject(envBytes, "env_example.json");
  let schemaFile: UnitTemplate["schemaFile"] = "schema_example.json";
  let schemaBytes = await git.readFile(repoUuid, commit, schemaFile);
  if (!schemaBytes) {
    schemaFile = "schema.json";
    schemaBytes = await git.readFile(repoUuid, commit, schemaFile);
  }
  if (!schemaBytes) {
    throw new TemplateError(
      `version ${commit.slice(0, 8)} has no schema_example.json (or schema.json)`,
    );
  }
  const schema = parseSchemaTemplate(parseJsonObject(schemaBytes, schemaFile), schemaFile);
  return { envExample, schema, schemaFile };
}
