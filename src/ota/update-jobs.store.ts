import { desc, eq, inArray, notInArray } from "drizzle-orm";
import type { DbLike } from "../db/database.ts";
import { units, updateJobs } from "../db/schema.ts";
import type { UpdateJob } from "./update-jobs.ts";

// Mass update jobs in the database: written as they progress, read back at start.

/** Jobs kept (and listed) per instance; older finished ones are deleted at start. */
export const MAX_JOBS_KEPT = 200;

export type StoredJob = Omit<UpdateJob, "pumping">;

export async function saveUpdateJob(db: DbLike, job: StoredJob): Promise<void> {
  const row = {
    uuid: job.uuid,
    repoUuid: job.repoUuid,
    creatorUuid: job.creatorUuid,
    kind: job.kind,
    maxInFlight: job.maxInFlight,
    failureRatioStop: job.failureRatioStop,
    total: job.total,
    sent: job.sent,
    succeeded: job.succeeded,
    failed: job.failed,
    queue: job.queue,
    inFlight: [...job.inFlight],
    status: job.status,
    stoppedReason: job.stoppedReason,
    failures: job.failures,
    createdAt: job.createdAt,
    finishedAt: job.finishedAt,
  };
  const { uuid: _uuid, repoUuid: _repo, createdAt: _created, ...changing } = row;
  await db
    .insert(updateJobs)
    .values(row)
    .onConflictDoUpdate({ target: updateJobs.uuid, set: changing });
}

/** The newest jobs, oldest first (the order they were started in); older ones are deleted. */
export async function loadUpdateJobs(db: DbLike): Promise<StoredJob[]> {
  const rows = await db
    .select()
    .from(updateJobs)
    .orderBy(desc(updateJobs.createdAt))
    .limit(MAX_JOBS_KEPT);
  if (rows.length === MAX_JOBS_KEPT) {
    await db.delete(updateJobs).where(
      notInArray(
        updateJobs.uuid,
        rows.map((r) => r.uuid),
      ),
    );
  }
  return rows.reverse().map(toStoredJob);
}

/**
 * Saved jobs as they are now (cluster mode: a process that does not run the waves reads
 * their progress here): one job, or a repo's, newest first.
 */
export async function readUpdateJobs(
  db: DbLike,
  where: { uuid: string } | { repoUuid: string },
): Promise<StoredJob[]> {
  const rows = await db
    .select()
    .from(updateJobs)
    .where(
      "uuid" in where ? eq(updateJobs.uuid, where.uuid) : eq(updateJobs.repoUuid, where.repoUuid),
    )
    .orderBy(desc(updateJobs.createdAt))
    .limit(MAX_JOBS_KEPT);
  return rows.map(toStoredJob);
}

function toStoredJob(r: typeof updateJobs.$inferSelect): StoredJob {
  return {
    uuid: r.uuid,
    repoUuid: r.repoUuid,
    creatorUuid: r.creatorUuid,
    kind: r.kind,
    maxInFlight: r.maxInFlight,
    failureRatioStop: r.failureRatioStop,
    total: r.total,
    sent: r.sent,
    succeeded: r.succeeded,
    failed: r.failed,
    queue: r.queue,
    inFlight: new Set(r.inFlight),
    status: r.status,
    stoppedReason: r.stoppedReason,
    failures: r.failures,
    createdAt: r.createdAt,
    finishedAt: r.finishedAt,
  };
}

/** Update status of units a restored job was waiting for (missing units are gone). */
export async function updateStatusOf(
  db: DbLike,
  unitUuids: string[],
): Promise<Map<string, { status: string | null; error: string | null }>> {
  if (!unitUuids.length) return new Map();
  const rows = await db
    .select({ uuid: units.uuid, status: units.updateStatus, error: units.updateError })
    .from(units)
    .where(inArray(units.uuid, unitUuids));
  return new Map(rows.map((r) => [r.uuid, { status: r.status, error: r.error }]));
}
