import fc from "fast-check";
import {
  hostileBodyText,
  hostilePathSegment,
  hostileString,
  hostileValue,
  safeEncode,
} from "./hostile.ts";
import {
  arbitraryFor,
  type JsonSchema,
  resolveRef,
  type SchemaContext,
} from "./schema-arbitrary.ts";
import { type Pools, ROLES, type Role } from "./world.ts";

// The operations of the OpenAPI document, and the requests the fuzzer sends to
// each: the valid request as every role first, then valid-shaped ones, then
// hostile ones (one input broken at a time, so the rest still reaches the handler).

export type Parameter = {
  name: string;
  in: "path" | "query";
  required?: boolean;
  schema: JsonSchema;
};

export type Operation = {
  key: string; // "POST /repos/{uuid}/sync"
  method: string;
  path: string;
  parameters: Parameter[];
  bodySchema: JsonSchema | undefined;
  declared: Set<number>;
};

// any: the OpenAPI document is untyped JSON here
export function operationsOf(doc: any): Operation[] {
  const ops: Operation[] = [];
  for (const [path, byMethod] of Object.entries<Record<string, any>>(doc.paths)) {
    for (const [method, op] of Object.entries<any>(byMethod)) {
      ops.push({
        key: `${method.toUpperCase()} ${path}`,
        method: method.toUpperCase(),
        path,
        parameters: op.parameters ?? [],
        bodySchema: op.requestBody?.content?.["application/json"]?.schema,
        declared: new Set(Object.keys(op.responses).map(Number)),
      });
    }
  }
  return ops;
}

/** What a valid request of an operation needs beyond its schema (a real password, a job id...). */
export type Example = {
  params?: Record<string, string>;
  query?: Record<string, string>;
  body?: unknown;
  /** A body sent as it is (not JSON), with its content type: YAML, CSV. */
  raw?: { body: string; contentType: string };
  /** Sent once more with this token (an identity none of the roles has). */
  token?: string;
};

export type Case = {
  role: Role;
  token?: string;
  url: string; // under the API prefix
  body?: string;
  contentType?: string;
  note: string;
};

/** Which pool a path or query parameter draws from. */
export function poolFor(op: Operation, name: string, pools: Pools): string[] {
  if (name === "job") return pools.jobs;
  if (name === "domain") return pools.domains;
  if (name === "repo_uuid") return pools.repos;
  if (name === "unit_uuid") return pools.units;
  if (name === "creator_uuid") return pools.users;
  if (name === "input_uuid") return pools.inputs;
  if (name === "output_uuid" || name === "node_uuid") return pools.outputs;
  if (name === "unit_node_uuids") return pools.nodes;
  if (name === "token_uuid") return pools.accessTokens;
  if (op.path.startsWith("/users/")) return pools.users;
  if (op.path.startsWith("/repos/")) return pools.repos;
  if (op.path.startsWith("/unit_nodes/set_state_input/")) return pools.inputs;
  if (op.path.startsWith("/unit_nodes/")) return pools.nodes;
  if (op.path.startsWith("/units/")) return pools.units;
  if (op.path.startsWith("/unit_node_edges/")) return pools.edges;
  if (op.path.startsWith("/federation/grants/")) return pools.grants;
  if (op.path.startsWith("/boards/")) return pools.boards;
  if (op.path.startsWith("/alerts/")) return pools.alerts;
  return [];
}

function queryString(values: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(values)) {
    if (v === undefined || v === null) continue;
    for (const item of Array.isArray(v) ? v : [v]) parts.push(`${k}=${safeEncode(String(item))}`);
  }
  return parts.length ? `?${parts.join("&")}` : "";
}

/** A raw (already encoded) query string is passed as `rawQuery`. */
function url(op: Operation, params: Record<string, string>, query: string): string {
  return op.path.replace(/\{(\w+)\}/g, (_, name: string) => params[name] ?? "x") + query;
}

export type CaseOptions = { valid: number; hostile: number; seed: number };

