import { z } from "zod";
import { packageVersion } from "../project-root.ts";

// What a backup archive holds (one .tar.gz, entries in this order):
//   db/<NNN>-<table>.<MMMM>.jsonl   rows as JSON lines, tables in foreign-key order
//   db/sequences.json               every sequence's last value
//   secrets.env                     PEPEUNIT_SECRET_KEY / PEPEUNIT_ENCRYPT_KEY
//   repositories/<uuid>/...         the bare clones
//   manifest.json                   last: written only once everything before is in,
//                                   with the sha256 of every other entry

export const FORMAT = "pepeunit-backup";
export const FORMAT_VERSION = 1;
export const MANIFEST = "manifest.json";
export const SECRETS = "secrets.env";
export const SEQUENCES = "db/sequences.json";
export const REPOS_PREFIX = "repositories/";

export const ManifestSchema = z.object({
  format: z.literal(FORMAT),
  format_version: z.number().int(),
  instance_version: z.string(),
  schema: z.object({ index: z.number().int(), tag: z.string() }),
  database_kind: z.enum(["pglite", "postgres"]),
  created_at: z.string(),
  tables: z.array(
    z.object({ name: z.string(), rows: z.number().int(), files: z.array(z.string()) }),
  ),
  files: z.record(z.string(), z.object({ size: z.number().int(), sha256: z.string() })),
});
export type Manifest = z.infer<typeof ManifestSchema>;

export function instanceVersion(): string {
  return packageVersion();
}

/** A refusal of backup or restore with a message for the person running it (exit 2). */
export class BackupError extends Error {}

/** Names a scheduled or default backup: sorts by time, and says what it is. */
export function backupFileName(at: Date): string {
  return `pepeunit-backup-${at.toISOString().replace(/[:.]/g, "-")}.tar.gz`;
}

export const BACKUP_NAME_RE = /^pepeunit-backup-[0-9TZ-]+\.tar\.gz$/;

export type Progress = (step: string, fraction: number) => void;
