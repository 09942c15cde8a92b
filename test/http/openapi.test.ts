import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestInstance, type TestInstance } from "../helpers/instance.ts";

describe("OpenAPI document and docs", () => {
  let inst: TestInstance;
  beforeAll(async () => {
    inst = await startTestInstance();
  });
  afterAll(async () => {
    await inst?.close();
  });

  it("serves an OpenAPI 3.1 document generated from the validators", async () => {
    const doc = await inst.api.get("/openapi.json");
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toBe("3.1.0");
    // Generated from the same zod schema the handler validates with.
    const register = doc.body.paths["/users"].post;
    const schemaRef = register.requestBody.content["application/json"].schema.$ref as string;
    const schema = doc.body.components.schemas[schemaRef.split("/").pop() as string];
    expect(schema.required).toEqual(expect.arrayContaining(["login", "email", "password"]));
    expect(doc.body.paths["/users/auth"]).toBeDefined();
  });

  it("serves Swagger UI", async () => {
    const res = await fetch(`${inst.httpUrl}/pepeunit/docs`);
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(/swagger/i);
  });

  it("answers unknown paths with a JSON 404", async () => {
    const res = await inst.api.get("/no/such/thing");
    expect(res.status).toBe(404);
    expect(res.body.detail).toBeDefined();
  });
});
