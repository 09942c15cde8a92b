import { and, asc, eq } from "drizzle-orm";
import { COMMANDS, commandListed, sendCommand } from "../commands/commands.service.ts";
import { units } from "../db/schema.ts";
import { HttpError } from "../http/errors.ts";
import type { AppDeps } from "../http/types.ts";
import { stateIntervalS } from "../units/unit-env.ts";
import { changeUnitVersion, type VersionTarget } from "../units/unit-version.service.ts";
import { findRepo, findUnit, type UnitRow } from "../units/units.store.ts";
import {
  loadUpdateJobs,
  readUpdateJobs,
  type StoredJob,
  saveUpdateJob,
  updateStatusOf,
} from "./update-jobs.store.ts";
import {
  createUpdateJobs,
  type JobKind,
  type JobSendResult,
  type UpdateJob,
} from "./update-jobs.ts";
import { markError, markRequestSent } from "./update-status.store.ts";
import { createUpdateTracker, type UpdateTracker } from "./update-tracker.ts";

// The OTA flow of device-protocol §7: move a unit to a version (variables re-synced),
// publish Update with that version's sha, mark it RequestSent, then Success when it
// reports the sha or Error after 2 × PU_STATE_SEND_INTERVAL. Three triggers share it:
// the repo's default branch moved (units that follow it), a user's request, and a
// unit asking through the command endpoint.

/** Everything but the OTA service itself (it is built from these). */
export type OtaDeps = Omit<AppDeps, "ota">;

export type RequestResult =
  | { status: "RequestSent"; commit: string }
  | { status: "Error"; commit: string; error: string; reason: "not-listed" | "publish-failed" };

export type MassUpdateInput = {
  repoUuid: string;
  creatorUuid: string | null;
  kind: JobKind;
  unitUuids: string[];
  maxInFlight: number;
  failureRatioStop: number;
};

export type OtaService = {
  /** Re-arms units left RequestSent and starts listening (repo syncs, unit states). */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Sends Update for the unit's current target version. */
  requestUpdate(unitUuid: string): Promise<RequestResult>;
  /** Moves the unit to `target` first (when given), then sends Update. HttpErrors for a bad target. */
  updateUnit(unitUuid: string, target: VersionTarget | null): Promise<RequestResult>;
  /** Resolves once the job is saved (a restart resumes it). */
  startMassUpdate(input: MassUpdateInput): Promise<UpdateJob>;
  /** A job as the process running its waves sees it (cluster mode: as last saved). */
  job(uuid: string): Promise<UpdateJob | undefined>;
  jobsOfRepo(repoUuid: string): Promise<UpdateJob[]>;
};

/** Automatic updates after a repo sync: waves of this size, never stopped by failures. */
const AUTO_MAX_IN_FLIGHT = 50;
const NOT_LISTED = `the unit's schema does not list ${COMMANDS.Update} in input_base_topic: the device cannot be told`;

