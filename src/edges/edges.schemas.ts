import { z } from "@hono/zod-openapi";
import type { unitNodeEdges } from "../db/schema.ts";

export const CreateEdgeBody = z
  .object({
    output_uuid: z
      .uuid()
      .optional()
      .openapi({ description: "an Output variable the caller may read" }),
    // Federation: a remote output instead of output_uuid (src/federation/links.ts).
    output: z.string().min(3).max(2000).optional().openapi({
      description:
        "a remote output: `<uuid>@<domain>` or its actor URL; the edge stays Pending until the remote instance accepts",
    }),
    input_uuid: z.uuid().openapi({ description: "an Input variable the caller may write into" }),
  })
  .refine((b) => (b.output_uuid === undefined) !== (b.output === undefined), {
    message: "give exactly one of output_uuid and output",
  })
  .openapi("CreateUnitNodeEdge");

export const EdgeOut = z
  .object({
    uuid: z.uuid(),
    output_uuid: z.uuid(),
    input_uuid: z.uuid().nullable().openapi({
      description:
        "null when the caller sees the link only as the output's owner and may not see the input (e.g. it is in another user's Private unit)",
    }),
    creator_uuid: z.uuid(),
    create_datetime: z.string(),
  })
  .openapi("UnitNodeEdge");

export function toEdgeOut(
  e: typeof unitNodeEdges.$inferSelect,
  inputVisible = true,
): z.infer<typeof EdgeOut> {
  return {
    uuid: e.uuid,
    output_uuid: e.outputUuid,
    input_uuid: inputVisible ? e.inputUuid : null,
    creator_uuid: e.creatorUuid,
    create_datetime: e.createdAt.toISOString(),
  };
}
