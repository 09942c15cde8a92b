import { mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";

// The REST API reference: the server's own OpenAPI document rendered as MyST pages,
// one per tag plus one for the shared schemas. Debian has no Sphinx OpenAPI
// extension, and a hand-written reference would drift from the validators the
// handlers use; these pages are build output (docs/api/ is gitignored).

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Obj = { [key: string]: Json };

const METHODS = ["get", "post", "put", "patch", "delete", "head", "options"] as const;

export type Operation = { method: string; path: string; tag: string; op: Obj };

function isObj(v: Json | undefined): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function str(v: Json | undefined): string {
  return typeof v === "string" ? v : "";
}

/** Every operation of the document, in path order, under its first tag. */
export function listOperations(doc: Obj): Operation[] {
  const out: Operation[] = [];
  const paths = isObj(doc.paths) ? doc.paths : {};
  for (const [p, item] of Object.entries(paths)) {
    if (!isObj(item)) continue;
    for (const method of METHODS) {
      const op = item[method];
      if (!isObj(op)) continue;
      const tags = Array.isArray(op.tags) ? op.tags : [];
      out.push({ method: method.toUpperCase(), path: p, tag: str(tags[0]) || "other", op });
    }
  }
  return out;
}

/** The text shown for an operation's heading; the test looks for it in the built HTML. */
export function operationTitle(o: Pick<Operation, "method" | "path">): string {
  return `${o.method} ${o.path}`;
}

const slug = (s: string) =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-|-$/g, "");

/** One table cell: no line breaks, pipes escaped. */
const cell = (s: string) => s.replace(/\s*\n\s*/g, " ").replace(/\|/g, "\\|");

function refName(ref: string): string {
  return ref.replace(/^#\/components\/\w+\//, "");
}

/** A short inline description of a schema's type, linking named schemas. */
function typeOf(schema: Json | undefined): string {
  if (!isObj(schema)) return "any";
  if (typeof schema.$ref === "string") {
    const name = refName(schema.$ref);
    return `{ref}\`${name} <api-schema-${slug(name)}>\``;
  }
  for (const key of ["anyOf", "oneOf", "allOf"] as const) {
    const parts = schema[key];
    if (Array.isArray(parts)) return parts.map(typeOf).join(key === "allOf" ? " & " : " or ");
  }
  if (Array.isArray(schema.enum)) {
    return `one of ${schema.enum.map((v) => `\`${JSON.stringify(v)}\``).join(", ")}`;
  }
  if ("const" in schema) return `\`${JSON.stringify(schema.const)}\``;
  const type = Array.isArray(schema.type) ? schema.type.map(str).join(" or ") : str(schema.type);
  if (type === "array") return `array of ${typeOf(schema.items)}`;
  const format = str(schema.format);
  const nullable = schema.nullable === true ? " or null" : "";
  return `${type || "object"}${format ? ` (${format})` : ""}${nullable}`;
}

function constraints(schema: Obj): string {
  const parts: string[] = [];
  for (const key of ["minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems"]) {
    if (typeof schema[key] === "number") parts.push(`${key} ${schema[key]}`);
  }
  if (typeof schema.pattern === "string") parts.push(`pattern \`${schema.pattern}\``);
  if ("default" in schema) parts.push(`default \`${JSON.stringify(schema.default)}\``);
  return parts.join(", ");
}

/** The fields of an object schema as a table; anything else as one line. */
function renderSchema(schema: Json | undefined): string[] {
  if (!isObj(schema)) return ["Any JSON value.", ""];
  const props = isObj(schema.properties) ? schema.properties : undefined;
  if (!props || typeof schema.$ref === "string") {
    const extra = constraints(schema);
    return [`Type: ${typeOf(schema)}${extra ? ` (${extra})` : ""}.`, ""];
  }
  const required = new Set(Array.isArray(schema.required) ? schema.required.map(str) : []);
  const lines = ["| field | type | required | description |", "| --- | --- | --- | --- |"];
  for (const [name, prop] of Object.entries(props)) {
    const p = isObj(prop) ? prop : {};
    const notes = [str(p.description), constraints(p)].filter(Boolean).join("; ");
    lines.push(
      `| \`${name}\` | ${cell(typeOf(prop))} | ${required.has(name) ? "yes" : "no"} | ${cell(notes)} |`,
    );
  }
  return [...lines, ""];
}

function resolveParam(doc: Obj, p: Json): Obj {
  if (isObj(p) && typeof p.$ref === "string") {
    const params = isObj(doc.components) && doc.components.parameters;
    const found = isObj(params) ? params[refName(p.$ref)] : undefined;
    return isObj(found) ? found : {};
  }
  return isObj(p) ? p : {};
}

