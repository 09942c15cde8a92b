import { z } from "@hono/zod-openapi";
import type { repos } from "../db/schema.ts";
import { Pagination, VisibilitySchema } from "../http/openapi.ts";

export const MIN_SYNC_INTERVAL_S = 60;
export const DEFAULT_SYNC_INTERVAL_S = 86400;

const Name = z.string().trim().min(1).max(100);
const SyncInterval = z
  .number()
  .int()
  .min(MIN_SYNC_INTERVAL_S)
  .max(365 * 86400);

export const CredentialsSchema = z
  .object({
    username: z.string().min(1).max(256),
    password: z.string().min(1).max(4096),
  })
  .openapi("GitCredentials");

export const CreateRepoBody = z
  .object({
    name: Name,
    url: z.string().min(1).openapi({ example: "https://git.example.org/maker/thermometer.git" }),
    is_private: z.boolean().default(false),
    credentials: CredentialsSchema.optional(),
    visibility: VisibilitySchema.default("Public"),
    sync_interval_s: SyncInterval.default(DEFAULT_SYNC_INTERVAL_S),
    auto_sync: z.boolean().default(true),
  })
  .openapi("CreateRepo");

export const UpdateRepoBody = z
  .object({
    name: Name.optional(),
    visibility: VisibilitySchema.optional(),
    sync_interval_s: SyncInterval.optional(),
    auto_sync: z.boolean().optional(),
    default_branch: z.string().min(1).max(255).optional(),
    credentials: CredentialsSchema.optional(),
    // Present only so the refusal names the reason instead of silently ignoring it.
    url: z.unknown().optional().openapi({ description: "refused: the clone URL never changes" }),
    is_private: z.unknown().optional().openapi({ description: "refused when it differs" }),
  })
  .openapi("UpdateRepo");

export const ListReposQuery = Pagination.extend({
  visibility: VisibilitySchema.optional(),
  creator_uuid: z.uuid().optional(),
  search: z.string().max(100).optional(),
});

export const SyncStatusSchema = z.enum(["Pending", "Syncing", "Synced", "Error"]);

export const RepoOut = z
  .object({
    uuid: z.uuid(),
    name: z.string(),
    url: z.string(),
    is_private: z.boolean(),
    has_credentials: z.boolean(),
    visibility: VisibilitySchema,
    sync_interval_s: z.number(),
    auto_sync: z.boolean(),
    default_branch: z.string().nullable(),
    sync_status: SyncStatusSchema,
    sync_error: z.string().nullable(),
    last_synced_datetime: z.string().nullable(),
    next_sync_datetime: z.string().nullable(),
    creator_uuid: z.uuid(),
    create_datetime: z.string(),
    update_datetime: z.string(),
  })
  .openapi("Repo");

export const RepoListOut = z
  .object({ count: z.number(), repos: z.array(RepoOut) })
  .openapi("RepoList");

const GitRefOut = z.object({ name: z.string(), commit: z.string() });
export const VersionsOut = z
  .object({ branches: z.array(GitRefOut), tags: z.array(GitRefOut) })
  .openapi("RepoVersions");

export type RepoRow = typeof repos.$inferSelect;

/** The API form of a repo: credentials never leave, only whether there are some. */
export function toRepoOut(r: RepoRow): z.infer<typeof RepoOut> {
  return {
    uuid: r.uuid,
    name: r.name,
    url: r.url,
    is_private: r.isPrivate,
    has_credentials: r.credentialsEnc !== null,
    visibility: r.visibility,
    sync_interval_s: r.syncIntervalS,
    auto_sync: r.autoSync,
    default_branch: r.defaultBranch,
    sync_status: r.syncStatus,
    sync_error: r.syncError,
    last_synced_datetime: r.lastSyncedAt?.toISOString() ?? null,
    next_sync_datetime: r.nextSyncAt?.toISOString() ?? null,
    creator_uuid: r.creatorUuid,
    create_datetime: r.createdAt.toISOString(),
    update_datetime: r.updatedAt.toISOString(),
  };
}
