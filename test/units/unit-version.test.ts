import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { unitNodes } from "../../src/db/schema.ts";
import type { DomainEvents } from "../../src/events.ts";
import {
  createFixtureRepo,
  DEFAULT_ENV_EXAMPLE,
  DEFAULT_SCHEMA_EXAMPLE,
  type FixtureRepo,
} from "../helpers/git-fixtures.ts";
import { createUser, startTestInstance, type TestInstance } from "../helpers/instance.ts";
import { createRepo } from "../helpers/repos.ts";
import { createUnit, nodeOf } from "../helpers/units.ts";

describe("unit version change", () => {
  let inst: TestInstance;
  let bob: { uuid: string; token: string };
  let carol: { uuid: string; token: string };
  let fixture: FixtureRepo;
  let repoUuid: string;
  let v1: string;
  let v2: string;

  beforeAll(async () => {
    inst = await startTestInstance();
    await createUser(inst.api, "admin");
    bob = await createUser(inst.api, "bob");
    carol = await createUser(inst.api, "carol");
    fixture = createFixtureRepo();
    v1 = fixture.head();
    // v2 keeps input/pepeunit and output/pepeunit, drops relay and temperature, adds pump and humidity.
    v2 = fixture.commit("v2", {
      "schema_example.json": JSON.stringify({
        ...DEFAULT_SCHEMA_EXAMPLE,
        input_topic: ["input/pepeunit", "pump"],
        output_topic: ["output/pepeunit", "humidity"],
      }),
      "env_example.json": JSON.stringify({ ...DEFAULT_ENV_EXAMPLE, NEW_SETTING: 7 }),
    });
    repoUuid = (await createRepo(inst.api, bob.token, fixture)).uuid;
  });
  afterAll(async () => {
    await inst?.close();
  });

  it("keeps persisting variables with their edges and removes missing ones with theirs", async () => {
    const u = await createUnit(inst.api, bob.token, repoUuid, {
      follow_repo: false,
      branch: "main",
      commit: v1,
    });
    const w = await createUnit(inst.api, carol.token, repoUuid, {
      follow_repo: false,
      branch: "main",
      commit: v1,
    });
    expect(u.commit).toBe(v1);
    const uIn = nodeOf(u, "Input", "input/pepeunit");
    const uOut = nodeOf(u, "Output", "output/pepeunit");
    const uRelay = nodeOf(u, "Input", "relay");
    const uTemp = nodeOf(u, "Output", "temperature");
    const wOut = nodeOf(w, "Output", "output/pepeunit");
    const wIn = nodeOf(w, "Input", "input/pepeunit");
    const link = async (output: string, input: string, token: string) => {
      const r = await inst.api.post(
        "/unit_node_edges",
        { output_uuid: output, input_uuid: input },
        token,
      );
      expect(r.status).toBe(201);
      return r.body.uuid as string;
    };
    const keptIn = await link(wOut.uuid, uIn.uuid, bob.token);
    const goneIn = await link(wOut.uuid, uRelay.uuid, bob.token);
    const keptOut = await link(uOut.uuid, wIn.uuid, carol.token);
    const goneOut = await link(uTemp.uuid, wIn.uuid, carol.token);

    await inst.api.patch(`/units/env/${u.uuid}`, { PUC_WIFI_SSID: "home" }, bob.token);
    // The broker records values; here the value is written directly to prove it survives.
    await inst.deps.database.db
      .update(unitNodes)
      .set({ lastValue: "21.5" })
      .where(eq(unitNodes.uuid, uIn.uuid));
    const envBefore = (await inst.api.get(`/units/env/${u.uuid}`, bob.token)).body;

    const seen: {
      changed: DomainEvents["unit-nodes.changed"][0][];
      updated: DomainEvents["unit.updated"][0][];
    } = {
      changed: [],
      updated: [],
    };
    const deleted: string[] = [];
    inst.deps.events.on("unit-nodes.changed", (e) => seen.changed.push(e));
    inst.deps.events.on("unit.updated", (e) => seen.updated.push(e));
    inst.deps.events.on("edge.deleted", (e) => deleted.push(e.edgeUuid));

    const res = await inst.api.patch(`/units/${u.uuid}`, { commit: v2 }, bob.token);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ follow_repo: false, branch: "main", tag: null, commit: v2 });
    const after = res.body;
    expect(nodeOf(after, "Input", "input/pepeunit").uuid).toBe(uIn.uuid);
    expect((await inst.api.get(`/unit_nodes/${uIn.uuid}`, bob.token)).body.last_value).toBe("21.5");
    expect(nodeOf(after, "Output", "output/pepeunit").uuid).toBe(uOut.uuid);
    const pump = nodeOf(after, "Input", "pump");
    const humidity = nodeOf(after, "Output", "humidity");
    expect(after.unit_nodes).toHaveLength(4);
    expect((await inst.api.get(`/unit_nodes/${uRelay.uuid}`, bob.token)).status).toBe(404);
    expect((await inst.api.get(`/unit_nodes/${uTemp.uuid}`, bob.token)).status).toBe(404);

    const edges = await inst.api.get(`/unit_node_edges?unit_uuid=${u.uuid}`, bob.token);
    expect(edges.body.unit_node_edges.map((e: { uuid: string }) => e.uuid).sort()).toEqual(
      [keptIn, keptOut].sort(),
    );
    expect(deleted.sort()).toEqual([goneIn, goneOut].sort());
    expect(seen.changed).toHaveLength(1);
    expect(seen.changed[0]?.unitUuid).toBe(u.uuid);
    expect(seen.changed[0]?.added.sort()).toEqual([pump.uuid, humidity.uuid].sort());
    expect(seen.changed[0]?.removed.sort()).toEqual([uRelay.uuid, uTemp.uuid].sort());
    expect(seen.updated).toEqual([{ unitUuid: u.uuid, versionChanged: true }]);

    const env = (await inst.api.get(`/units/env/${u.uuid}`, bob.token)).body;
    expect(env).toEqual({ ...envBefore, PU_COMMIT_VERSION: v2, NEW_SETTING: 7 });

    const schema = (await inst.api.get(`/units/get_current_schema/${u.uuid}`, bob.token)).body;
    expect(Object.keys(schema.input_topic)).toEqual(["input/pepeunit", "pump"]);
    expect(schema.input_topic["input/pepeunit"]).toEqual([
      `localhost:8080/${uIn.uuid}/pepeunit`,
      `localhost:8080/${wOut.uuid}/pepeunit`,
    ]);
    const wSchema = (await inst.api.get(`/units/get_current_schema/${w.uuid}`, carol.token)).body;
    expect(wSchema.input_topic["input/pepeunit"]).toEqual([
      `localhost:8080/${wIn.uuid}/pepeunit`,
      `localhost:8080/${uOut.uuid}/pepeunit`,
    ]);
  });

  it("follows the repo again, and refuses a version change by others or to a bad version", async () => {
    const u = await createUnit(inst.api, bob.token, repoUuid, {
      follow_repo: false,
      branch: "main",
      commit: v1,
    });
    expect((await inst.api.patch(`/units/${u.uuid}`, { commit: v2 }, carol.token)).status).toBe(
      403,
    );
    const bad = await inst.api.patch(`/units/${u.uuid}`, { commit: "0123456789abcdef" }, bob.token);
    expect(bad.status).toBe(422);
    const otherBranch = await inst.api.patch(`/units/${u.uuid}`, { branch: "dev" }, bob.token);
    expect(otherBranch.status).toBe(422);
    const follow = await inst.api.patch(`/units/${u.uuid}`, { follow_repo: true }, bob.token);
    expect(follow.status).toBe(200);
    expect(follow.body).toMatchObject({ follow_repo: true, branch: "main", commit: v2, tag: null });
    expect((await inst.api.get(`/units/env/${u.uuid}`, bob.token)).body.PU_COMMIT_VERSION).toBe(v2);
    // Pinning without naming a version keeps the one running.
    const pin = await inst.api.patch(`/units/${u.uuid}`, { follow_repo: false }, bob.token);
    expect(pin.body).toMatchObject({ follow_repo: false, branch: "main", commit: v2 });
  });
});
