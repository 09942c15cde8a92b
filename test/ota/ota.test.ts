import { inflateSync } from "node:zlib";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { units } from "../../src/db/schema.ts";
import { createOtaService } from "../../src/ota/ota.service.ts";
import {
  connectClient,
  eventually,
  makeUnit,
  makeWorld,
  type TestClient,
  type World,
  type WorldUnit,
} from "../broker/mqtt-helpers.ts";
import { parseTar } from "../firmware/archive-readers.ts";
import { createUser, startTestInstance, type TestInstance } from "../helpers/instance.ts";

// The OTA flow of device-protocol §7 against a real broker, real git and a device
// played by an MQTT.js client holding the unit's token.

type Device = TestClient & { updates(): string[] };

/** Subscribes like a device and returns the shas of the Update commands it got. */
async function device(inst: TestInstance, unit: WorldUnit): Promise<Device> {
  const client = (await connectClient(inst.mqttUrl, unit.token, { clientId: unit.uuid })) as Device;
  await client.subscribeAsync(unit.base("input_base_topic", "update/pepeunit"), { qos: 1 });
  client.updates = () =>
    client.received
      .filter((m) => m.topic === unit.base("input_base_topic", "update/pepeunit"))
      .map((m) => JSON.parse(m.payload.toString()).PU_COMMIT_VERSION);
  return client;
}

function waitForUpdate(dev: Device, unit: WorldUnit, sha: string) {
  return dev.waitFor(
    (m) =>
      m.topic === unit.base("input_base_topic", "update/pepeunit") &&
      m.payload.toString() === `{"COMMAND":"Update","PU_COMMIT_VERSION":"${sha}"}`,
  );
}

async function reportState(dev: Device, unit: WorldUnit, sha: string) {
  await dev.publishAsync(
    unit.base("output_base_topic", "state/pepeunit"),
    JSON.stringify({ millis: 1, mem_free: 1000, pu_commit_version: sha }),
    { qos: 1 },
  );
}

