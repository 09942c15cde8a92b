import { createRoute, z } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import { isMoreOpen } from "../access/visibility.ts";
import { units } from "../db/schema.ts";
import { recheckEdgesOutOf } from "../edges/edges.recheck.ts";
import { requireUser } from "../http/auth.ts";
import { notFound, unprocessable } from "../http/errors.ts";
import {
  createRouter,
  errorResponses,
  jsonBody,
  jsonResponse,
  Pagination,
  UuidParam,
  VisibilitySchema,
} from "../http/openapi.ts";
import type { AppDeps } from "../http/types.ts";
import { changeUnitVersion, type VersionTarget } from "./unit-version.service.ts";
import { loadManagedUnit, loadVisibleUnit } from "./units.access.ts";
import { cachedUnitJson, jsonText, listCachedUnits, readVisibleUnit } from "./units.read.ts";
import { CreateUnitBody, repeatable, UnitOut, UpdateUnitBody } from "./units.schemas.ts";
import {
  createUnit,
  deleteUnit,
  nameNotAvailable,
  rotateUnitToken,
  serializeUnits,
} from "./units.service.ts";
import {
  clampUnitNodes,
  findRepo,
  findUnitByName,
  isUniqueViolation,
  listUnits,
  type UnitRow,
} from "./units.store.ts";

const tags = ["units"];

const BoolQuery = z
  .enum(["true", "false", "1", "0"])
  .transform((v) => v === "true" || v === "1")
  .optional();
const OrderQuery = z.enum(["asc", "desc"]).optional();

const ListQuery = Pagination.extend({
  repo_uuid: z.uuid().optional(),
  creator_uuid: z.uuid().optional(),
  visibility: repeatable(VisibilitySchema).optional(),
  search: z.string().max(64).optional(),
  unit_node_uuids: repeatable(z.uuid())
    .optional()
    .openapi({ description: "device query: units owning any of these variables (repeatable)" }),
  is_include_output_unit_nodes: BoolQuery.openapi({
    description:
      "true: each unit's unit_nodes lists only its Output variables; otherwise all its variables",
  }),
  order_by_unit_name: OrderQuery,
  order_by_create_date: OrderQuery,
});

/** The version part of a PATCH merged with the unit's current version. */
function versionTargetFor(
  unit: UnitRow,
  body: z.infer<typeof UpdateUnitBody>,
): VersionTarget | null {
  const touched =
    body.follow_repo !== undefined ||
    body.branch !== undefined ||
    body.commit !== undefined ||
    body.tag !== undefined;
  if (!touched) return null;
  const followRepo = body.follow_repo ?? unit.followRepo;
  if (followRepo) return { followRepo, branch: body.branch, commit: body.commit, tag: body.tag };
  const branch = body.branch ?? unit.branch;
  if (body.commit || body.tag) return { followRepo, branch, commit: body.commit, tag: body.tag };
  if (branch !== unit.branch) throw unprocessable("a new branch needs a commit or a tag");
  // Pinning a unit that followed the repo keeps the version it runs now.
  return unit.tag
    ? { followRepo, branch, tag: unit.tag }
    : { followRepo, branch, commit: unit.commit };
}