export function createOtaService(deps: OtaDeps, opts: { sweepMs?: number } = {}): OtaService {
  const { config, events, log } = deps;
  const db = deps.database.db;
  const tracker: UpdateTracker = createUpdateTracker({
    db,
    events,
    log,
    sweepMs: opts.sweepMs ?? Math.min(1000, config.stateSendIntervalS * 250),
  });

  /** 2 × the unit's PU_STATE_SEND_INTERVAL (its env value; the instance default otherwise). */
  function windowOf(envEnc: string): number {
    return (
      2 *
      stateIntervalS(config, envEnc, (err) =>
        log.warn({ err }, "ota: a unit's env cannot be read; using the default state interval"),
      )
    );
  }

  async function requestFor(unit: UnitRow): Promise<RequestResult> {
    const commit = unit.commit;
    if (!(await commandListed(deps, unit, "Update"))) {
      await markError(db, unit.uuid, NOT_LISTED);
      tracker.awaitTarget(unit.uuid, commit);
      events.emit("unit.update-status", {
        unitUuid: unit.uuid,
        commit,
        status: "Error",
        error: NOT_LISTED,
      });
      return { status: "Error", commit, error: NOT_LISTED, reason: "not-listed" };
    }
    // Recorded and armed before the publish: a device answering at once finds it waited for.
    const at = new Date();
    await markRequestSent(db, unit.uuid, at);
    tracker.arm(unit.uuid, commit, at, windowOf(unit.envEnc));
    events.emit("unit.update-status", {
      unitUuid: unit.uuid,
      commit,
      status: "RequestSent",
      error: null,
    });
    try {
      await sendCommand(deps, unit, "Update");
    } catch (err) {
      const error = `publish failed: ${err instanceof Error ? err.message : String(err)}`;
      await tracker.fail(unit.uuid, error);
      return { status: "Error", commit, error, reason: "publish-failed" };
    }
    log.info({ unitUuid: unit.uuid, commit }, "ota: Update sent");
    return { status: "RequestSent", commit };
  }

  async function loadUnit(unitUuid: string): Promise<UnitRow> {
    const unit = await findUnit(db, unitUuid);
    if (!unit) throw new HttpError(404, "unit not found");
    return unit;
  }

  async function updateUnit(unitUuid: string, target: VersionTarget | null) {
    if (target) await changeUnitVersion(deps, unitUuid, target);
    return requestFor(await loadUnit(unitUuid));
  }

  /** The default branch head a job moves followers to, read once per job (not per unit). */
  const jobHeads = new WeakMap<UpdateJob, Promise<string | null>>();
  function headFor(job: UpdateJob): Promise<string | null> {
    let head = jobHeads.get(job);
    if (!head) {
      head = findRepo(db, job.repoUuid).then((repo) =>
        repo?.defaultBranch
          ? deps.git.resolveCommit(repo.uuid, `refs/heads/${repo.defaultBranch}`)
          : null,
      );
      jobHeads.set(job, head);
    }
    return head;
  }

  /** One unit of a job: follow-repo units move to the default branch head, others re-send their target. */
  async function sendForJob(unitUuid: string, job: UpdateJob): Promise<JobSendResult> {
    const unit = await findUnit(db, unitUuid);
    if (!unit) return { status: "Gone" };
    try {
      // A follower already at the head needs no version change (and no variable re-sync).
      const move = unit.followRepo && unit.commit !== (await headFor(job));
      const result = await updateUnit(unit.uuid, move ? { followRepo: true } : null);
      return result.status === "RequestSent" ? result : { status: "Error", error: result.error };
    } catch (err) {
      // The version cannot be set (its template is invalid, the branch is gone): say why.
      const error = err instanceof Error ? err.message : String(err);
      if (err instanceof HttpError && err.status === 404) return { status: "Gone" };
      await markError(db, unit.uuid, error).then(
        () => tracker.awaitTarget(unit.uuid, unit.commit),
        () => {},
      );
      events.emit("unit.update-status", {
        unitUuid: unit.uuid,
        commit: unit.commit,
        status: "Error",
        error,
      });
      return { status: "Error", error };
    }
  }

  const jobs = createUpdateJobs({
    send: sendForJob,
    persist: (job) => saveUpdateJob(db, job),
    log,
  });
  tracker.onOutcome((o) => jobs.outcome(o));

  /** The repo's default branch moved: every unit following the repo gets the new head. */
  async function onRepoSynced(repoUuid: string, changed: string[]) {
    const repo = await findRepo(db, repoUuid);
    if (!repo?.defaultBranch || !changed.includes(repo.defaultBranch)) return;
    const followers = await db
      .select({ uuid: units.uuid })
      .from(units)
      .where(and(eq(units.repoUuid, repoUuid), eq(units.followRepo, true)))
      .orderBy(asc(units.createdAt), asc(units.uuid));
    if (!followers.length) return;
    jobs.supersede(repoUuid, "Automatic", "superseded: the default branch moved again");
    const job = await jobs.start({
      repoUuid,
      creatorUuid: null,
      kind: "Automatic",
      unitUuids: followers.map((f) => f.uuid),
      maxInFlight: AUTO_MAX_IN_FLIGHT,
      // Automatic updates are never stopped: every follower must end on the new head.
      failureRatioStop: 1,
    });
    log.info({ repo: repoUuid, job: job.uuid, units: job.total }, "ota: automatic update started");
  }

  const onSynced = ({
    repoUuid,
    changedBranches,
  }: {
    repoUuid: string;
    changedBranches: string[];
  }) => {
    onRepoSynced(repoUuid, changedBranches).catch((err: unknown) =>
      log.error({ err, repo: repoUuid }, "ota: automatic update failed"),
    );
  };

  // Cluster mode: the waves run on the process holding the "ota" role; a job saved on
  // another process is adopted here when its event arrives (or by restore() after a
  // change of leader, if the event found no leader).
  const runsWaves = () => deps.cluster?.holds("ota") ?? true;
  const asJob = (saved: StoredJob): UpdateJob => ({ ...saved, pumping: false });
  const onJobSaved = (e: { jobUuid: string }) => {
    readUpdateJobs(deps.database.db, { uuid: e.jobUuid })
      .then(([saved]) => {
        if (saved?.status === "Running") jobs.adopt(saved);
      })
      .catch((err: unknown) => log.error({ err, job: e.jobUuid }, "ota: adopting a job failed"));
  };

  // A deleted unit never reports: it leaves the tracker and its job without counting.
  const onDeleted = ({ unitUuid }: { unitUuid: string }) => {
    tracker.forget(unitUuid);
    jobs.drop(unitUuid);
  };

  // Another target was chosen (Save version, an update to another version): the request
  // for the old one is void, and so is a job's wait for it — unless that job is the one
  // moving the unit right now (its own request follows).
  const onUpdated = ({
    unitUuid,
    versionChanged,
  }: {
    unitUuid: string;
    versionChanged: boolean;
  }) => {
    if (!versionChanged) return;
    jobs.retargeted(unitUuid);
    void tracker.retarget(unitUuid);
  };

  return {
    async start() {
      events.on("ota.job-saved", onJobSaved);
      events.on("repo.synced", onSynced);
      events.on("unit.deleted", onDeleted);
      events.on("unit.updated", onUpdated);
      // Jobs first: the tracker's outcomes for re-armed units go to the jobs awaiting them.
      await jobs.restore(await loadUpdateJobs(db), (uuids) => updateStatusOf(db, uuids));
      await tracker.restore(windowOf);
    },
    async stop() {
      events.off("ota.job-saved", onJobSaved);
      events.off("repo.synced", onSynced);
      events.off("unit.deleted", onDeleted);
      events.off("unit.updated", onUpdated);
      await jobs.stop();
      await tracker.stop();
    },
    requestUpdate: async (unitUuid) => requestFor(await loadUnit(unitUuid)),
    updateUnit,
    async startMassUpdate(input) {
      if (runsWaves()) return jobs.start(input);
      const job = await jobs.save(input);
      events.emit("ota.job-saved", { jobUuid: job.uuid });
      return job;
    },
    async job(uuid) {
      if (runsWaves()) return jobs.get(uuid);
      const [saved] = await readUpdateJobs(deps.database.db, { uuid });
      return saved && asJob(saved);
    },
    async jobsOfRepo(repoUuid) {
      if (runsWaves()) return jobs.ofRepo(repoUuid);
      return (await readUpdateJobs(deps.database.db, { repoUuid })).map(asJob);
    },
  };
}

/** The running OTA service; tools that build an app without one answer 503. */
export function otaOf(deps: Pick<AppDeps, "ota">): OtaService {
  if (!deps.ota) throw new HttpError(503, "firmware updates are not running on this instance");
  return deps.ota;
}
