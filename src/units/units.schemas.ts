import { z } from "@hono/zod-openapi";
import { VisibilitySchema } from "../http/openapi.ts";
import { UnitNodeOut, type UnitNodeOutT } from "../unit-nodes/unit-nodes.schemas.ts";
import type { UnitRow } from "./units.store.ts";

export const UnitNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,64}$/, "1-64 characters: letters, digits, _ . -")
  .openapi({ example: "greenhouse-1" });

const RefName = z.string().min(1).max(200);
const CommitSha = z.string().regex(/^[0-9a-fA-F]{7,40}$/, "a hex commit sha (7-40 characters)");

export const CreateUnitBody = z
  .object({
    repo_uuid: z.uuid(),
    name: UnitNameSchema,
    visibility: VisibilitySchema.optional().openapi({
      description: "defaults to the repo's visibility",
    }),
    follow_repo: z.boolean().default(true),
    branch: RefName.nullish(),
    commit: CommitSha.nullish(),
    tag: RefName.nullish(),
  })
  .openapi("CreateUnit");

export const UpdateUnitBody = z
  .object({
    name: UnitNameSchema.optional(),
    visibility: VisibilitySchema.optional(),
    follow_repo: z.boolean().optional(),
    branch: RefName.nullish(),
    commit: CommitSha.nullish(),
    tag: RefName.nullish(),
  })
  .openapi("UpdateUnit");

export const UpdateStatusSchema = z.enum(["RequestSent", "Success", "Error"]);

export const UnitOut = z
  .object({
    uuid: z.uuid(),
    name: z.string(),
    visibility: VisibilitySchema,
    repo_uuid: z.uuid(),
    creator_uuid: z.uuid(),
    follow_repo: z.boolean(),
    branch: z.string(),
    tag: z.string().nullable(),
    commit: z.string(),
    create_datetime: z.string(),
    last_state: z.unknown().nullable(),
    last_seen_datetime: z.string().nullable(),
    current_commit: z.string().nullable(),
    update_status: UpdateStatusSchema.nullable(),
    update_error: z.string().nullable(),
    is_online: z
      .boolean()
      .openapi({ description: "whether the unit holds a live MQTT connection right now" }),
    unit_nodes: z.array(UnitNodeOut),
  })
  .openapi("Unit");

export type UnitOutT = z.infer<typeof UnitOut>;

export function toUnitOut(
  u: Omit<UnitRow, "stateStorageEnc">,
  nodes: UnitNodeOutT[],
  isOnline = false,
): UnitOutT {
  return {
    uuid: u.uuid,
    name: u.name,
    visibility: u.visibility,
    repo_uuid: u.repoUuid,
    creator_uuid: u.creatorUuid,
    follow_repo: u.followRepo,
    branch: u.branch,
    tag: u.tag,
    commit: u.commit,
    create_datetime: u.createdAt.toISOString(),
    last_state: u.lastState ?? null,
    last_seen_datetime: u.lastSeenAt?.toISOString() ?? null,
    current_commit: u.currentCommit,
    update_status: u.updateStatus,
    update_error: u.updateError,
    is_online: isOnline,
    unit_nodes: nodes,
  };
}

/** Repeatable query parameter: `?x=a&x=b` arrives as an array, `?x=a` as a string. */
export const repeatable = <T extends z.ZodType>(item: T) =>
  z
    .union([item, z.array(item).max(500)])
    .transform((v) => (Array.isArray(v) ? v : [v]) as Array<z.infer<T>>);
