import fc from "fast-check";

// Valid-shaped values for a JSON Schema of our OpenAPI document (3.1, as
// @hono/zod-openapi writes it): objects, arrays, strings (uuid/email/date-time
// formats, length bounds, patterns), enums, integers and numbers with bounds,
// booleans, oneOf/anyOf/allOf, `type: [..., "null"]` and `nullable`, $ref.

export type JsonSchema = {
  $ref?: string;
  type?: string | string[];
  format?: string;
  enum?: unknown[];
  const?: unknown;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  oneOf?: JsonSchema[];
  anyOf?: JsonSchema[];
  allOf?: JsonSchema[];
  nullable?: boolean;
};

export type SchemaContext = {
  /** components.schemas of the document, for $ref. */
  components: Record<string, JsonSchema>;
  /** Real entity uuids: a uuid field takes one of them most of the time, to reach handlers. */
  uuids: () => string[];
};

const MAX_STRING = 40;

export function resolveRef(schema: JsonSchema, ctx: SchemaContext): JsonSchema {
  let s = schema;
  for (let i = 0; s.$ref && i < 10; i++) {
    const name = s.$ref.split("/").pop() as string;
    const target = ctx.components[name];
    if (!target) throw new Error(`unknown $ref ${s.$ref}`);
    s = { ...target, ...Object.fromEntries(Object.entries(s).filter(([k]) => k !== "$ref")) };
  }
  return s;
}

function mergeAllOf(schema: JsonSchema, ctx: SchemaContext): JsonSchema {
  if (!schema.allOf) return schema;
  const { allOf, ...rest } = schema;
  const merged: JsonSchema = {
    ...rest,
    properties: { ...rest.properties },
    required: [...(rest.required ?? [])],
  };
  for (const part of allOf) {
    const p = mergeAllOf(resolveRef(part, ctx), ctx);
    Object.assign(merged, { ...p, properties: merged.properties, required: merged.required });
    Object.assign(merged.properties ?? {}, p.properties);
    merged.required?.push(...(p.required ?? []));
  }
  return merged;
}

function stringArbitrary(s: JsonSchema, ctx: SchemaContext): fc.Arbitrary<string> {
  if (s.format === "uuid") {
    return fc.oneof(
      { weight: 4, arbitrary: fc.nat().map((i) => pick(ctx.uuids(), i)) },
      { weight: 1, arbitrary: fc.uuid() },
    );
  }
  if (s.format === "email") return fc.emailAddress();
  if (s.format === "date-time") {
    return fc
      .date({ min: new Date("2000-01-01"), max: new Date("2100-01-01"), noInvalidDate: true })
      .map((d) => d.toISOString());
  }
  const minLength = s.minLength ?? 0;
  const maxLength = Math.max(minLength, Math.min(s.maxLength ?? MAX_STRING, MAX_STRING));
  if (s.pattern) {
    return fc
      .stringMatching(new RegExp(s.pattern))
      .filter(
        (v) => v.length >= minLength && v.length <= (s.maxLength ?? Number.POSITIVE_INFINITY),
      );
  }
  return fc.string({ minLength, maxLength });
}

/** Picks lazily, so entities seeded after the arbitrary was built are used too. */
function pick(values: string[], i: number): string {
  return values[i % values.length] ?? "00000000-0000-4000-8000-000000000000";
}

function numberArbitrary(s: JsonSchema, integer: boolean): fc.Arbitrary<number> {
  const min = s.minimum ?? (s.exclusiveMinimum !== undefined ? s.exclusiveMinimum + 1 : -1e6);
  const max = s.maximum ?? (s.exclusiveMaximum !== undefined ? s.exclusiveMaximum - 1 : 1e6);
  if (integer) return fc.integer({ min: Math.ceil(min), max: Math.floor(max) });
  return fc.double({ min, max, noNaN: true, noDefaultInfinity: true });
}

export function arbitraryFor(
  schemaIn: JsonSchema,
  ctx: SchemaContext,
  depth = 0,
): fc.Arbitrary<unknown> {
  const schema = mergeAllOf(resolveRef(schemaIn, ctx), ctx);
  if (depth > 6) return fc.constant(null);
  if (schema.const !== undefined) return fc.constant(schema.const);
  if (schema.enum) return fc.constantFrom(...schema.enum);
  const alternatives = schema.oneOf ?? schema.anyOf;
  if (alternatives) {
    const { oneOf: _o, anyOf: _a, ...rest } = schema;
    return fc.oneof(...alternatives.map((alt) => arbitraryFor({ ...rest, ...alt }, ctx, depth)));
  }
  if (schema.nullable) {
    return fc.option(arbitraryFor({ ...schema, nullable: false }, ctx, depth), { nil: null });
  }
  if (Array.isArray(schema.type)) {
    return fc.oneof(...schema.type.map((t) => arbitraryFor({ ...schema, type: t }, ctx, depth)));
  }
  switch (schema.type) {
    case "null":
      return fc.constant(null);
    case "boolean":
      return fc.boolean();
    case "integer":
      return numberArbitrary(schema, true);
    case "number":
      return numberArbitrary(schema, false);
    case "string":
      return stringArbitrary(schema, ctx);
    case "array":
      return fc.array(arbitraryFor(schema.items ?? {}, ctx, depth + 1), {
        minLength: schema.minItems ?? 0,
        maxLength: Math.max(schema.minItems ?? 0, Math.min(schema.maxItems ?? 4, 4)),
      });
    case "object":
      return objectArbitrary(schema, ctx, depth);
    default:
      // No type: anything JSON (e.g. a field the API documents only to refuse it).
      return schema.properties
        ? objectArbitrary(schema, ctx, depth)
        : fc.jsonValue({ maxDepth: 2 });
  }
}

function objectArbitrary(
  schema: JsonSchema,
  ctx: SchemaContext,
  depth: number,
): fc.Arbitrary<Record<string, unknown>> {
  const props = schema.properties ?? {};
  const fixed = fc.record(
    Object.fromEntries(Object.entries(props).map(([k, v]) => [k, arbitraryFor(v, ctx, depth + 1)])),
    { requiredKeys: (schema.required ?? []).filter((k) => k in props) },
  );
  const extra = schema.additionalProperties;
  if (!extra || extra === true) return fixed;
  const dict = fc.dictionary(
    fc.stringMatching(/^[A-Z_]{1,16}$/),
    arbitraryFor(extra, ctx, depth + 1),
    {
      maxKeys: 3,
    },
  );
  return fc.tuple(fixed, dict).map(([a, b]) => ({ ...b, ...a }));
}
