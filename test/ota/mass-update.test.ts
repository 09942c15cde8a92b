import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createUpdateJobs, type JobSendResult } from "../../src/ota/update-jobs.ts";
import {
  eventually,
  makeUnit,
  makeWorld,
  type TestClient,
  type World,
  type WorldUnit,
} from "../broker/mqtt-helpers.ts";
import { createUser, startTestInstance, type TestInstance } from "../helpers/instance.ts";
import { answeringDevice } from "./ota-helpers.ts";

// POST /repos/{uuid}/update_units: the units of a repo are sent Update in waves and the
// job stops sending once too many fail. Bob's ten devices answer every Update with a
// state carrying the new sha; Carol's ten units never connect.

const ANSWERING = 10;
const SILENT = 10;

describe("mass update of a repo's units", () => {
  let inst: TestInstance;
  let world: World;
  let carol: { uuid: string; token: string };
  const bobUnits: WorldUnit[] = [];
  const carolUnits: WorldUnit[] = [];
  const devices: TestClient[] = [];

  const job = (uuid: string, token: string) =>
    inst.api.get(`/repos/${world.repoUuid}/update_units/${uuid}`, token);

  beforeAll(async () => {
    // Every unit's window is 2 × 2 s: short, yet long enough for an answering device.
    inst = await startTestInstance({ PEPEUNIT_STATE_SEND_INTERVAL_S: "2" });
    world = await makeWorld(inst);
    carol = await createUser(inst.api, "carol");
    // Created in this order, so the job sends Bob's units first.
    for (let i = 0; i < ANSWERING; i++) {
      bobUnits.push(await makeUnit(inst, world.bob.token, world.repoUuid));
    }
    for (let i = 0; i < SILENT; i++) {
      carolUnits.push(await makeUnit(inst, carol.token, world.repoUuid));
    }
    for (const u of bobUnits) devices.push(await answeringDevice(inst, u));
  });
  afterAll(async () => {
    for (const d of devices) await d.endAsync(true);
    await inst?.close();
  });

  it("updates a user's own units in waves and finishes when all answered", async () => {
    const started = await inst.api.post(
      `/repos/${world.repoUuid}/update_units`,
      { max_in_flight: 3 },
      world.bob.token,
    );
    expect(started.status).toBe(202);
    // Only Bob's units: Carol's devices are not his to restart.
    expect(started.body).toMatchObject({ kind: "Manual", total: ANSWERING, max_in_flight: 3 });
    expect(started.body.failure_ratio_stop).toBe(0.2);
    const done = await eventually(async () => {
      const res = await job(started.body.uuid, world.bob.token);
      return res.body.status === "Finished" ? res.body : null;
    }, 20_000);
    expect(done).toMatchObject({
      sent: ANSWERING,
      succeeded: ANSWERING,
      failed: 0,
      in_flight: 0,
      pending: 0,
      stopped_reason: null,
    });
    for (const u of bobUnits) {
      const res = await inst.api.get(`/units/${u.uuid}`, world.bob.token);
      expect(res.body.update_status).toBe("Success");
    }
    // Someone else's job is not Carol's business.
    expect((await job(started.body.uuid, carol.token)).status).toBe(404);
  });

  it("stops sending when the failure ratio passes the threshold, and reports the counts", async () => {
    const started = await inst.api.post(
      `/repos/${world.repoUuid}/update_units`,
      { max_in_flight: 5, failure_ratio_stop: 0.2 },
      world.admin.token,
    );
    expect(started.status).toBe(202);
    expect(started.body.total).toBe(ANSWERING + SILENT);
    const end = await eventually(async () => {
      const res = await job(started.body.uuid, world.admin.token);
      return res.body.status !== "Running" && res.body.in_flight === 0 ? res.body : null;
    }, 30_000);
    expect(end.status).toBe("Stopped");
    expect(end.stopped_reason).toMatch(/^failure ratio \d+\/\d+ .* passed 0\.2/);
    expect(end.succeeded).toBe(ANSWERING);
    // Failures arrived while the threshold was not yet passed; then sending stopped.
    expect(end.failed).toBeGreaterThanOrEqual(3);
    expect(end.sent).toBe(end.succeeded + end.failed);
    expect(end.sent).toBeLessThan(ANSWERING + SILENT);
    expect(end.pending).toBe(ANSWERING + SILENT - end.sent);
    expect(end.failures[0].error).toMatch(/^no state reporting [0-9a-f]{40} within 4 s$/);

    // The units never sent were left alone; the sent ones carry their outcome.
    const statuses = await Promise.all(
      carolUnits.map(async (u) => (await inst.api.get(`/units/${u.uuid}`, carol.token)).body),
    );
    expect(statuses.filter((u) => u.update_status === "Error")).toHaveLength(end.failed);
    expect(statuses.filter((u) => u.update_status === null)).toHaveLength(end.pending);
  });

  it("validates the job parameters", async () => {
    const path = `/repos/${world.repoUuid}/update_units`;
    expect((await inst.api.post(path, { max_in_flight: 0 }, world.bob.token)).status).toBe(422);
    expect((await inst.api.post(path, { failure_ratio_stop: 2 }, world.bob.token)).status).toBe(
      422,
    );
    expect((await inst.api.post(path, {})).status).toBe(401);
    const unknown = "00000000-0000-4000-8000-000000000000";
    expect((await job(unknown, world.bob.token)).status).toBe(404);
  });
});

describe("a job and a unit given another target", () => {
  it("drops a unit it waits for, but not one it is moving itself", async () => {
    let jobs: ReturnType<typeof createUpdateJobs> | null = null;
    const send = async (unitUuid: string): Promise<JobSendResult> => {
      // The job's own move announces the new target while it sends.
      if (unitUuid === "b") jobs?.retargeted("b");
      return { status: "RequestSent" };
    };
    jobs = createUpdateJobs({ send, log: pino({ level: "silent" }) });
    const job = await jobs.start({
      repoUuid: "r",
      creatorUuid: null,
      kind: "Automatic",
      unitUuids: ["a", "b"],
      maxInFlight: 10,
      failureRatioStop: 1,
    });
    await eventually(async () => job.inFlight.size === 2);
    // Someone else pinned "a" elsewhere: the job stops waiting for it, uncounted.
    jobs.retargeted("a");
    expect([...job.inFlight]).toEqual(["b"]);
    expect(job.total).toBe(1);
    jobs.outcome({ unitUuid: "b", commit: "c", status: "Success", error: null });
    expect(job).toMatchObject({ status: "Finished", succeeded: 1, failed: 0 });
    await jobs.stop();
  });
});