/** The requests for one operation, deterministic for a seed. */
export function casesFor(
  op: Operation,
  pools: Pools,
  ctx: SchemaContext,
  example: Example | undefined,
  opts: CaseOptions,
): Case[] {
  const pathParams = op.parameters.filter((p) => p.in === "path");
  const queryParams = op.parameters.filter((p) => p.in === "query");
  const firstOf = (name: string) =>
    poolFor(op, name, pools)[0] ?? "00000000-0000-4000-8000-000000000000";
  const paramArb = (p: Parameter): fc.Arbitrary<string> => {
    const pool = poolFor(op, p.name, pools);
    // Encoded: a valid-shaped value with "/" or "?" must stay one path segment.
    // Never empty, "." or "..": those change the route (a 404 of another path).
    const fallback = arbitraryFor(p.schema, ctx)
      .map((v) => safeEncode(String(v)))
      .filter((seg) => !["", ".", ".."].includes(seg));
    return pool.length
      ? fc.oneof(
          { weight: 4, arbitrary: fc.constantFrom(...pool) },
          { weight: 1, arbitrary: fallback },
        )
      : fallback;
  };
  const queryArb = (p: Parameter): fc.Arbitrary<unknown> => {
    const pool = poolFor(op, p.name, pools);
    if (pool.length) return fc.constantFrom(...pool);
    return arbitraryFor(p.schema, ctx);
  };
  const validQuery = fc.record(Object.fromEntries(queryParams.map((p) => [p.name, queryArb(p)])), {
    requiredKeys: queryParams.filter((p) => p.required).map((p) => p.name),
  });
  const validParams = fc.record(Object.fromEntries(pathParams.map((p) => [p.name, paramArb(p)])));
  const validBody: fc.Arbitrary<unknown> = op.bodySchema
    ? arbitraryFor(op.bodySchema, ctx)
    : fc.constant(undefined);
  const role = fc.constantFrom(...ROLES);
  const json = (v: unknown) => (v === undefined ? undefined : JSON.stringify(v));

  const cases: Case[] = [];
  // 1. The valid request, as every role.
  const params = Object.fromEntries(pathParams.map((p) => [p.name, firstOf(p.name)]));
  Object.assign(params, example?.params);
  // Only the required query parameters: the valid request must not trip an optional one.
  const requiredOnly = fc.record(
    Object.fromEntries(queryParams.filter((p) => p.required).map((p) => [p.name, queryArb(p)])),
  );
  const requiredQuery = fc.sample(requiredOnly, { seed: opts.seed, numRuns: 1 })[0] ?? {};
  const query = example?.query ? queryString(example.query) : queryString(requiredQuery);
  const body = example?.raw
    ? example.raw.body
    : example && "body" in example
      ? json(example.body)
      : json(fc.sample(validBody, { seed: opts.seed, numRuns: 1 })[0]);
  const contentType = example?.raw?.contentType;
  const validUrl = url(op, params, query);
  for (const r of ROLES) cases.push({ role: r, url: validUrl, body, contentType, note: "valid" });
  if (example?.token) {
    cases.push({
      role: "owner",
      token: example.token,
      url: validUrl,
      body,
      contentType,
      note: "valid, own token",
    });
  }

  // 2. Valid-shaped requests.
  const shaped = fc.record({ role, params: validParams, query: validQuery, body: validBody });
  for (const s of fc.sample(shaped, { seed: opts.seed + 1, numRuns: opts.valid })) {
    cases.push({
      role: s.role,
      url: url(op, s.params, queryString(s.query)),
      body: json(s.body),
      note: "valid-shaped",
    });
  }

  // 3. Hostile requests: one part broken.
  const mutations: fc.Arbitrary<Omit<Case, "note"> & { note: string }>[] = [];
  const base = fc.record({ role, params: validParams, query: validQuery, body: validBody });
  if (pathParams.length) {
    mutations.push(
      fc
        .tuple(
          base,
          fc.constantFrom(...pathParams.map((p) => p.name)),
          // Not empty, "." or "..": those change the route (a 404 of another path).
          hostilePathSegment.filter((seg) => !["", ".", ".."].includes(seg)),
        )
        .map(([b, name, seg]) => ({
          role: b.role,
          url: url(op, { ...b.params, [name]: seg }, queryString(b.query)),
          body: json(b.body),
          note: `path ${name}`,
        })),
    );
  }
  // A token that is no token (forged, unsigned, truncated, junk).
  mutations.push(
    fc
      .tuple(
        base,
        fc.oneof(
          fc.constantFrom(
            "garbage",
            "eyJhbGciOiJub25lIn0.eyJ1dWlkIjoieCIsInR5cGUiOiJVc2VyIn0.",
            "eyJhbGciOiJIUzI1NiJ9.e30.AAAA",
            "x".repeat(8_000),
          ),
          hostileString.map((t) => t.replace(/[^\x21-\x7e]/g, "") || "junk"),
        ),
      )
      .map(([b, token]) => ({
        role: b.role,
        token,
        url: url(op, b.params, queryString(b.query)),
        body: json(b.body),
        note: "bad token",
      })),
  );
  const queryNames = [...queryParams.map((p) => p.name), "unknown_param"];
  mutations.push(
    fc
      .tuple(
        base,
        fc.constantFrom(...queryNames),
        fc.oneof(hostileString, fc.array(hostileString, { maxLength: 3 })),
      )
      .map(([b, name, value]) => ({
        role: b.role,
        url: url(op, b.params, queryString({ ...b.query, [name]: value })),
        body: json(b.body),
        note: `query ${name}`,
      })),
  );
  if (op.bodySchema) {
    const props = Object.keys(resolveRef(op.bodySchema, ctx).properties ?? {});
    mutations.push(
      fc.tuple(base, hostileBodyText).map(([b, text]) => ({
        role: b.role,
        url: url(op, b.params, queryString(b.query)),
        body: text,
        note: "body text",
      })),
      fc
        .tuple(base, fc.constantFrom(...props, "extra_field"), hostileValue)
        .map(([b, name, value]) => ({
          role: b.role,
          url: url(op, b.params, queryString(b.query)),
          body: JSON.stringify({ ...(b.body as object), [name]: value }),
          note: `body field ${name}`,
        })),
      fc
        .tuple(
          base,
          fc.constantFrom(
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
            "application/json; charset=latin1",
          ),
        )
        .map(([b, contentType]) => ({
          role: b.role,
          url: url(op, b.params, queryString(b.query)),
          body: json(b.body) ?? "{}",
          contentType,
          note: `content-type ${contentType}`,
        })),
    );
  } else {
    // A body where none is expected.
    mutations.push(
      fc.tuple(base, hostileBodyText).map(([b, text]) => ({
        role: b.role,
        url: url(op, b.params, queryString(b.query)),
        body: text,
        note: "unexpected body",
      })),
    );
  }
  cases.push(...fc.sample(fc.oneof(...mutations), { seed: opts.seed + 2, numRuns: opts.hostile }));
  return cases;
}