function renderOperation(doc: Obj, o: Operation): string[] {
  const { op } = o;
  const lines = [`(api-op-${slug(`${o.method}-${o.path}`)})=`, `## \`${operationTitle(o)}\``, ""];
  if (str(op.summary)) lines.push(`**${str(op.summary)}**`, "");
  if (str(op.description)) lines.push(str(op.description), "");
  const security = Array.isArray(op.security) ? op.security : undefined;
  if (security && security.length === 0) lines.push("No authentication needed.", "");

  const params = Array.isArray(op.parameters) ? op.parameters.map((p) => resolveParam(doc, p)) : [];
  if (params.length) {
    lines.push("Parameters:", "", "| name | in | type | required | description |");
    lines.push("| --- | --- | --- | --- | --- |");
    for (const p of params) {
      const schema = isObj(p.schema) ? p.schema : {};
      const notes = [str(p.description), constraints(schema)].filter(Boolean).join("; ");
      lines.push(
        `| \`${str(p.name)}\` | ${str(p.in)} | ${cell(typeOf(schema))} | ${p.required === true ? "yes" : "no"} | ${cell(notes)} |`,
      );
    }
    lines.push("");
  }

  const body = isObj(op.requestBody) ? op.requestBody : undefined;
  if (body && isObj(body.content)) {
    for (const [type, media] of Object.entries(body.content)) {
      lines.push(`Request body (\`${type}\`${body.required === true ? ", required" : ""}):`, "");
      lines.push(...renderSchema(isObj(media) ? media.schema : undefined));
    }
  }

  const responses = isObj(op.responses) ? op.responses : {};
  lines.push("Responses:", "");
  for (const [status, resp] of Object.entries(responses)) {
    const r = isObj(resp) ? resp : {};
    const content = isObj(r.content) ? Object.entries(r.content) : [];
    const types = content.map(([type, media]) => {
      const schema = isObj(media) ? media.schema : undefined;
      return `\`${type}\`: ${typeOf(schema)}`;
    });
    lines.push(
      `- **${status}** ${str(r.description)}${types.length ? ` — ${types.join("; ")}` : ""}`,
    );
  }
  lines.push("");
  // A success body defined inline (not a named schema) has its fields spelled out here.
  for (const [status, resp] of Object.entries(responses)) {
    if (!status.startsWith("2") || !isObj(resp) || !isObj(resp.content)) continue;
    for (const media of Object.values(resp.content)) {
      const schema = isObj(media) ? media.schema : undefined;
      if (!isObj(schema) || !isObj(schema.properties)) continue;
      lines.push(`Response **${status}** fields:`, "", ...renderSchema(schema));
    }
  }
  return lines;
}

/** The pages to write: path relative to the output dir → MyST text. */
export function renderApiPages(doc: Obj): Map<string, string> {
  const pages = new Map<string, string>();
  const ops = listOperations(doc);
  const tags = [...new Set(ops.map((o) => o.tag))].sort();
  const info = isObj(doc.info) ? doc.info : {};
  const header = "<!-- GENERATED by docs/scripts/openapi-to-myst.ts from the OpenAPI document. -->";

  pages.set(
    "index.md",
    [
      header,
      "# REST API reference",
      "",
      `${str(info.title) || "The API"}, version ${str(info.version) || "?"}: every operation of the`,
      "OpenAPI document the instance serves at `/pepeunit/api/v1/openapi.json` (and, interactively,",
      "at `/pepeunit/docs`), grouped by tag. Paths are relative to `/pepeunit/api/v1`.",
      "Authenticate with the header `x-auth-token: <token>` (a login's session token, a unit",
      "token or a personal access token; the last also as `Authorization: Bearer`). Errors are",
      '`{"detail": "..."}` with a 4xx status.',
      "",
      "```{toctree}",
      ":maxdepth: 1",
      "",
      ...tags.map((t) => slug(t)),
      "schemas",
      "```",
      "",
    ].join("\n"),
  );

  for (const tag of tags) {
    const lines = [header, `# ${tag}`, ""];
    for (const o of ops.filter((x) => x.tag === tag)) lines.push(...renderOperation(doc, o));
    pages.set(`${slug(tag)}.md`, lines.join("\n"));
  }

  const schemas =
    isObj(doc.components) && isObj(doc.components.schemas) ? doc.components.schemas : {};
  const lines = [header, "# Schemas", "", "The named bodies the operations refer to.", ""];
  for (const [name, schema] of Object.entries(schemas).sort(([a], [b]) => a.localeCompare(b))) {
    lines.push(`(api-schema-${slug(name)})=`, `## ${name}`, "");
    if (isObj(schema) && str(schema.description)) lines.push(str(schema.description), "");
    lines.push(...renderSchema(schema));
  }
  pages.set("schemas.md", lines.join("\n"));
  return pages;
}

/** Replaces `outDir` with the rendered pages. */
export async function writeApiPages(doc: Obj, outDir: string): Promise<number> {
  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  const pages = renderApiPages(doc);
  for (const [name, text] of pages) await writeFile(path.join(outDir, name), text);
  return pages.size;
}
