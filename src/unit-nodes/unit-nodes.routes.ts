import { createRoute, z } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import { canManage, canSee, isMoreOpen } from "../access/visibility.ts";
import { unitNodes } from "../db/schema.ts";
import { recheckEdgesOutOf } from "../edges/edges.recheck.ts";
import { requireUser } from "../http/auth.ts";
import { forbidden, notFound, unprocessable } from "../http/errors.ts";
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
import { repeatable } from "../units/units.schemas.ts";
import { listCachedUnitNodes } from "./unit-nodes.read.ts";
import { toUnitNodeOut, UnitNodeOut, UnitNodeTypeSchema } from "./unit-nodes.schemas.ts";
import { findNodeWithUnit, findVisibleNode, listUnitNodes } from "./unit-nodes.store.ts";

const tags = ["unit_nodes"];

const ListQuery = Pagination.extend({
  unit_uuid: z.uuid().optional(),
  type: UnitNodeTypeSchema.optional(),
  visibility: repeatable(VisibilitySchema).optional(),
  output_uuid: z
    .uuid()
    .optional()
    .openapi({ description: "device query: the inputs linked from this output" }),
  order_by_create_date: z.enum(["asc", "desc"]).default("desc"),
});

const UpdateBody = z
  .object({
    visibility: VisibilitySchema.optional(),
    is_rewritable_input: z.boolean().optional().openapi({
      description: "Input only: whether other users who see it may link their outputs into it",
    }),
    is_data_pipe_active: z.boolean().optional().openapi({
      description: "record values through the data pipe (needs a config: set_data_pipe_config)",
    }),
  })
  .openapi("UpdateUnitNode");

export function unitNodesRoutes(deps: AppDeps) {
  const db = deps.database.db;
  const domain = deps.config.domain;
  const app = createRouter();

  async function loadVisible(p: Parameters<typeof canSee>[0], uuid: string) {
    const found = await findVisibleNode(db, p, uuid);
    if (!found) throw notFound("unit node");
    return found;
  }

  app.openapi(
    createRoute({
      method: "get",
      path: "/",
      tags,
      summary: "List the variables the caller may see",
      request: { query: ListQuery },
      responses: {
        200: jsonResponse(
          z.object({ count: z.number(), unit_nodes: z.array(UnitNodeOut) }),
          "Variables",
        ),
        ...errorResponses(401, 422),
      },
    }),
    async (c) => {
      const p = c.get("principal");
      const q = c.req.valid("query");
      if (q.output_uuid) {
        // Links of an output the caller cannot see are not the caller's business.
        const out = await findNodeWithUnit(db, q.output_uuid);
        const visible =
          out &&
          canSee(p, out.unit.visibility, out.unit.creatorUuid) &&
          canSee(p, out.node.visibility, out.unit.creatorUuid);
        if (!visible) return c.json({ count: 0, unit_nodes: [] }, 200);
      }
      const filter = {
        unitUuid: q.unit_uuid,
        type: q.type,
        visibility: q.visibility,
        outputUuid: q.output_uuid,
        order: q.order_by_create_date,
        limit: q.limit,
        offset: q.offset,
      };
      const { count, rows } =
        (deps.readModel && (await listCachedUnitNodes(deps.readModel, p, filter))) ??
        (await listUnitNodes(db, p, filter));
      return c.json({ count, unit_nodes: rows.map((n) => toUnitNodeOut(domain, n)) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/{uuid}",
      tags,
      summary: "One variable",
      request: { params: UuidParam },
      responses: {
        200: jsonResponse(UnitNodeOut, "The variable"),
        ...errorResponses(401, 404, 422),
      },
    }),
    async (c) => {
      const { node } = await loadVisible(c.get("principal"), c.req.valid("param").uuid);
      return c.json(toUnitNodeOut(domain, node), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "patch",
      path: "/{uuid}",
      tags,
      summary:
        "Change a variable's visibility (never above its unit's), rewritable flag or data pipe flag (unit creator or admin)",
      request: { params: UuidParam, body: jsonBody(UpdateBody) },
      responses: {
        200: jsonResponse(UnitNodeOut, "The variable"),
        ...errorResponses(401, 403, 404, 422),
      },
    }),
    async (c) => {
      const user = requireUser(c.get("principal"));
      const body = c.req.valid("json");
      const { node, unit } = await loadVisible(user, c.req.valid("param").uuid);
      if (!canManage(user, unit.creatorUuid))
        throw forbidden("only the unit's creator or an admin may do this");
      if (body.visibility && isMoreOpen(body.visibility, unit.visibility)) {
        throw unprocessable(
          `a variable cannot be more open than its unit (unit is ${unit.visibility})`,
        );
      }
      if (body.is_rewritable_input !== undefined && node.type !== "Input") {
        throw unprocessable("is_rewritable_input applies to Input variables only");
      }
      if (body.is_data_pipe_active && !node.dataPipeYaml) {
        throw unprocessable("set a data pipe config first (set_data_pipe_config)");
      }
      const changes = {
        ...(body.visibility ? { visibility: body.visibility } : {}),
        ...(body.is_rewritable_input !== undefined
          ? { isRewritableInput: body.is_rewritable_input }
          : {}),
      };
      const pipeChanged =
        body.is_data_pipe_active !== undefined &&
        body.is_data_pipe_active !== node.isDataPipeActive;
      if (!Object.keys(changes).length && !pipeChanged) {
        return c.json(toUnitNodeOut(domain, node), 200);
      }
      const [updated] = await db
        .update(unitNodes)
        .set({ ...changes, ...(pipeChanged ? { isDataPipeActive: body.is_data_pipe_active } : {}) })
        .where(eq(unitNodes.uuid, node.uuid))
        .returning();
      const ids = { unitUuid: unit.uuid, nodeUuid: node.uuid };
      // The access index follows visibility / rewritable; the history writer the pipe flag.
      if (Object.keys(changes).length) deps.events.emit("unit-node.updated", ids);
      // Links into other users' units that may no longer read this output end now.
      if (body.visibility) await recheckEdgesOutOf(deps, [unit.uuid]);
      if (pipeChanged) {
        await deps.history?.reload(node.uuid);
        deps.events.emit("unit-node.data-pipe-changed", ids);
      }
      return c.json(toUnitNodeOut(domain, updated ?? node), 200);
    },
  );

  return app;
}
