import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { MAX_JOBS_KEPT, type StoredJob } from "./update-jobs.store.ts";
import type { UpdateOutcome } from "./update-tracker.ts";

// Mass updates (device-protocol §7 at fleet scale): the units of a repo are sent
// Update in waves — at most max_in_flight wait for their state at once — and sending
// stops when the failure ratio passes the job's threshold, so a broken version does
// not brick the whole fleet. Jobs run in memory and are saved as they progress
// (`persist`, a moment after each change, and before start() answers); restore()
// takes them back after a restart and resumes the running ones.

export type JobKind = "Manual" | "Automatic";
export type JobStatus = "Running" | "Stopped" | "Finished";

export type UpdateJob = {
  uuid: string;
  repoUuid: string;
  /** The user who started it; null for an automatic job (the repo's default branch moved). */
  creatorUuid: string | null;
  kind: JobKind;
  maxInFlight: number;
  failureRatioStop: number;
  total: number;
  sent: number;
  succeeded: number;
  failed: number;
  /** Sent, waiting for the unit's state. */
  inFlight: Set<string>;
  /** Not sent yet. */
  queue: string[];
  status: JobStatus;
  stoppedReason: string | null;
  /** The first failures with their reasons (bounded). */
  failures: Array<{ unitUuid: string; error: string }>;
  createdAt: Date;
  finishedAt: Date | null;
  pumping: boolean;
};

/** What sending one unit of a job came to. */
export type JobSendResult =
  | { status: "RequestSent" }
  | { status: "Error"; error: string }
  /** The unit no longer exists: it leaves the job without counting. */
  | { status: "Gone" };

export type StartJobInput = {
  repoUuid: string;
  creatorUuid: string | null;
  kind: JobKind;
  unitUuids: string[];
  maxInFlight: number;
  failureRatioStop: number;
};

export type UpdateJobs = {
  /**
   * Saves a job without running it (cluster mode: a process that does not hold the "ota"
   * role saves it, the one that does adopts it).
   */
  save(input: StartJobInput): Promise<UpdateJob>;
  /** Runs a saved job this process did not start (see save()); one it has is left alone. */
  adopt(saved: StoredJob): void;
  /** Starts a job; resolves once it is saved. */
  start(input: StartJobInput): Promise<UpdateJob>;
  /**
   * Takes back saved jobs after a restart (oldest first) and resumes the running ones;
   * `statusOf` reads the current update status of the units they were waiting for.
   */
  restore(
    stored: StoredJob[],
    statusOf: (unitUuids: string[]) => Promise<Map<string, UnitUpdateStatus>>,
  ): Promise<void>;
  get(uuid: string): UpdateJob | undefined;
  /** The kept jobs of a repo, newest first. */
  ofRepo(repoUuid: string): UpdateJob[];
  /** Stops the running jobs of a repo of this kind (a newer version supersedes them). */
  supersede(repoUuid: string, kind: JobKind, reason: string): void;
  /** Feeds an update outcome (from the tracker) to the job waiting for that unit. */
  outcome(o: UpdateOutcome): void;
  /** The unit was deleted: it leaves the job waiting for it without counting. */
  drop(unitUuid: string): void;
  /**
   * The unit's target moved: the job waiting for it drops it (as drop()), unless that
   * job is sending it right now — then the move is the job's own.
   */
  retargeted(unitUuid: string): void;
  stop(): Promise<void>;
};

const MAX_FAILURES_KEPT = 100;

function newJob(input: StartJobInput): UpdateJob {
  return {
    uuid: randomUUID(),
    repoUuid: input.repoUuid,
    creatorUuid: input.creatorUuid,
    kind: input.kind,
    maxInFlight: input.maxInFlight,
    failureRatioStop: input.failureRatioStop,
    total: input.unitUuids.length,
    sent: 0,
    succeeded: 0,
    failed: 0,
    inFlight: new Set(),
    queue: [...input.unitUuids],
    status: "Running",
    stoppedReason: null,
    failures: [],
    createdAt: new Date(),
    finishedAt: null,
    pumping: false,
  };
}
/** Changes of a job within this time are saved together. */
const SAVE_DELAY_MS = 100;

