import { createRoute, z } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import type { Principal } from "../access/principal.ts";
import { decryptJson, encryptJson } from "../crypto/aes-gcm.ts";
import { units } from "../db/schema.ts";
import { requireUser } from "../http/auth.ts";
import {
  createRouter,
  errorResponses,
  jsonBody,
  jsonResponse,
  UuidParam,
} from "../http/openapi.ts";
import type { AppDeps } from "../http/types.ts";
import type { CachedUnit, UnitView } from "../read-model/read-model.ts";
import { buildSchemaForUnit, readUnitEnv } from "./unit-artifacts.ts";
import { loadManagedUnit, loadUnitForDevice } from "./units.access.ts";
import { cachedEnvJson, jsonText, readUnitForDevice } from "./units.read.ts";
import { editUnitEnv } from "./units.service.ts";
import type { UnitNodeRow } from "./units.store.ts";

// The REST surface devices call (device-protocol §5): paths and bodies are a wire
// contract. A unit token may address only its own uuid; its creator and admins may too.

const tags = ["device"];
const security = [{ token: [] }];

const EnvOut = z.record(z.string(), z.unknown()).openapi("UnitEnv");
const SchemaOut = z
  .record(z.string(), z.record(z.string(), z.array(z.string())))
  .openapi("UnitSchema");
const EnvEdits = z
  .record(z.string().min(1).max(128), z.union([z.string().max(4096), z.number(), z.boolean()]))
  .openapi("UnitEnvEdits");
const StateBody = z.object({ state: z.string().max(64_000) }).openapi("UnitStateStorage");

export function deviceRoutes(deps: AppDeps) {
  const db = deps.database.db;
  const app = createRouter();

  /** The hot reads come from the read model when there is one (the instance has). */
  async function deviceUnit(
    p: Principal,
    uuid: string,
  ): Promise<{ row: UnitView; nodes: UnitNodeRow[] | null; cached: CachedUnit | null }> {
    if (deps.readModel) {
      const cached = await readUnitForDevice(deps.readModel, p, uuid);
      return { row: cached.row, nodes: cached.nodes.map((n) => n.row), cached };
    }
    return { row: await loadUnitForDevice(db, p, uuid), nodes: null, cached: null };
  }

  app.openapi(
    createRoute({
      method: "get",
      path: "/env/{uuid}",
      tags,
      security,
      summary: "The unit's env.json (the unit itself, its creator or an admin)",
      request: { params: UuidParam },
      responses: { 200: jsonResponse(EnvOut, "env.json"), ...errorResponses(401, 404, 422) },
    }),
    async (c) => {
      const unit = await deviceUnit(c.get("principal"), c.req.valid("param").uuid);
      if (unit.cached) return jsonText(c, cachedEnvJson(deps, unit.cached));
      return c.json(readUnitEnv(deps, unit.row), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "patch",
      path: "/env/{uuid}",
      tags,
      security,
      summary: "Edit env values (creator or admin); instance-managed and unknown keys are refused",
      request: { params: UuidParam, body: jsonBody(EnvEdits) },
      responses: {
        200: jsonResponse(EnvOut, "The new env.json"),
        ...errorResponses(401, 403, 404, 422),
      },
    }),
    async (c) => {
      const user = requireUser(c.get("principal"));
      const unit = await loadManagedUnit(db, user, c.req.valid("param").uuid);
      return c.json(await editUnitEnv(deps, unit, c.req.valid("json")), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/get_current_schema/{uuid}",
      tags,
      security,
      summary: "The unit's schema.json: template names → physical topics, edges included",
      request: { params: UuidParam },
      responses: { 200: jsonResponse(SchemaOut, "schema.json"), ...errorResponses(401, 404, 422) },
    }),
    async (c) => {
      const unit = await deviceUnit(c.get("principal"), c.req.valid("param").uuid);
      return c.json(await buildSchemaForUnit(deps, unit.row, unit.nodes), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/get_target_version/{uuid}",
      tags,
      security,
      summary: "The version the unit should run",
      request: { params: UuidParam },
      responses: {
        200: jsonResponse(
          z.object({ commit: z.string(), tag: z.string().nullable() }),
          "Target version",
        ),
        ...errorResponses(401, 404, 422),
      },
    }),
    async (c) => {
      const { row } = await deviceUnit(c.get("principal"), c.req.valid("param").uuid);
      return c.json({ commit: row.commit, tag: row.tag }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/set_state_storage/{uuid}",
      tags,
      security,
      summary: "Store the unit's opaque state string (encrypted at rest)",
      request: { params: UuidParam, body: jsonBody(StateBody) },
      responses: { 204: { description: "Stored" }, ...errorResponses(401, 404, 422) },
    }),
    async (c) => {
      const unit = await loadUnitForDevice(db, c.get("principal"), c.req.valid("param").uuid);
      const { state } = c.req.valid("json");
      await db
        .update(units)
        .set({ stateStorageEnc: encryptJson(deps.config.encryptKey, state) })
        .where(eq(units.uuid, unit.uuid));
      return c.body(null, 204);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/get_state_storage/{uuid}",
      tags,
      security,
      summary: 'The stored state as a JSON string ("" when none)',
      request: { params: UuidParam },
      responses: { 200: jsonResponse(z.string(), "The state"), ...errorResponses(401, 404, 422) },
    }),
    async (c) => {
      const unit = await loadUnitForDevice(db, c.get("principal"), c.req.valid("param").uuid);
      const state = unit.stateStorageEnc
        ? decryptJson<string>(deps.config.encryptKey, unit.stateStorageEnc)
        : "";
      return c.json(state, 200);
    },
  );

  return app;
}
