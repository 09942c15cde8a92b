import { z } from "@hono/zod-openapi";
import type { unitNodes } from "../db/schema.ts";
import { VisibilitySchema } from "../http/openapi.ts";
import { variableTopic } from "../units/unit-schema.ts";

export const UnitNodeTypeSchema = z.enum(["Input", "Output"]).openapi("UnitNodeType");

export const UnitNodeOut = z
  .object({
    uuid: z.uuid(),
    type: UnitNodeTypeSchema,
    topic_name: z.string().openapi({ description: "the name in the unit's schema template" }),
    topic: z.string().openapi({ description: "the physical MQTT topic, D/N or D/N/pepeunit" }),
    visibility: VisibilitySchema,
    is_rewritable_input: z.boolean(),
    is_data_pipe_active: z
      .boolean()
      .openapi({ description: "whether values go through the data pipe into the history" }),
    unit_uuid: z.uuid(),
    last_value: z.string().nullable(),
    last_value_datetime: z.string().nullable(),
    create_datetime: z.string(),
  })
  .openapi("UnitNode");

export type UnitNodeOutT = z.infer<typeof UnitNodeOut>;

export function toUnitNodeOut(domain: string, n: typeof unitNodes.$inferSelect): UnitNodeOutT {
  return {
    uuid: n.uuid,
    type: n.type,
    topic_name: n.topicName,
    topic: variableTopic(domain, n.uuid, n.topicName),
    visibility: n.visibility,
    is_rewritable_input: n.isRewritableInput,
    is_data_pipe_active: n.isDataPipeActive,
    unit_uuid: n.unitUuid,
    last_value: n.lastValue,
    last_value_datetime: n.lastValueAt?.toISOString() ?? null,
    create_datetime: n.createdAt.toISOString(),
  };
}
