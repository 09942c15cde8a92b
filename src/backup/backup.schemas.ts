import { z } from "@hono/zod-openapi";
import type { BackupEntry } from "./backup.service.ts";

export const BackupOut = z
  .object({
    name: z.string(),
    created_at: z.string(),
    size: z.number().int().nullable(),
    result: z.enum(["ok", "failed", "running"]),
    error: z.string().nullable(),
  })
  .openapi("Backup");

export const BackupListOut = z
  .object({
    /** PEPEUNIT_BACKUP_DIR is set: backups can be listed and started here. */
    configured: z.boolean(),
    every_h: z.number().nullable(),
    keep: z.number().int(),
    running: z.boolean(),
    backups: z.array(BackupOut),
  })
  .openapi("BackupList");

export function backupOut(e: BackupEntry): z.infer<typeof BackupOut> {
  return { name: e.name, created_at: e.createdAt, size: e.size, result: e.result, error: e.error };
}
