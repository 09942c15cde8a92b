import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DOMAIN,
  eventually,
  makeUnit,
  makeWorld,
  type TestClient,
  type World,
  type WorldUnit,
} from "../broker/mqtt-helpers.ts";
import { type FedInstance, startFedInstance } from "../helpers/federation.ts";
import { answeringDevice } from "./ota-helpers.ts";

// A mass update survives a restart of the instance: the job, its counts, the unit it
// was waiting for and the units not sent yet are saved, and the waves go on.
describe("mass update across a restart", () => {
  let fi: FedInstance;
  let world: World;
  const units: WorldUnit[] = [];
  const devices: TestClient[] = [];

  beforeAll(async () => {
    // Each unit's window is 2 × 2 s.
    // The topic helpers build topics for the test domain.
    fi = await startFedInstance({ PEPEUNIT_STATE_SEND_INTERVAL_S: "2", PEPEUNIT_DOMAIN: DOMAIN });
    world = await makeWorld(fi);
    for (let i = 0; i < 3; i++) units.push(await makeUnit(fi, world.bob.token, world.repoUuid));
  });
  afterAll(async () => {
    for (const d of devices) await d.endAsync(true).catch(() => {});
    await fi?.close();
  });

  it("resumes the waves where they were", async () => {
    const [first, silent, last] = units as [WorldUnit, WorldUnit, WorldUnit];
    devices.push(await answeringDevice(fi, first));
    const started = await fi.api.post(
      `/repos/${world.repoUuid}/update_units`,
      { max_in_flight: 1, failure_ratio_stop: 1 },
      world.bob.token,
    );
    expect(started.status).toBe(202);
    const jobPath = `/repos/${world.repoUuid}/update_units/${started.body.uuid}`;
    // The first unit answered; the second (no device) is awaited, the third not sent yet.
    await eventually(async () => {
      const res = await fi.api.get(jobPath, world.bob.token);
      return res.body.succeeded === 1 && res.body.in_flight === 1 ? res.body : null;
    }, 10_000);

    await fi.restart();

    const after = await fi.api.get(jobPath, world.bob.token);
    expect(after.status).toBe(200);
    expect(after.body).toMatchObject({ status: "Running", total: 3, succeeded: 1, pending: 1 });
    devices.push(await answeringDevice(fi, last));
    const done = await eventually(async () => {
      const res = await fi.api.get(jobPath, world.bob.token);
      return res.body.status === "Finished" ? res.body : null;
    }, 20_000);
    // The awaited unit never reported (its Update went out before the restart, to nobody).
    expect(done).toMatchObject({ sent: 3, succeeded: 2, failed: 1, in_flight: 0, pending: 0 });
    expect(done.failures).toHaveLength(1);
    expect(JSON.stringify(done.failures[0])).toContain(silent.uuid);
    expect((await fi.api.get(`/units/${last.uuid}`, world.bob.token)).body.update_status).toBe(
      "Success",
    );
    const listed = await fi.api.get(`/repos/${world.repoUuid}/update_units`, world.bob.token);
    expect(listed.body.jobs.map((j: { uuid: string }) => j.uuid)).toContain(started.body.uuid);
  });
});
