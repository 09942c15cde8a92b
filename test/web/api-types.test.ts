import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { API_TYPES_FILE, renderApiTypes } from "../../web/scripts/generate-api-types.ts";
import { startTestInstance, type TestInstance } from "../helpers/instance.ts";

// The SPA's API types are generated from the server's OpenAPI document; this
// fails when the API changed without `npm run web:types` being run.

describe("web/src/lib/api-types.ts", () => {
  let inst: TestInstance;
  beforeAll(async () => {
    inst = await startTestInstance();
  });
  afterAll(async () => inst?.close());

  it("matches the OpenAPI document the server serves (else run `npm run web:types`)", async () => {
    const doc = await inst.api.get("/pepeunit/api/v1/openapi.json");
    expect(doc.status).toBe(200);
    const expected = await renderApiTypes(doc.body);
    expect(
      readFileSync(API_TYPES_FILE, "utf8") === expected,
      "api-types.ts is stale: run `npm run web:types`",
    ).toBe(true);
  });
});
