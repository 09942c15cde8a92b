import { z } from "@hono/zod-openapi";
import type { UpdateJob } from "./update-jobs.ts";

const RefName = z.string().min(1).max(200);
const CommitSha = z.string().regex(/^[0-9a-fA-F]{7,40}$/, "a hex commit sha (7-40 characters)");

export const UnitUpdateBody = z
  .object({
    follow_repo: z.boolean().optional().openapi({
      description: "true: follow the repo's default branch head (branch/commit/tag must be absent)",
    }),
    branch: RefName.nullish().openapi({ description: "defaults to the unit's branch" }),
    commit: CommitSha.nullish(),
    tag: RefName.nullish(),
  })
  .openapi("UnitUpdate");

export const MassUpdateBody = z
  .object({
    max_in_flight: z.number().int().min(1).max(10_000).default(50).openapi({
      description: "at most this many units wait for their state at once",
    }),
    failure_ratio_stop: z.number().min(0).max(1).default(0.2).openapi({
      description: "sending stops once failed / (succeeded + failed) passes this",
    }),
  })
  .openapi("MassUpdate");

export const JobParams = z.object({
  uuid: z.uuid().openapi({ param: { name: "uuid", in: "path" } }),
  job: z.uuid().openapi({ param: { name: "job", in: "path" } }),
});

export const UpdateJobOut = z
  .object({
    uuid: z.uuid(),
    repo_uuid: z.uuid(),
    kind: z.enum(["Manual", "Automatic"]),
    status: z.enum(["Running", "Stopped", "Finished"]).openapi({
      description: "Stopped: no more units are sent (in-flight ones are still tracked)",
    }),
    max_in_flight: z.number(),
    failure_ratio_stop: z.number(),
    total: z.number(),
    sent: z.number(),
    succeeded: z.number(),
    failed: z.number(),
    in_flight: z.number().openapi({ description: "sent, waiting for the unit's state" }),
    pending: z.number().openapi({ description: "not sent yet (never sent, once stopped)" }),
    stopped_reason: z.string().nullable(),
    failures: z.array(z.object({ unit_uuid: z.uuid(), error: z.string() })),
    create_datetime: z.string(),
    finish_datetime: z.string().nullable(),
  })
  .openapi("UnitUpdateJob");

export function toUpdateJobOut(job: UpdateJob): z.infer<typeof UpdateJobOut> {
  return {
    uuid: job.uuid,
    repo_uuid: job.repoUuid,
    kind: job.kind,
    status: job.status,
    max_in_flight: job.maxInFlight,
    failure_ratio_stop: job.failureRatioStop,
    total: job.total,
    sent: job.sent,
    succeeded: job.succeeded,
    failed: job.failed,
    in_flight: job.inFlight.size,
    pending: job.queue.length,
    stopped_reason: job.stoppedReason,
    failures: job.failures.map((f) => ({ unit_uuid: f.unitUuid, error: f.error })),
    create_datetime: job.createdAt.toISOString(),
    finish_datetime: job.finishedAt?.toISOString() ?? null,
  };
}