export function unitsRoutes(deps: AppDeps) {
  const db = deps.database.db;
  const app = createRouter();

  app.openapi(
    createRoute({
      method: "post",
      path: "/",
      tags,
      summary:
        "Create a unit from a repo version (the repo's default branch, or a pinned branch + tag/commit)",
      request: { body: jsonBody(CreateUnitBody) },
      responses: {
        201: jsonResponse(UnitOut, "Created, with its variables"),
        ...errorResponses(401, 403, 404, 409, 422),
      },
    }),
    async (c) => {
      const user = requireUser(c.get("principal"));
      const body = c.req.valid("json");
      const unit = await createUnit(deps, user, {
        repoUuid: body.repo_uuid,
        name: body.name,
        visibility: body.visibility,
        version: {
          followRepo: body.follow_repo,
          branch: body.branch,
          commit: body.commit,
          tag: body.tag,
        },
      });
      const [out] = await serializeUnits(deps, user, [unit]);
      return c.json(out as z.infer<typeof UnitOut>, 201);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/",
      tags,
      summary: "List the units the caller may see",
      request: { query: ListQuery },
      responses: {
        200: jsonResponse(z.object({ count: z.number(), units: z.array(UnitOut) }), "Units"),
        ...errorResponses(401, 422),
      },
    }),
    async (c) => {
      const p = c.get("principal");
      const q = c.req.valid("query");
      const filter = {
        repoUuid: q.repo_uuid,
        creatorUuid: q.creator_uuid,
        visibility: q.visibility,
        search: q.search,
        unitNodeUuids: q.unit_node_uuids,
        orderByName: q.order_by_unit_name,
        orderByCreateDate: q.order_by_create_date,
        limit: q.limit,
        offset: q.offset,
      };
      const outputsOnly = q.is_include_output_unit_nodes === true;
      const cached = deps.readModel
        ? await listCachedUnits(deps, deps.readModel, p, filter, outputsOnly)
        : null;
      if (cached !== null) {
        return jsonText(c, cached);
      }
      const { count, rows } = await listUnits(db, p, filter);
      const out = await serializeUnits(deps, p, rows, { outputsOnly });
      return c.json({ count, units: out }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/{uuid}",
      tags,
      summary: "One unit with the variables the caller may see",
      request: { params: UuidParam },
      responses: { 200: jsonResponse(UnitOut, "The unit"), ...errorResponses(401, 404, 422) },
    }),
    async (c) => {
      const p = c.get("principal");
      const uuid = c.req.valid("param").uuid;
      if (deps.readModel) {
        const cached = await readVisibleUnit(deps.readModel, p, uuid);
        return jsonText(c, cachedUnitJson(deps, p, cached));
      }
      const unit = await loadVisibleUnit(db, p, uuid);
      const [out] = await serializeUnits(deps, p, [unit]);
      return c.json(out as z.infer<typeof UnitOut>, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "patch",
      path: "/{uuid}",
      tags,
      summary: "Rename, change visibility or change version (creator or admin)",
      description:
        "Lowering the visibility lowers the unit's more open variables too. A version change keeps the " +
        "variables that persist (uuid, edges, last value), adds new ones and deletes missing ones with their edges.",
      request: { params: UuidParam, body: jsonBody(UpdateUnitBody) },
      responses: {
        200: jsonResponse(UnitOut, "The unit"),
        ...errorResponses(401, 403, 404, 409, 422),
      },
    }),
    async (c) => {
      const user = requireUser(c.get("principal"));
      const body = c.req.valid("json");
      const unit = await loadManagedUnit(db, user, c.req.valid("param").uuid);
      const extra: Partial<Pick<UnitRow, "name" | "visibility">> = {};
      if (body.name !== undefined && body.name !== unit.name) {
        if (await findUnitByName(db, body.name)) throw nameNotAvailable();
        extra.name = body.name;
      }
      if (body.visibility !== undefined && body.visibility !== unit.visibility) {
        const repo = await findRepo(db, unit.repoUuid);
        if (!repo) throw notFound("repo");
        if (isMoreOpen(body.visibility, repo.visibility)) {
          throw unprocessable(
            `a unit cannot be more open than its repo (repo is ${repo.visibility})`,
          );
        }
        extra.visibility = body.visibility;
      }
      const target = versionTargetFor(unit, body);
      try {
        if (target) {
          await changeUnitVersion(deps, unit.uuid, target, extra);
        } else if (extra.name !== undefined || extra.visibility !== undefined) {
          await db
            .update(units)
            .set({ ...extra, updatedAt: new Date() })
            .where(eq(units.uuid, unit.uuid));
          deps.events.emit("unit.updated", { unitUuid: unit.uuid, versionChanged: false });
        }
      } catch (err) {
        if (isUniqueViolation(err)) throw nameNotAvailable();
        throw err;
      }
      if (extra.visibility) {
        for (const nodeUuid of await clampUnitNodes(db, unit.uuid, extra.visibility)) {
          deps.events.emit("unit-node.updated", { unitUuid: unit.uuid, nodeUuid });
        }
        // Links into other users' units that may no longer read these outputs end now.
        await recheckEdgesOutOf(deps, [unit.uuid]);
      }
      const updated = await loadManagedUnit(db, user, unit.uuid);
      const [out] = await serializeUnits(deps, user, [updated]);
      return c.json(out as z.infer<typeof UnitOut>, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/{uuid}",
      tags,
      summary: "Delete a unit, its variables and every edge touching them (creator or admin)",
      request: { params: UuidParam },
      responses: { 204: { description: "Deleted" }, ...errorResponses(401, 403, 404, 422) },
    }),
    async (c) => {
      const user = requireUser(c.get("principal"));
      const unit = await loadManagedUnit(db, user, c.req.valid("param").uuid);
      await deleteUnit(deps, unit);
      return c.body(null, 204);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/{uuid}/rotate_token",
      tags,
      summary: "Issue a new unit token; the old one is refused at once (creator or admin)",
      description: "The device needs the new env (an env update or a re-flash) to connect again.",
      request: { params: UuidParam },
      responses: {
        200: jsonResponse(z.object({ token: z.string() }), "The new unit token"),
        ...errorResponses(401, 403, 404, 422),
      },
    }),
    async (c) => {
      const user = requireUser(c.get("principal"));
      const unit = await loadManagedUnit(db, user, c.req.valid("param").uuid);
      const env = await rotateUnitToken(deps, unit);
      return c.json({ token: String(env.PU_AUTH_TOKEN) }, 200);
    },
  );

  return app;
}
