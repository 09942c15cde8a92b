import { z } from "@hono/zod-openapi";

const BoardItemIn = z.object({
  unit_node_uuid: z.uuid(),
  label: z.string().trim().min(1).max(64).optional(),
  values: z
    .array(z.string().min(1).max(64))
    .max(8)
    .optional()
    .openapi({ description: "Input only: one button per value, pressing it sets the input" }),
});

export const CreateBoardBody = z
  .object({
    name: z.string().trim().min(1).max(100),
    items: z.array(BoardItemIn).max(30).default([]),
  })
  .openapi("CreateBoard");

export const UpdateBoardBody = z
  .object({
    name: z.string().trim().min(1).max(100).optional(),
    items: z.array(BoardItemIn).max(30).optional(),
  })
  .openapi("UpdateBoard");

export type BoardItemInT = z.infer<typeof BoardItemIn>;

export const BoardItemOut = z
  .object({
    unit_node_uuid: z.uuid(),
    label: z.string().nullable(),
    values: z.array(z.string()),
    available: z
      .boolean()
      .openapi({ description: "false: the variable is gone or no longer visible to the owner" }),
    type: z.enum(["Input", "Output"]).nullable(),
    unit_name: z.string().nullable(),
    topic_name: z.string().nullable(),
    last_value: z.string().nullable(),
    last_value_datetime: z.string().nullable(),
  })
  .openapi("BoardItem");

export const BoardOut = z
  .object({
    uuid: z.uuid(),
    name: z.string(),
    items: z.array(BoardItemOut),
    create_datetime: z.string(),
    update_datetime: z.string(),
  })
  .openapi("Board");
