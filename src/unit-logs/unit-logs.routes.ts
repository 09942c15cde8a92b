import { createRoute, z } from "@hono/zod-openapi";
import { requireUser } from "../http/auth.ts";
import {
  createRouter,
  errorResponses,
  jsonResponse,
  Pagination,
  UuidParam,
} from "../http/openapi.ts";
import type { AppDeps } from "../http/types.ts";
import { LOG_LEVELS } from "../units/unit-env.ts";
import { loadManagedUnit } from "../units/units.access.ts";
import { repeatable } from "../units/units.schemas.ts";
import { listUnitLogs } from "./unit-logs.store.ts";

// What a unit reported on its log/pepeunit topic (stored by the broker's ingest,
// pruned after PEPEUNIT_LOG_RETENTION_H). Only the unit's creator or an admin reads them.

const LogLevelSchema = z.enum(LOG_LEVELS).openapi("LogLevel");

const UnitLogOut = z
  .object({
    id: z.number(),
    unit_uuid: z.uuid(),
    level: LogLevelSchema,
    text: z.string(),
    create_datetime: z.string(),
  })
  .openapi("UnitLog");

const LogsQuery = Pagination.extend({
  level: repeatable(LogLevelSchema).optional().openapi({ description: "only these levels" }),
});

export function unitLogsRoutes(deps: AppDeps) {
  const db = deps.database.db;
  const app = createRouter();

  app.openapi(
    createRoute({
      method: "get",
      path: "/{uuid}/logs",
      tags: ["units"],
      summary: "The unit's log entries, newest first (creator or admin)",
      description: "Send the unit LogSync to have it publish the entries it keeps in its log file.",
      request: { params: UuidParam, query: LogsQuery },
      responses: {
        200: jsonResponse(
          z.object({ count: z.number(), unit_logs: z.array(UnitLogOut) }),
          "Log entries",
        ),
        ...errorResponses(401, 403, 404, 422),
      },
    }),
    async (c) => {
      const user = requireUser(c.get("principal"));
      const unit = await loadManagedUnit(db, user, c.req.valid("param").uuid);
      const q = c.req.valid("query");
      // Entries the broker received a moment ago are still batched in memory: write them first.
      await deps.broker.flush();
      const { count, rows } = await listUnitLogs(db, {
        unitUuid: unit.uuid,
        levels: q.level,
        limit: q.limit,
        offset: q.offset,
      });
      const unit_logs = rows.map((r) => ({
        id: r.id,
        unit_uuid: r.unitUuid,
        level: r.level as z.infer<typeof LogLevelSchema>,
        text: r.text,
        create_datetime: r.createdAt.toISOString(),
      }));
      return c.json({ count, unit_logs }, 200);
    },
  );

  return app;
}