/** A restored job's awaited unit, as the database has it now (absent: the unit is gone). */
export type UnitUpdateStatus = { status: string | null; error: string | null };

export function createUpdateJobs(deps: {
  send(unitUuid: string, job: UpdateJob): Promise<JobSendResult>;
  /** Saves a job; a failure of start()'s first save fails start(). */
  persist?: (job: UpdateJob) => Promise<void>;
  log: Logger;
}): UpdateJobs {
  const jobs = new Map<string, UpdateJob>();
  /** Which job waits for a unit's outcome (the newest one that sent it). */
  const owner = new Map<string, UpdateJob>();
  /** Units a job's send() is running for. */
  const sending = new Set<string>();
  const pumps = new Set<Promise<void>>();
  let stopped = false;
  const dirty = new Set<UpdateJob>();
  let saveTimer: NodeJS.Timeout | null = null;
  let saving: Promise<void> = Promise.resolve();

  /** Saves the changed jobs one after the other, each as it is when its turn comes. */
  function saveDirty(): Promise<void> {
    if (saveTimer) clearTimeout(saveTimer);
    saveTimer = null;
    const persist = deps.persist;
    const batch = [...dirty];
    dirty.clear();
    if (!persist) return saving;
    for (const job of batch) {
      saving = saving.then(() =>
        persist(job).catch((err: unknown) =>
          deps.log.error({ err, job: job.uuid }, "ota: saving a job failed"),
        ),
      );
    }
    return saving;
  }

  function changed(job: UpdateJob) {
    dirty.add(job);
    saveTimer ??= setTimeout(() => void saveDirty(), SAVE_DELAY_MS);
  }

  function finishIfDone(job: UpdateJob) {
    if (job.finishedAt || job.inFlight.size) return;
    if (job.status === "Running" && job.queue.length) return;
    if (job.status === "Running") job.status = "Finished";
    job.finishedAt = new Date();
    changed(job);
  }

  function record(job: UpdateJob, unitUuid: string, status: "Success" | "Error", error: string) {
    if (!job.inFlight.delete(unitUuid)) return;
    if (owner.get(unitUuid) === job) owner.delete(unitUuid);
    if (status === "Success") {
      job.succeeded++;
    } else {
      job.failed++;
      if (job.failures.length < MAX_FAILURES_KEPT) job.failures.push({ unitUuid, error });
    }
    const done = job.succeeded + job.failed;
    if (job.status === "Running" && job.failed / done > job.failureRatioStop) {
      job.status = "Stopped";
      job.stoppedReason =
        `failure ratio ${job.failed}/${done} (${(job.failed / done).toFixed(2)}) passed ` +
        `${job.failureRatioStop}; ${job.queue.length} unit(s) not sent`;
      deps.log.warn(
        { job: job.uuid, repo: job.repoUuid },
        `ota: job stopped: ${job.stoppedReason}`,
      );
    }
    changed(job);
    schedulePump(job);
    finishIfDone(job);
  }

  async function pump(job: UpdateJob): Promise<void> {
    if (job.pumping) return;
    job.pumping = true;
    try {
      while (
        !stopped &&
        job.status === "Running" &&
        job.inFlight.size < job.maxInFlight &&
        job.queue.length
      ) {
        const unitUuid = job.queue.shift() as string;
        job.inFlight.add(unitUuid);
        owner.set(unitUuid, job);
        job.sent++;
        let result: JobSendResult;
        sending.add(unitUuid);
        try {
          result = await deps.send(unitUuid, job);
        } catch (err) {
          result = { status: "Error", error: err instanceof Error ? err.message : String(err) };
        } finally {
          sending.delete(unitUuid);
        }
        if (result.status === "Gone") {
          job.inFlight.delete(unitUuid);
          if (owner.get(unitUuid) === job) owner.delete(unitUuid);
          job.sent--;
          job.total--;
        } else if (result.status === "Error") {
          record(job, unitUuid, "Error", result.error);
        }
        // RequestSent: the tracker's outcome (maybe already in) settles it.
        changed(job);
      }
    } finally {
      job.pumping = false;
    }
    finishIfDone(job);
  }

  function schedulePump(job: UpdateJob) {
    if (job.pumping || stopped || job.status !== "Running") return;
    const p = pump(job)
      .catch((err: unknown) => deps.log.error({ err, job: job.uuid }, "ota: job failed"))
      .finally(() => pumps.delete(p));
    pumps.add(p);
  }

  function forget() {
    if (jobs.size <= MAX_JOBS_KEPT) return;
    for (const [uuid, job] of jobs) {
      if (jobs.size <= MAX_JOBS_KEPT) break;
      if (job.finishedAt) jobs.delete(uuid);
    }
  }

  /** The unit leaves the job waiting for it, uncounted (deleted, or given another target). */
  function drop(unitUuid: string) {
    const job = owner.get(unitUuid);
    if (!job?.inFlight.delete(unitUuid)) return;
    owner.delete(unitUuid);
    job.sent--;
    job.total--;
    changed(job);
    schedulePump(job);
    finishIfDone(job);
  }

  return {
    async save(input) {
      const job = newJob(input);
      await deps.persist?.(job);
      return job;
    },
    adopt(saved) {
      if (jobs.has(saved.uuid)) return;
      const job: UpdateJob = { ...saved, inFlight: new Set(saved.inFlight), pumping: false };
      jobs.set(job.uuid, job);
      forget();
      finishIfDone(job);
      schedulePump(job);
    },
    async start(input) {
      const job = newJob(input);
      jobs.set(job.uuid, job);
      // Saved before anyone is told the job exists, so a restart cannot lose it.
      try {
        await deps.persist?.(job);
      } catch (err) {
        jobs.delete(job.uuid);
        throw err;
      }
      forget();
      finishIfDone(job);
      schedulePump(job);
      return job;
    },
    async restore(stored, statusOf) {
      for (const saved of stored) {
        // Adopted meanwhile: that copy is running already.
        if (jobs.has(saved.uuid)) continue;
        const job: UpdateJob = { ...saved, inFlight: new Set(saved.inFlight), pumping: false };
        jobs.set(job.uuid, job);
      }
      const running = [...jobs.values()].filter((j) => j.status === "Running");
      const awaited = await statusOf(running.flatMap((j) => [...j.inFlight]));
      for (const job of running) {
        for (const unitUuid of [...job.inFlight]) {
          const now = awaited.get(unitUuid);
          if (!now) {
            // Deleted while the instance was down: leaves the job without counting.
            job.inFlight.delete(unitUuid);
            job.sent--;
            job.total--;
            changed(job);
          } else if (now.status === "RequestSent") {
            // Re-armed by the tracker, whose outcome comes back through outcome().
            owner.set(unitUuid, job);
          } else if (now.status === "Success") {
            record(job, unitUuid, "Success", "");
          } else {
            record(job, unitUuid, "Error", now.error ?? "update status lost in a restart");
          }
        }
        schedulePump(job);
        finishIfDone(job);
      }
    },
    get: (uuid) => jobs.get(uuid),
    ofRepo: (repoUuid) => [...jobs.values()].filter((j) => j.repoUuid === repoUuid).reverse(),
    supersede(repoUuid, kind, reason) {
      for (const job of jobs.values()) {
        if (job.repoUuid !== repoUuid || job.kind !== kind || job.status !== "Running") continue;
        job.status = "Stopped";
        job.stoppedReason = reason;
        // The newer job sends these units again and takes their outcomes.
        for (const unitUuid of job.inFlight)
          if (owner.get(unitUuid) === job) owner.delete(unitUuid);
        job.inFlight.clear();
        changed(job);
        finishIfDone(job);
      }
    },
    outcome(o) {
      const job = owner.get(o.unitUuid);
      if (job) record(job, o.unitUuid, o.status, o.error ?? "");
    },
    drop,
    retargeted(unitUuid) {
      if (!sending.has(unitUuid)) drop(unitUuid);
    },
    async stop() {
      stopped = true;
      await Promise.all([...pumps]);
      await saveDirty();
    },
  };
}
