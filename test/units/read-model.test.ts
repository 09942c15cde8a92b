import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHttpApp } from "../../src/http/app.ts";
import type { AppDeps } from "../../src/http/types.ts";
import {
  createFixtureRepo,
  DEFAULT_SCHEMA_EXAMPLE,
  type FixtureRepo,
} from "../helpers/git-fixtures.ts";
import { createUser, startTestInstance, type TestInstance } from "../helpers/instance.ts";
import { createRepo } from "../helpers/repos.ts";
import { createUnit, nodeOf, unitToken } from "../helpers/units.ts";

// The hot reads come from the read model (src/read-model/). After every acknowledged
// write, each of them must answer what the database answers: the same status and the
// same bytes as the instance's own routes without the read model (deps.readModel unset),
// asked right after the write, for the owner, another user, anonymous and the unit.

describe("hot reads from memory", () => {
  let inst: TestInstance;
  let dbOnly: ReturnType<typeof createHttpApp>;
  let bob: { uuid: string; token: string };
  let carol: { uuid: string; token: string };
  let fixture: FixtureRepo;
  let v2: string;
  let repoUuid: string;
  // any: the unit JSON as the API returns it; each test asserts what it reads.
  let unit: any;
  let other: any;
  let token: string;

  beforeAll(async () => {
    inst = await startTestInstance();
    dbOnly = createHttpApp({ ...inst.deps, readModel: undefined } as AppDeps);
    await createUser(inst.api, "admin");
    bob = await createUser(inst.api, "bob");
    carol = await createUser(inst.api, "carol");
    fixture = createFixtureRepo();
    const v1 = fixture.head();
    v2 = fixture.commit("v2", {
      "schema_example.json": JSON.stringify({
        ...DEFAULT_SCHEMA_EXAMPLE,
        output_topic: ["output/pepeunit", "humidity"],
      }),
    });
    repoUuid = (await createRepo(inst.api, bob.token, fixture)).uuid;
    unit = await createUnit(inst.api, bob.token, repoUuid, {
      name: "rm-unit",
      follow_repo: false,
      branch: "main",
      commit: v1,
    });
    other = await createUnit(inst.api, carol.token, repoUuid, { name: "rm-other" });
    token = await unitToken(inst.api, bob.token, unit.uuid);
  });
  afterAll(async () => {
    await inst?.close();
  });

  const hotPaths = () => [
    `/units/${unit.uuid}`,
    "/units",
    `/units?unit_node_uuids=${unit.unit_nodes[0].uuid}`,
    `/units?search=RM-&order_by_create_date=asc&limit=1&offset=1`,
    `/units?repo_uuid=${repoUuid}&is_include_output_unit_nodes=true&visibility=Public`,
    "/unit_nodes",
    `/unit_nodes?unit_uuid=${unit.uuid}&order_by_create_date=asc&type=Output`,
    `/units/env/${unit.uuid}`,
    `/units/get_current_schema/${unit.uuid}`,
    `/units/get_target_version/${unit.uuid}`,
    `/repos/${repoUuid}`,
  ];

  /** Each hot read, for each caller: the read model's answer is the database's, byte for byte. */
  async function expectFresh(): Promise<void> {
    for (const path of hotPaths()) {
      for (const who of [bob.token, carol.token, token, undefined]) {
        const headers: Record<string, string> = who ? { "x-auth-token": who } : {};
        const cached = await fetch(`${inst.httpUrl}/pepeunit/api/v1${path}`, { headers });
        const fromDb = await dbOnly.request(`/pepeunit/api/v1${path}`, { headers });
        expect({
          path,
          status: cached.status,
          type: cached.headers.get("content-type"),
          body: await cached.text(),
        }).toEqual({
          path,
          status: fromDb.status,
          type: fromDb.headers.get("content-type"),
          body: await fromDb.text(),
        });
      }
    }
  }

  const get = (path: string, who?: string) => inst.api.get(path, who);

  it("answers what the database answers from the start", async () => {
    await expectFresh();
    // Loaded now: every later read comes from memory.
    expect(inst.deps.readModel?.sizes().units).toBe(2);
  });

  it("follows a rename, a visibility change and a change back", async () => {
    expect(
      (await inst.api.patch(`/units/${unit.uuid}`, { name: "rm-renamed" }, bob.token)).status,
    ).toBe(200);
    expect((await get(`/units/${unit.uuid}`, carol.token)).body.name).toBe("rm-renamed");
    await expectFresh();
    expect(
      (await inst.api.patch(`/units/${unit.uuid}`, { visibility: "Private" }, bob.token)).status,
    ).toBe(200);
    expect((await get(`/units/${unit.uuid}`, carol.token)).status).toBe(404);
    expect(
      (await get("/units", carol.token)).body.units.map((u: { uuid: string }) => u.uuid),
    ).not.toContain(unit.uuid);
    await expectFresh();
    await inst.api.patch(`/units/${unit.uuid}`, { visibility: "Public" }, bob.token);
    expect((await get(`/units/${unit.uuid}`, carol.token)).status).toBe(200);
    await expectFresh();
  });

  it("follows an env edit and a token rotation", async () => {
    const edited = await inst.api.patch(
      `/units/env/${unit.uuid}`,
      { PUC_WIFI_SSID: "cached" },
      bob.token,
    );
    expect(edited.status).toBe(200);
    expect((await get(`/units/env/${unit.uuid}`, bob.token)).body.PUC_WIFI_SSID).toBe("cached");
    await expectFresh();
    const rotated = await inst.api.post(`/units/${unit.uuid}/rotate_token`, undefined, bob.token);
    expect(rotated.status).toBe(200);
    expect((await get(`/units/env/${unit.uuid}`, bob.token)).body.PU_AUTH_TOKEN).toBe(
      rotated.body.token,
    );
    token = rotated.body.token;
    await expectFresh();
  });

  it("follows a version change (target version, variables, schema)", async () => {
    const changed = await inst.api.patch(
      `/units/${unit.uuid}`,
      { follow_repo: false, branch: "main", commit: v2 },
      bob.token,
    );
    expect(changed.status).toBe(200);
    expect((await get(`/units/get_target_version/${unit.uuid}`, token)).body.commit).toBe(v2);
    const now = (await get(`/units/${unit.uuid}`, bob.token)).body;
    expect(now.unit_nodes.map((n: { topic_name: string }) => n.topic_name)).toContain("humidity");
    unit = now;
    await expectFresh();
  });

  it("follows variable and edge changes", async () => {
    const out = nodeOf(unit, "Output", "humidity");
    const hidden = await inst.api.patch(
      `/unit_nodes/${out.uuid}`,
      { visibility: "Private" },
      bob.token,
    );
    expect(hidden.status).toBe(200);
    const seen = (await get(`/units/${unit.uuid}`, carol.token)).body;
    expect(seen.unit_nodes.map((n: { uuid: string }) => n.uuid)).not.toContain(out.uuid);
    await expectFresh();
    await inst.api.patch(`/unit_nodes/${out.uuid}`, { visibility: "Public" }, bob.token);
    const input = nodeOf(unit, "Input", "input/pepeunit");
    const edge = await inst.api.post(
      "/unit_node_edges",
      { output_uuid: nodeOf(other, "Output", "output/pepeunit").uuid, input_uuid: input.uuid },
      bob.token,
    );
    expect(edge.status).toBe(201);
    const schema = (await get(`/units/get_current_schema/${unit.uuid}`, token)).body;
    expect(JSON.stringify(schema)).toContain(nodeOf(other, "Output", "output/pepeunit").uuid);
    await expectFresh();
    expect((await inst.api.delete(`/unit_node_edges/${edge.body.uuid}`, bob.token)).status).toBe(
      204,
    );
    const after = (await get(`/units/get_current_schema/${unit.uuid}`, token)).body;
    expect(JSON.stringify(after)).not.toContain(nodeOf(other, "Output", "output/pepeunit").uuid);
    await expectFresh();
  });

  it("follows values set from the API and published over MQTT", async () => {
    const input = nodeOf(unit, "Input", "input/pepeunit");
    const set = await inst.api.patch(
      `/unit_nodes/set_state_input/${input.uuid}`,
      { state: "on" },
      bob.token,
    );
    expect(set.status).toBe(200);
    const read = (await get(`/units/${unit.uuid}`, bob.token)).body;
    expect(nodeOf(read, "Input", "input/pepeunit").last_value).toBe("on");
    await expectFresh();
    const out = nodeOf(unit, "Output", "humidity");
    await inst.broker.publish(out.topic, "41.5", { qos: 1 });
    // The ingest writes in batches: the read model follows the flush, as the database does.
    await inst.broker.flush();
    const published = (await get(`/units/${unit.uuid}`, bob.token)).body;
    expect(nodeOf(published, "Output", "humidity").last_value).toBe("41.5");
    await expectFresh();
  });

  it("follows a repo update and a repo closed to others", async () => {
    const renamed = await inst.api.patch(
      `/repos/${repoUuid}`,
      { name: "rm-repo-renamed" },
      bob.token,
    );
    expect(renamed.status).toBe(200);
    expect((await get(`/repos/${repoUuid}`, carol.token)).body.name).toBe("rm-repo-renamed");
    await expectFresh();
    const closed = await inst.api.patch(`/repos/${repoUuid}`, { visibility: "Private" }, bob.token);
    expect(closed.status).toBe(200);
    // Closing the repo closes its units (a child is never more open than its parent).
    expect((await get(`/repos/${repoUuid}`, carol.token)).status).toBe(404);
    expect((await get(`/units/${unit.uuid}`, carol.token)).status).toBe(404);
    expect((await get(`/units/${other.uuid}`, carol.token)).status).toBe(200);
    await expectFresh();
  });

  it("answers 404 everywhere once the unit is deleted", async () => {
    expect((await inst.api.delete(`/units/${unit.uuid}`, bob.token)).status).toBe(204);
    for (const path of [
      `/units/${unit.uuid}`,
      `/units/env/${unit.uuid}`,
      `/units/get_current_schema/${unit.uuid}`,
      `/units/get_target_version/${unit.uuid}`,
    ]) {
      expect((await get(path, bob.token)).status).toBe(404);
    }
    // The other unit closed with the repo: its owner still sees it, bob no longer.
    expect((await get("/units", bob.token)).body.count).toBe(0);
    expect((await get("/units", carol.token)).body.count).toBe(1);
    await expectFresh();
  });
});
