import { inflateSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseTar } from "../firmware/archive-readers.ts";
import { createUser, startTestInstance, type TestInstance } from "../helpers/instance.ts";
import { createUnit, nodeOf } from "../helpers/units.ts";

// The bundled standard unit repositories (examples/units/) imported by an admin on an
// instance that refuses local clone sources: made into local git repos under the data
// dir and cloned anyway — but only those exact, instance-made sources.

describe("standard unit repositories", () => {
  let inst: TestInstance;
  let admin: { uuid: string; token: string };
  let bob: { uuid: string; token: string };

  beforeAll(async () => {
    inst = await startTestInstance({ PEPEUNIT_GIT_ALLOW_LOCAL: "false" });
    admin = await createUser(inst.api, "admin");
    bob = await createUser(inst.api, "bob");
  });
  afterAll(async () => {
    await inst?.close();
  });

  const repoCount = async () => (await inst.api.get("/repos", admin.token)).body.count;

  it("lists the bundled repos, none imported yet (admin only)", async () => {
    const res = await inst.api.get("/admin/standard_repos", admin.token);
    expect(res.status).toBe(200);
    const names = res.body.standard_repos.map((r: { name: string }) => r.name);
    expect(names).toEqual(expect.arrayContaining(["relay", "temperature-sensor"]));
    for (const r of res.body.standard_repos) {
      expect(r).toMatchObject({ imported: false, repo_uuid: null });
      expect(r.title).not.toBe("");
    }
    expect((await inst.api.get("/admin/standard_repos", bob.token)).status).toBe(403);
    expect((await inst.api.post("/admin/standard_repos", undefined, bob.token)).status).toBe(403);
  });

  it("imports them once; a second import creates nothing and answers which exist", async () => {
    const first = await inst.api.post("/admin/standard_repos", undefined, admin.token);
    expect(first.status).toBe(200);
    const created = first.body.standard_repos;
    expect(created.length).toBeGreaterThanOrEqual(2);
    for (const r of created) {
      expect(r).toMatchObject({ status: "created", imported: true });
      expect(r.commit).toMatch(/^[0-9a-f]{40}$/);
    }
    const count = await repoCount();
    expect(count).toBe(created.length);

    const second = await inst.api.post("/admin/standard_repos", undefined, admin.token);
    expect(second.status).toBe(200);
    for (const r of second.body.standard_repos) {
      const before = created.find((c: { name: string }) => c.name === r.name);
      expect(r).toMatchObject({
        status: "exists",
        repo_uuid: before.repo_uuid,
        commit: before.commit,
      });
    }
    expect(await repoCount()).toBe(count);
    const listed = await inst.api.get("/admin/standard_repos", admin.token);
    expect(listed.body.standard_repos.every((r: { imported: boolean }) => r.imported)).toBe(true);

    // Public, default branch set, readable by anyone; syncing them works despite the setting.
    const relay = created.find((r: { name: string }) => r.name === "relay");
    const repo = await inst.api.get(`/repos/${relay.repo_uuid}`, bob.token);
    expect(repo.body).toMatchObject({ visibility: "Public", default_branch: "main" });
    const sync = await inst.api.post(`/repos/${relay.repo_uuid}/sync`, undefined, admin.token);
    expect(sync.status).toBe(200);
    expect(sync.body).toMatchObject({ sync_status: "Synced", sync_error: null });
  });

  it("makes working units: variables from the template, an archive with the code", async () => {
    const listed = await inst.api.get("/admin/standard_repos", admin.token);
    const byName = (name: string) =>
      listed.body.standard_repos.find((r: { name: string }) => r.name === name).repo_uuid;

    const sensor = await createUnit(inst.api, bob.token, byName("temperature-sensor"));
    expect(nodeOf(sensor, "Output", "temperature/pepeunit").topic).toMatch(/\/pepeunit$/);
    const relay = await createUnit(inst.api, bob.token, byName("relay"));
    nodeOf(relay, "Input", "relay/pepeunit");
    nodeOf(relay, "Output", "relay_state/pepeunit");

    const env = await inst.api.get(`/units/env/${sensor.uuid}`, bob.token);
    expect(env.body).toMatchObject({ PUC_WIFI_SSID: "", SENSOR_PIN: 4, PUBLISH_INTERVAL_S: 10 });
    const schema = await inst.api.get(`/units/get_current_schema/${sensor.uuid}`, bob.token);
    expect(Object.keys(schema.body.input_base_topic)).toEqual([
      "update/pepeunit",
      "env_update/pepeunit",
      "schema_update/pepeunit",
      "log_sync/pepeunit",
    ]);

    const tgz = await fetch(`${inst.httpUrl}/pepeunit/api/v1/units/firmware/tgz/${relay.uuid}`, {
      headers: { "x-auth-token": bob.token },
    });
    expect(tgz.status).toBe(200);
    const names = parseTar(inflateSync(Buffer.from(await tgz.arrayBuffer()))).headers.map(
      (h) => h.name,
    );
    expect(names.sort()).toEqual(["./boot.py", "./env.json", "./main.py", "./schema.json"]);
  });

  it("still refuses local sources a user registers, the standard ones included", async () => {
    const listed = await inst.api.get("/admin/standard_repos", admin.token);
    const relayUuid = listed.body.standard_repos.find(
      (r: { name: string }) => r.name === "relay",
    ).repo_uuid;
    const url = (await inst.api.get(`/repos/${relayUuid}`, admin.token)).body.url;
    expect(url).toMatch(/^file:\/\/.*\/standard-repos\/relay$/);
    for (const candidate of [url, `${url}/../temperature-sensor`, "file:///etc"]) {
      const res = await inst.api.post("/repos", { name: "mine", url: candidate }, bob.token);
      expect(res.status).toBe(422);
    }
  });
});
