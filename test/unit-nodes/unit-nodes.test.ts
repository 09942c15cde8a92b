import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFixtureRepo } from "../helpers/git-fixtures.ts";
import { createUser, startTestInstance, type TestInstance } from "../helpers/instance.ts";
import { createRepo } from "../helpers/repos.ts";
import { createUnit, nodeOf } from "../helpers/units.ts";

describe("unit nodes (variables)", () => {
  let inst: TestInstance;
  let admin: { uuid: string; token: string };
  let bob: { uuid: string; token: string };
  let carol: { uuid: string; token: string };
  let unit: any;
  let internalUnit: any;

  beforeAll(async () => {
    inst = await startTestInstance();
    admin = await createUser(inst.api, "admin");
    bob = await createUser(inst.api, "bob");
    carol = await createUser(inst.api, "carol");
    const repo = await createRepo(inst.api, bob.token, createFixtureRepo());
    unit = await createUnit(inst.api, bob.token, repo.uuid, { visibility: "Public" });
    internalUnit = await createUnit(inst.api, bob.token, repo.uuid, { visibility: "Internal" });
  });
  afterAll(async () => {
    await inst?.close();
  });

  it("reads one variable and lists them with filters", async () => {
    const relay = nodeOf(unit, "Input", "relay");
    const one = await inst.api.get(`/unit_nodes/${relay.uuid}`);
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({
      uuid: relay.uuid,
      type: "Input",
      topic_name: "relay",
      topic: `localhost:8080/${relay.uuid}`,
      visibility: "Public",
      is_rewritable_input: false,
      unit_uuid: unit.uuid,
      last_value: null,
    });
    const ofUnit = await inst.api.get(`/unit_nodes?unit_uuid=${unit.uuid}&type=Output`);
    expect(ofUnit.status).toBe(200);
    expect(ofUnit.body.count).toBe(2);
    expect(ofUnit.body.unit_nodes.map((n: { topic_name: string }) => n.topic_name).sort()).toEqual([
      "output/pepeunit",
      "temperature",
    ]);
    // Internal variables are hidden from anonymous callers, shown to users.
    expect((await inst.api.get(`/unit_nodes?unit_uuid=${internalUnit.uuid}`)).body.count).toBe(0);
    expect(
      (await inst.api.get(`/unit_nodes?unit_uuid=${internalUnit.uuid}`, carol.token)).body.count,
    ).toBe(4);
    expect(
      (await inst.api.get(`/unit_nodes/${nodeOf(internalUnit, "Input", "relay").uuid}`)).status,
    ).toBe(404);
    const asc = await inst.api.get(
      `/unit_nodes?unit_uuid=${unit.uuid}&order_by_create_date=asc&limit=1`,
    );
    expect(asc.body.count).toBe(4);
    expect(asc.body.unit_nodes).toHaveLength(1);
    expect((await inst.api.get("/unit_nodes?type=Sideways")).status).toBe(422);
  });

  it("changes visibility (never above the unit) and the rewritable flag (inputs only)", async () => {
    const relay = nodeOf(internalUnit, "Input", "relay");
    const temp = nodeOf(internalUnit, "Output", "temperature");
    const tooOpen = await inst.api.patch(
      `/unit_nodes/${relay.uuid}`,
      { visibility: "Public" },
      bob.token,
    );
    expect(tooOpen.status).toBe(422);
    expect(tooOpen.body.detail).toMatch(/more open than its unit/);
    const outputFlag = await inst.api.patch(
      `/unit_nodes/${temp.uuid}`,
      { is_rewritable_input: true },
      bob.token,
    );
    expect(outputFlag.status).toBe(422);
    expect(outputFlag.body.detail).toMatch(/Input/);

    const updates: string[] = [];
    inst.deps.events.on("unit-node.updated", (e) => updates.push(`${e.unitUuid}:${e.nodeUuid}`));
    const ok = await inst.api.patch(
      `/unit_nodes/${relay.uuid}`,
      { visibility: "Private", is_rewritable_input: true },
      bob.token,
    );
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ visibility: "Private", is_rewritable_input: true });
    expect(updates).toEqual([`${internalUnit.uuid}:${relay.uuid}`]);
    expect((await inst.api.get(`/unit_nodes/${relay.uuid}`, carol.token)).status).toBe(404);
    expect((await inst.api.get(`/unit_nodes/${relay.uuid}`, admin.token)).status).toBe(200);
    const listed = await inst.api.get(`/unit_nodes?unit_uuid=${internalUnit.uuid}`, carol.token);
    expect(listed.body.count).toBe(3);

    expect(
      (await inst.api.patch(`/unit_nodes/${temp.uuid}`, { visibility: "Private" }, carol.token))
        .status,
    ).toBe(403);
    expect(
      (await inst.api.patch(`/unit_nodes/${temp.uuid}`, { visibility: "Private" })).status,
    ).toBe(401);
    const byAdmin = await inst.api.patch(
      `/unit_nodes/${temp.uuid}`,
      { visibility: "Private" },
      admin.token,
    );
    expect(byAdmin.status).toBe(200);
    const empty = await inst.api.patch(`/unit_nodes/${temp.uuid}`, {}, bob.token);
    expect(empty.status).toBe(200);
    expect(empty.body.visibility).toBe("Private");
  });
});
