import { createRoute } from "@hono/zod-openapi";
import { requireAdmin } from "../http/auth.ts";
import { conflict, unprocessable } from "../http/errors.ts";
import { createRouter, errorResponses, jsonResponse } from "../http/openapi.ts";
import type { AppDeps } from "../http/types.ts";
import { BackupListOut, BackupOut, backupOut } from "./backup.schemas.ts";
import { BackupBusyError } from "./backup.service.ts";

const tags = ["admin"];

/** /admin/backups: the backup dir's backups, and "back up now" (admin only). */
export function backupRoutes(deps: AppDeps) {
  const app = createRouter();
  const { config } = deps;

  app.openapi(
    createRoute({
      method: "get",
      path: "/",
      tags,
      summary: "Backups in PEPEUNIT_BACKUP_DIR, newest first (admin)",
      responses: { 200: jsonResponse(BackupListOut, "Backups"), ...errorResponses(401, 403) },
    }),
    async (c) => {
      requireAdmin(c.get("principal"));
      const backups = deps.backups;
      return c.json(
        {
          configured: Boolean(config.backupDir),
          every_h: config.backupEveryMs ? config.backupEveryMs / 3_600_000 : null,
          keep: config.backupKeep,
          running: backups?.running() ?? false,
          backups: ((await backups?.list()) ?? []).map(backupOut),
        },
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/",
      tags,
      summary: "Start a backup into PEPEUNIT_BACKUP_DIR now (admin)",
      responses: {
        202: jsonResponse(BackupOut, "Started"),
        ...errorResponses(401, 403, 409, 422),
      },
    }),
    async (c) => {
      requireAdmin(c.get("principal"));
      const backups = deps.backups;
      if (!backups || !config.backupDir) {
        throw unprocessable("no backup directory: set PEPEUNIT_BACKUP_DIR");
      }
      if (backups.running()) throw conflict("a backup is already running");
      // Runs on after the response; its outcome is listed by GET (and logged).
      backups.run().catch((err: unknown) => {
        if (!(err instanceof BackupBusyError)) deps.log.debug({ err }, "admin backup failed");
      });
      const [entry] = (await backups.list()).filter((b) => b.result === "running");
      if (!entry) throw conflict("the backup ended before it could be listed");
      return c.json(backupOut(entry), 202);
    },
  );

  return app;
}
