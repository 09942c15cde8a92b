import { createRoute, z } from "@hono/zod-openapi";
import {
  createRouter,
  ErrorSchema,
  errorResponses,
  jsonResponse,
  UuidParam,
} from "../http/openapi.ts";
import type { AppDeps } from "../http/types.ts";
import { DataPipeErrorsOut, fileBody, HistoryPage, HistoryQuery } from "./history.schemas.ts";
import { createHistoryService } from "./history.service.ts";
import { readTextBody, streamBody } from "./request-body.ts";

// Value history under /unit_nodes (Pepeunit's data pipe API). Mounted before the
// variables' own routes so these fixed names win over /unit_nodes/{uuid}.

const tags = ["unit_nodes"];
/** A YAML config is small; this is far above any real one. */
const MAX_YAML_BYTES = 256 * 1024;
/** CSV import cap; the route reads its body itself (it needs more than the global limit). */
export const MAX_CSV_BYTES = 20 * 1024 * 1024;

const tooLarge = (what: string) => ({
  413: {
    description: `The ${what} is too large`,
    content: { "application/json": { schema: ErrorSchema } },
  },
});

const yamlTypes = ["application/yaml", "text/yaml", "text/plain"];
const configBody = fileBody(
  yamlTypes,
  "the data pipe config (YAML), raw or as the multipart field `file`",
);

export function historyRoutes(deps: AppDeps) {
  const service = createHistoryService(deps);
  const app = createRouter();

  app.openapi(
    createRoute({
      method: "post",
      path: "/check_data_pipe_config",
      tags,
      summary: "Check a data pipe config (YAML): every error with its stage; empty list = valid",
      request: { body: configBody },
      responses: {
        200: jsonResponse(DataPipeErrorsOut, "The errors found (none: valid)"),
        ...errorResponses(422),
        ...tooLarge("config"),
      },
    }),
    async (c) => c.json(service.checkConfig(await readTextBody(c.req.raw, MAX_YAML_BYTES)), 200),
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/set_data_pipe_config/{uuid}",
      tags,
      summary:
        "Store a variable's data pipe config (unit creator or admin); nothing changes if invalid",
      request: { params: UuidParam, body: configBody },
      responses: {
        204: { description: "Stored" },
        422: jsonResponse(
          z.object({ detail: z.union([DataPipeErrorsOut, z.unknown()]) }),
          "The config's errors ({stage, message} each), or an invalid request",
        ),
        ...errorResponses(401, 403, 404),
        ...tooLarge("config"),
      },
    }),
    async (c) => {
      const { uuid } = c.req.valid("param");
      const principal = c.get("principal");
      const yaml = await readTextBody(c.req.raw, MAX_YAML_BYTES);
      const errors = await service.setConfig(principal, uuid, yaml);
      if (errors.length) return c.json({ detail: errors }, 422);
      return c.body(null, 204);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/get_data_pipe_config/{uuid}",
      tags,
      summary: "A variable's stored data pipe config (YAML), for whoever may read the variable",
      request: { params: UuidParam },
      responses: {
        200: {
          description: "The YAML",
          content: { "application/yaml": { schema: { type: "string" } } },
        },
        ...errorResponses(401, 404, 422),
      },
    }),
    async (c) => {
      const yaml = await service.getConfig(c.get("principal"), c.req.valid("param").uuid);
      return c.body(yaml, 200, { "content-type": "application/yaml; charset=utf-8" });
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/delete_data_pipe_data/{uuid}",
      tags,
      summary: "Delete a variable's whole history, open windows included (unit creator or admin)",
      request: { params: UuidParam },
      responses: { 204: { description: "Deleted" }, ...errorResponses(401, 403, 404, 422) },
    }),
    async (c) => {
      await service.deleteData(c.get("principal"), c.req.valid("param").uuid);
      return c.body(null, 204);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/get_data_pipe_data",
      tags,
      summary: "A variable's history: records, or one record per closed window (Aggregation)",
      description:
        "Whoever may read the variable may read its history. LastValue keeps one record: the last accepted value.",
      request: { query: HistoryQuery },
      responses: {
        200: jsonResponse(HistoryPage, "The page"),
        ...errorResponses(401, 404, 422),
      },
    }),
    async (c) => {
      const page = await service.query(c.get("principal"), c.req.valid("query"));
      // A records page is streamed as the store reads it (see pageRecordsText).
      if (page.stream !== undefined) {
        return c.body(page.stream, 200, { "content-type": "application/json" }) as never;
      }
      return c.json(page, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/get_data_pipe_data_csv/{uuid}",
      tags,
      summary: "A variable's history as CSV (header row, ISO 8601 times)",
      request: { params: UuidParam },
      responses: {
        200: { description: "The CSV", content: { "text/csv": { schema: { type: "string" } } } },
        ...errorResponses(401, 404, 422),
      },
    }),
    async (c) => {
      const { uuid } = c.req.valid("param");
      const stream = await service.exportCsv(c.get("principal"), uuid);
      return c.body(stream, 200, {
        "content-type": "text/csv; charset=utf-8",
        "content-disposition": `attachment; filename="history-${uuid}.csv"`,
      });
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/set_data_pipe_data_csv/{uuid}",
      tags,
      summary: "Replace a variable's history with a CSV (up to 20 MB; unit creator or admin)",
      description:
        "Rows are checked against the variable's data pipe config; a bad row fails the whole import (422 naming its line) and nothing is written.",
      request: {
        params: UuidParam,
        body: fileBody(["text/csv", "text/plain"], "the CSV, raw or as the multipart field `file`"),
      },
      responses: {
        200: jsonResponse(z.object({ count: z.number() }), "How many rows were imported"),
        ...errorResponses(401, 403, 404, 422),
        ...tooLarge("CSV"),
      },
    }),
    async (c) => {
      const { uuid } = c.req.valid("param");
      const count = await service.importCsv(c.get("principal"), uuid, () =>
        streamBody(c.req.raw, MAX_CSV_BYTES),
      );
      return c.json({ count }, 200);
    },
  );

  return app;
}
