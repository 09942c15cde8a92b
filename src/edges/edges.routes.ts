import { createRoute, z } from "@hono/zod-openapi";
import { RemoteEdgeOut, toRemoteEdgeOut } from "../federation/federation.schemas.ts";
import { requireUser } from "../http/auth.ts";
import { HttpError } from "../http/errors.ts";
import {
  createRouter,
  errorResponses,
  jsonBody,
  jsonResponse,
  Pagination,
  UuidParam,
} from "../http/openapi.ts";
import type { AppDeps } from "../http/types.ts";
import { CreateEdgeBody, EdgeOut, toEdgeOut } from "./edges.schemas.ts";
import { createEdge, deleteEdge } from "./edges.service.ts";
import { listEdges } from "./edges.store.ts";

const tags = ["unit_node_edges"];

const ListQuery = Pagination.extend({
  unit_uuid: z
    .uuid()
    .optional()
    .openapi({ description: "edges into or out of this unit's variables" }),
  output_uuid: z.uuid().optional(),
  input_uuid: z.uuid().optional(),
});

export function edgesRoutes(deps: AppDeps) {
  const db = deps.database.db;
  const app = createRouter();

  app.openapi(
    createRoute({
      method: "post",
      path: "/",
      tags,
      summary: "Link an output variable into an input variable",
      description:
        "The caller must see the output, and either create the input's unit (or be admin) " +
        "or see an input whose is_rewritable_input is true.",
      request: { body: jsonBody(CreateEdgeBody) },
      responses: {
        201: jsonResponse(EdgeOut, "Linked"),
        202: jsonResponse(RemoteEdgeOut, "Remote output: Follow sent, the edge is Pending"),
        ...errorResponses(401, 403, 404, 409, 422),
      },
    }),
    async (c) => {
      const user = requireUser(c.get("principal"));
      const body = c.req.valid("json");
      if (body.output !== undefined) {
        // Federation: follow the remote output on behalf of the input's unit.
        if (!deps.federation) throw new HttpError(503, "federation is not available");
        const remote = await deps.federation.link(user, {
          output: body.output,
          inputUuid: body.input_uuid,
        });
        return c.json(toRemoteEdgeOut(remote), 202);
      }
      const edge = await createEdge(deps, user, {
        outputUuid: body.output_uuid as string,
        inputUuid: body.input_uuid,
      });
      return c.json(toEdgeOut(edge), 201);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/",
      tags,
      summary:
        "List edges whose both ends the caller may see, and every edge out of the caller's own outputs",
      request: { query: ListQuery },
      responses: {
        200: jsonResponse(
          z.object({ count: z.number(), unit_node_edges: z.array(EdgeOut) }),
          "Edges",
        ),
        ...errorResponses(401, 422),
      },
    }),
    async (c) => {
      const q = c.req.valid("query");
      const { count, rows } = await listEdges(db, c.get("principal"), {
        unitUuid: q.unit_uuid,
        outputUuid: q.output_uuid,
        inputUuid: q.input_uuid,
        limit: q.limit,
        offset: q.offset,
      });
      return c.json({ count, unit_node_edges: rows.map((e) => toEdgeOut(e, e.inputVisible)) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/{uuid}",
      tags,
      summary:
        "Remove a link (its creator, the input unit's creator, the output unit's creator or an admin)",
      request: { params: UuidParam },
      responses: { 204: { description: "Removed" }, ...errorResponses(401, 403, 404, 422) },
    }),
    async (c) => {
      const user = requireUser(c.get("principal"));
      const uuid = c.req.valid("param").uuid;
      // Federation: a remote edge is unlinked with Undo(Follow) to its instance.
      if (deps.federation && (await deps.federation.unlink(user, uuid))) return c.body(null, 204);
      await deleteEdge(deps, user, uuid);
      return c.body(null, 204);
    },
  );

  return app;
}