describe("OTA updates", () => {
  let inst: TestInstance;
  let world: World;
  let carol: { uuid: string; token: string };
  let v1: string;
  let v2: string;
  let follower: WorldUnit;
  let devF: Device;

  const unitJson = async (uuid: string) =>
    (await inst.api.get(`/units/${uuid}`, world.bob.token)).body;
  const statusOf = (uuid: string, status: string) =>
    eventually(async () => {
      const u = await unitJson(uuid);
      return u.update_status === status ? u : null;
    }, 10_000);

  beforeAll(async () => {
    inst = await startTestInstance();
    world = await makeWorld(inst);
    carol = await createUser(inst.api, "carol");
    v1 = world.fixture.head();
    follower = await makeUnit(inst, world.bob.token, world.repoUuid);
    devF = await device(inst, follower);
  });
  afterAll(async () => {
    await devF?.endAsync(true);
    await inst?.close();
  });

  it("moves followers to a new default-branch commit: Update, env, archive, then Success", async () => {
    const pinned = await makeUnit(inst, world.bob.token, world.repoUuid, {
      follow_repo: false,
      branch: "main",
      commit: v1,
    });
    const devP = await device(inst, pinned);
    v2 = world.fixture.commit("v2", { "main.py": "print('v2')\n" });
    const synced = await inst.api.post(`/repos/${world.repoUuid}/sync`, undefined, world.bob.token);
    expect(synced.status).toBe(200);

    await waitForUpdate(devF, follower, v2);
    const requested = await unitJson(follower.uuid);
    expect(requested.commit).toBe(v2);
    expect(requested.update_status).toBe("RequestSent");
    // The env and the archive the device now downloads carry the same sha.
    const env = await inst.api.get(`/units/env/${follower.uuid}`, follower.token);
    expect(env.body.PU_COMMIT_VERSION).toBe(v2);
    const tgz = await fetch(`${inst.httpUrl}/pepeunit/api/v1/units/firmware/tgz/${follower.uuid}`, {
      headers: { "x-auth-token": follower.token },
    });
    expect(tgz.status).toBe(200);
    const files = new Map(
      parseTar(inflateSync(Buffer.from(await tgz.arrayBuffer()))).headers.map((h) => [
        h.name,
        h.content.toString(),
      ]),
    );
    expect(JSON.parse(files.get("./env.json") ?? "{}").PU_COMMIT_VERSION).toBe(v2);
    expect(files.get("./main.py")).toBe("print('v2')\n");

    await reportState(devF, follower, v2);
    const done = await statusOf(follower.uuid, "Success");
    expect(done.update_error).toBeNull();
    expect(done.current_commit).toBe(v2);

    // A pinned unit stays where it is and is not told anything.
    expect((await unitJson(pinned.uuid)).commit).toBe(v1);
    expect(devP.updates()).toEqual([]);
    await devP.endAsync(true);

    // The automatic job is visible to the repo's creator.
    const jobs = await inst.api.get(`/repos/${world.repoUuid}/update_units`, world.bob.token);
    expect(jobs.status).toBe(200);
    expect(jobs.body.jobs[0]).toMatchObject({ kind: "Automatic", total: 1, succeeded: 1 });
  });

  it("marks Error when no state reports the target within 2 × PU_STATE_SEND_INTERVAL", async () => {
    const silent = await makeUnit(inst, world.bob.token, world.repoUuid);
    const env = await inst.api.patch(
      `/units/env/${silent.uuid}`,
      { PU_STATE_SEND_INTERVAL: 1 },
      world.bob.token,
    );
    expect(env.status).toBe(200);
    const dev = await device(inst, silent);
    const res = await inst.api.request("POST", `/units/${silent.uuid}/update`, {
      token: world.bob.token,
    });
    expect(res.status).toBe(202);
    expect(res.body.update_status).toBe("RequestSent");
    await waitForUpdate(dev, silent, v2);
    // Reporting another version (the update failed on the device) does not count.
    await reportState(dev, silent, v1);
    const failed = await statusOf(silent.uuid, "Error");
    expect(failed.update_error).toBe(`no state reporting ${v2} within 2 s`);
    // The device running its target after all (a late update) is not an Error any more.
    await reportState(dev, silent, v2);
    const late = await statusOf(silent.uuid, "Success");
    expect(late.update_error).toBeNull();
    await dev.endAsync(true);
  });

  it("a new target starts the update status afresh: no old error, Success once the device reports it", async () => {
    const unit = await makeUnit(inst, world.bob.token, world.repoUuid);
    await inst.api.patch(`/units/env/${unit.uuid}`, { PU_STATE_SEND_INTERVAL: 1 }, world.bob.token);
    const dev = await device(inst, unit);
    // The device runs v1; an update to the head (v2) is never answered: Error about v2.
    await reportState(dev, unit, v1);
    await inst.api.request("POST", `/units/${unit.uuid}/update`, { token: world.bob.token });
    await waitForUpdate(dev, unit, v2);
    expect((await statusOf(unit.uuid, "Error")).update_error).toContain(v2);

    // Pinned to the version its device runs: that is a Success at once.
    const pinned = await inst.api.patch(
      `/units/${unit.uuid}`,
      { follow_repo: false, branch: "main", commit: v1 },
      world.bob.token,
    );
    expect(pinned.status).toBe(200);
    expect(pinned.body).toMatchObject({ commit: v1, update_status: "Success", update_error: null });

    // Moved on while an Update for v1 waits: that request is void, its timeout blames nobody.
    const sent = await inst.api.request("POST", `/units/${unit.uuid}/update`, {
      token: world.bob.token,
    });
    expect(sent.body.update_status).toBe("RequestSent");
    const followed = await inst.api.patch(
      `/units/${unit.uuid}`,
      { follow_repo: true },
      world.bob.token,
    );
    expect(followed.body).toMatchObject({ commit: v2, update_status: null, update_error: null });
    // Past the void request's window (2 s) and a sweep: still no status.
    await new Promise((r) => setTimeout(r, 3000));
    expect((await unitJson(unit.uuid)).update_status).toBeNull();
    // The device reporting the new target without being asked: Success.
    await reportState(dev, unit, v2);
    expect((await statusOf(unit.uuid, "Success")).update_error).toBeNull();
    await dev.endAsync(true);
  });

  it("updates a unit to a pinned tag on request, and re-sends its target without a body", async () => {
    world.fixture.git("tag", "v1.0", v1);
    await inst.api.post(`/repos/${world.repoUuid}/sync`, undefined, world.bob.token);
    devF.received.length = 0;
    const res = await inst.api.post(
      `/units/${follower.uuid}/update`,
      { tag: "v1.0" },
      world.bob.token,
    );
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({
      follow_repo: false,
      branch: "main",
      tag: "v1.0",
      commit: v1,
      update_status: "RequestSent",
    });
    await waitForUpdate(devF, follower, v1);
    const env = await inst.api.get(`/units/env/${follower.uuid}`, follower.token);
    expect(env.body.PU_COMMIT_VERSION).toBe(v1);
    await reportState(devF, follower, v1);
    await statusOf(follower.uuid, "Success");

    devF.received.length = 0;
    const again = await inst.api.request("POST", `/units/${follower.uuid}/update`, {
      token: world.bob.token,
    });
    expect(again.status).toBe(202);
    await waitForUpdate(devF, follower, v1);
    expect((await unitJson(follower.uuid)).tag).toBe("v1.0");

    // Back to following the repo: the head again.
    const follow = await inst.api.post(
      `/units/${follower.uuid}/update`,
      { follow_repo: true },
      world.bob.token,
    );
    expect(follow.status).toBe(202);
    expect(follow.body).toMatchObject({ follow_repo: true, tag: null, commit: v2 });
    await waitForUpdate(devF, follower, v2);
  });

  it("refuses bad versions and callers that do not manage the unit", async () => {
    const path = `/units/${follower.uuid}/update`;
    const badTag = await inst.api.post(path, { tag: "nope" }, world.bob.token);
    expect(badTag.status).toBe(422);
    const branchOnly = await inst.api.post(path, { branch: "main" }, world.bob.token);
    expect(branchOnly.status).toBe(422);
    const badSha = await inst.api.post(path, { commit: "xyz" }, world.bob.token);
    expect(badSha.status).toBe(422);
    expect((await inst.api.post(path, {}, carol.token)).status).toBe(403);
    expect((await inst.api.post(path, {}, follower.token)).status).toBe(403);
    expect((await inst.api.post(path, {})).status).toBe(401);
    // The unit's version is untouched by the refused requests.
    expect((await unitJson(follower.uuid)).commit).toBe(v2);
  });

  it("re-arms units left RequestSent when the service starts again", async () => {
    const reported = await makeUnit(inst, world.bob.token, world.repoUuid);
    const waiting = await makeUnit(inst, world.bob.token, world.repoUuid);
    await inst.api.patch(
      `/units/env/${waiting.uuid}`,
      { PU_STATE_SEND_INTERVAL: 1 },
      world.bob.token,
    );
    const db = inst.deps.database.db;
    const longAgo = new Date(Date.now() - 3600_000);
    // As a previous run left them: one already reported the target, one never will.
    await db
      .update(units)
      .set({ updateStatus: "RequestSent", updateRequestedAt: longAgo, currentCommit: v2 })
      .where(eq(units.uuid, reported.uuid));
    await db
      .update(units)
      .set({ updateStatus: "RequestSent", updateRequestedAt: longAgo, currentCommit: v1 })
      .where(eq(units.uuid, waiting.uuid));
    // Left in Error, but its device reported the target while the service was not running.
    const late = await makeUnit(inst, world.bob.token, world.repoUuid);
    await db
      .update(units)
      .set({
        updateStatus: "Error",
        updateError: "x",
        updateRequestedAt: longAgo,
        currentCommit: v2,
      })
      .where(eq(units.uuid, late.uuid));
    const restarted = createOtaService(inst.deps, { sweepMs: 100 });
    try {
      await restarted.start();
      await statusOf(reported.uuid, "Success");
      await statusOf(late.uuid, "Success");
      const failed = await statusOf(waiting.uuid, "Error");
      expect(failed.update_error).toBe(`no state reporting ${v2} within 2 s`);
    } finally {
      await restarted.stop();
    }
  });

  it("marks Error at once when the Update cannot be published", async () => {
    await inst.broker.close();
    const res = await inst.api.request("POST", `/units/${follower.uuid}/update`, {
      token: world.bob.token,
    });
    expect(res.status).toBe(503);
    const u = await unitJson(follower.uuid);
    expect(u.update_status).toBe("Error");
    expect(u.update_error).toMatch(/^publish failed: /);
  });
});
