import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFixtureRepo } from "../helpers/git-fixtures.ts";
import { createUser, startTestInstance, type TestInstance } from "../helpers/instance.ts";
import { createRepo } from "../helpers/repos.ts";
import { createUnit, nodeOf, unitToken } from "../helpers/units.ts";

describe("unit node edges", () => {
  let inst: TestInstance;
  let admin: { uuid: string; token: string };
  let bob: { uuid: string; token: string };
  let carol: { uuid: string; token: string };
  let bobUnit: any;
  let bobPrivate: any;
  let carolUnit: any;
  const events: string[] = [];

  beforeAll(async () => {
    inst = await startTestInstance();
    admin = await createUser(inst.api, "admin");
    bob = await createUser(inst.api, "bob");
    carol = await createUser(inst.api, "carol");
    const fixture = createFixtureRepo();
    const repo = await createRepo(inst.api, bob.token, fixture);
    bobUnit = await createUnit(inst.api, bob.token, repo.uuid, { name: "bob-unit" });
    bobPrivate = await createUnit(inst.api, bob.token, repo.uuid, {
      name: "bob-private",
      visibility: "Private",
    });
    carolUnit = await createUnit(inst.api, carol.token, repo.uuid, { name: "carol-unit" });
    inst.deps.events.on("edge.created", (e) =>
      events.push(`created:${e.edgeUuid}:${e.outputUuid}:${e.inputUuid}:${e.inputUnitUuid}`),
    );
    inst.deps.events.on("edge.deleted", (e) =>
      events.push(`deleted:${e.edgeUuid}:${e.outputUuid}:${e.inputUuid}:${e.inputUnitUuid}`),
    );
  });
  afterAll(async () => {
    await inst?.close();
  });

  const link = (output: string, input: string, token?: string) =>
    inst.api.post("/unit_node_edges", { output_uuid: output, input_uuid: input }, token);

  it("links an output into the owner's own input and refuses a duplicate", async () => {
    const out = nodeOf(carolUnit, "Output", "temperature");
    const input = nodeOf(bobUnit, "Input", "relay");
    events.length = 0;
    const res = await link(out.uuid, input.uuid, bob.token);
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      output_uuid: out.uuid,
      input_uuid: input.uuid,
      creator_uuid: bob.uuid,
    });
    expect(res.body.uuid).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Date(res.body.create_datetime).toISOString()).toBe(res.body.create_datetime);
    expect(events).toEqual([`created:${res.body.uuid}:${out.uuid}:${input.uuid}:${bobUnit.uuid}`]);
    const dup = await link(out.uuid, input.uuid, bob.token);
    expect(dup.status).toBe(409);
    const other = nodeOf(carolUnit, "Output", "output/pepeunit");
    const raced = await Promise.all([1, 2].map(() => link(other.uuid, input.uuid, bob.token)));
    expect(raced.map((r) => r.status).sort()).toEqual([201, 409]);
    const listed = await inst.api.get(`/unit_node_edges?unit_uuid=${bobUnit.uuid}`, bob.token);
    expect(listed.body.count).toBe(2);
    expect(listed.body.unit_node_edges[0].uuid).toBe(res.body.uuid);
  });

  it("checks the types of both ends", async () => {
    const bobIn = nodeOf(bobUnit, "Input", "input/pepeunit");
    const bobOut = nodeOf(bobUnit, "Output", "output/pepeunit");
    const inAsOutput = await link(bobIn.uuid, nodeOf(bobUnit, "Input", "relay").uuid, bob.token);
    expect(inAsOutput.status).toBe(422);
    expect(inAsOutput.body.detail).toMatch(/output_uuid must be an Output/);
    const outAsInput = await link(
      bobOut.uuid,
      nodeOf(bobUnit, "Output", "temperature").uuid,
      bob.token,
    );
    expect(outAsInput.status).toBe(422);
    expect(outAsInput.body.detail).toMatch(/input_uuid must be an Input/);
    expect((await inst.api.post("/unit_node_edges", { output_uuid: "x" }, bob.token)).status).toBe(
      422,
    );
  });

  it("refuses reading another user's Private output and writing into a non-rewritable input", async () => {
    const privateOut = nodeOf(bobPrivate, "Output", "temperature");
    const carolIn = nodeOf(carolUnit, "Input", "relay");
    const hidden = await link(privateOut.uuid, carolIn.uuid, carol.token);
    expect(hidden.status).toBe(404);

    const bobIn = nodeOf(bobUnit, "Input", "input/pepeunit");
    const carolOut = nodeOf(carolUnit, "Output", "output/pepeunit");
    const closed = await link(carolOut.uuid, bobIn.uuid, carol.token);
    expect(closed.status).toBe(403);
    expect(closed.body.detail).toMatch(/not rewritable/);

    expect(
      (await inst.api.patch(`/unit_nodes/${bobIn.uuid}`, { is_rewritable_input: true }, bob.token))
        .status,
    ).toBe(200);
    const open = await link(carolOut.uuid, bobIn.uuid, carol.token);
    expect(open.status).toBe(201);
    expect(open.body.creator_uuid).toBe(carol.uuid);

    // A Private input stays out of reach even when rewritable.
    const privIn = nodeOf(bobPrivate, "Input", "relay");
    await inst.api.patch(`/unit_nodes/${privIn.uuid}`, { is_rewritable_input: true }, bob.token);
    expect((await link(carolOut.uuid, privIn.uuid, carol.token)).status).toBe(404);
    // The owner and the admin link freely.
    expect((await link(privateOut.uuid, privIn.uuid, bob.token)).status).toBe(201);
    expect(
      (await link(carolOut.uuid, nodeOf(bobPrivate, "Input", "input/pepeunit").uuid, admin.token))
        .status,
    ).toBe(201);
    // Units and anonymous callers do not draw edges.
    const token = await unitToken(inst.api, bob.token, bobUnit.uuid);
    expect((await link(carolOut.uuid, nodeOf(bobUnit, "Input", "relay").uuid, token)).status).toBe(
      403,
    );
    expect((await link(carolOut.uuid, nodeOf(bobUnit, "Input", "relay").uuid)).status).toBe(401);
  });

  it("lets the edge's creator, the input's owner or an admin delete a link", async () => {
    const bobIn = nodeOf(bobUnit, "Input", "input/pepeunit");
    const carolTemp = nodeOf(carolUnit, "Output", "temperature");
    const byCarol = await link(carolTemp.uuid, bobIn.uuid, carol.token);
    expect(byCarol.status).toBe(201);
    const dave = await createUser(inst.api, "dave");
    expect(
      (await inst.api.delete(`/unit_node_edges/${byCarol.body.uuid}`, dave.token)).status,
    ).toBe(403);
    events.length = 0;
    expect((await inst.api.delete(`/unit_node_edges/${byCarol.body.uuid}`, bob.token)).status).toBe(
      204,
    );
    expect(events).toEqual([
      `deleted:${byCarol.body.uuid}:${carolTemp.uuid}:${bobIn.uuid}:${bobUnit.uuid}`,
    ]);
    expect((await inst.api.delete(`/unit_node_edges/${byCarol.body.uuid}`, bob.token)).status).toBe(
      404,
    );

    const again = await link(carolTemp.uuid, bobIn.uuid, carol.token);
    expect((await inst.api.delete(`/unit_node_edges/${again.body.uuid}`, carol.token)).status).toBe(
      204,
    );
    const third = await link(carolTemp.uuid, bobIn.uuid, carol.token);
    expect((await inst.api.delete(`/unit_node_edges/${third.body.uuid}`, admin.token)).status).toBe(
      204,
    );
  });

  it("lists edges whose both ends the caller may see, and those out of its own outputs", async () => {
    const all = await inst.api.get(`/unit_node_edges?unit_uuid=${bobPrivate.uuid}`, admin.token);
    expect(all.body.count).toBe(2);
    const carolView = await inst.api.get(
      `/unit_node_edges?unit_uuid=${bobPrivate.uuid}`,
      carol.token,
    );
    // Only the admin's link out of carol's own output, its Private input not named.
    expect(carolView.body.count).toBe(1);
    expect(carolView.body.unit_node_edges[0]).toMatchObject({
      output_uuid: nodeOf(carolUnit, "Output", "output/pepeunit").uuid,
      input_uuid: null,
    });
    const strangerView = await inst.api.get(
      `/unit_node_edges?unit_uuid=${bobPrivate.uuid}`,
      (await createUser(inst.api, "erin")).token,
    );
    expect(strangerView.body.count).toBe(0);
    const bobIn = nodeOf(bobUnit, "Input", "input/pepeunit");
    const byInput = await inst.api.get(`/unit_node_edges?input_uuid=${bobIn.uuid}`);
    expect(
      byInput.body.unit_node_edges.every(
        (e: { input_uuid: string }) => e.input_uuid === bobIn.uuid,
      ),
    ).toBe(true);
    expect(byInput.body.count).toBe(1);
  });
});
