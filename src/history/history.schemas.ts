import { z } from "@hono/zod-openapi";
import {
  AGGREGATION_FUNCTIONS,
  POLICY_TYPES,
  parseIsoDate,
  TIME_WINDOW_SIZES,
} from "./data-pipe-config.ts";

// The value history's API shapes. Names follow Pepeunit's data pipe API.

export const MAX_PAGE = 10_000;

export const DataPipeErrorOut = z
  .object({
    stage: z.enum(["Yaml", "ActivePeriod", "Filters", "Transformations", "ProcessingPolicy"]),
    message: z.string(),
  })
  .openapi("DataPipeError");

export const DataPipeErrorsOut = z.array(DataPipeErrorOut).openapi("DataPipeErrors");

const isoDate = z
  .string()
  .refine((s) => !Number.isNaN(parseIsoDate(s)), "an ISO 8601 date-time")
  .openapi({ example: "2026-01-01T00:00:00Z" });

export const HistoryQuery = z.object({
  uuid: z.uuid(),
  type: z
    .enum(POLICY_TYPES as [string, ...string[]])
    .optional()
    .openapi({
      description: "which history to read; default: the variable's current policy",
    }),
  start_create_datetime: isoDate.optional(),
  end_create_datetime: isoDate.optional(),
  relative_time: z
    .string()
    .regex(/^\d{1,6}[smhdw]$/, "a number and s, m, h, d or w, e.g. 15m, 24h, 7d")
    .optional()
    .openapi({
      description: "only the last span, e.g. 15m, 24h, 7d (instead of start_create_datetime)",
    }),
  aggregation_type: z.enum(AGGREGATION_FUNCTIONS as [string, ...string[]]).optional(),
  time_window_size: z.coerce
    .number()
    .int()
    .refine(
      (n) => (TIME_WINDOW_SIZES as readonly number[]).includes(n),
      `one of ${TIME_WINDOW_SIZES.join(", ")}`,
    )
    .optional(),
  offset: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(MAX_PAGE).default(100),
  order_by_create_date: z.enum(["asc", "desc"]).default("asc"),
  max_points: z.coerce.number().int().min(1).max(MAX_PAGE).optional().openapi({
    description:
      "at most this many points spread evenly over the range (numbers averaged per bucket); offset/limit do not apply",
  }),
});

export const RecordOutSchema = z
  .object({
    state: z.string(),
    state_type: z.enum(["Number", "Text"]),
    create_datetime: z.string(),
  })
  .openapi("HistoryRecord");

export const AggregateOutSchema = z
  .object({
    state: z.number(),
    aggregation_type: z.enum(AGGREGATION_FUNCTIONS as [string, ...string[]]),
    time_window_size: z.number(),
    create_datetime: z.string(),
    start_window_datetime: z.string(),
    end_window_datetime: z.string(),
  })
  .openapi("HistoryAggregate");

export const HistoryPage = z
  .object({
    count: z
      .number()
      .openapi({ description: "matching rows (with max_points: the points returned)" }),
    pipe_data: z.array(z.union([RecordOutSchema, AggregateOutSchema])),
  })
  .openapi("HistoryPage");

/** A body the route reads itself (no validator runs): raw text of these types, or a file. */
export const fileBody = (types: string[], description: string) => ({
  required: true,
  description,
  content: {
    ...Object.fromEntries(types.map((t) => [t, { schema: { type: "string" as const } }])),
    "multipart/form-data": {
      schema: {
        type: "object" as const,
        properties: { file: { type: "string" as const, format: "binary" } },
        required: ["file"],
      },
    },
  },
});
