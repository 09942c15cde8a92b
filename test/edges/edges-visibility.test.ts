import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  clientPool,
  eventually,
  linkNodes,
  makeUnit,
  subscribeCode,
  type WorldUnit,
} from "../broker/mqtt-helpers.ts";
import { createFixtureRepo } from "../helpers/git-fixtures.ts";
import { createUser, startTestInstance, type TestInstance } from "../helpers/instance.ts";
import { createRepo } from "../helpers/repos.ts";

const REFUSED = 0x80;

// Alice owns outputs; bob links them into his units. Lowering the visibility of an output
// (the variable, its unit or its repo) must end the links bob's units may no longer read.
describe("links out of an output whose visibility is lowered", () => {
  let inst: TestInstance;
  let alice: { uuid: string; token: string };
  let bob: { uuid: string; token: string };
  let aliceRepo: { uuid: string };
  let bobRepo: { uuid: string };
  const pool = clientPool(() => inst.mqttUrl);
  const client = pool.client;

  const edgesOut = async (outputUuid: string, token: string) =>
    (await inst.api.get(`/unit_node_edges?output_uuid=${outputUuid}`, token)).body;
  const schemaTopics = async (unit: WorldUnit) => {
    const schema = await inst.api.get(`/units/get_current_schema/${unit.uuid}`, unit.token);
    return Object.values<string[]>(schema.body.input_topic).flat();
  };

  beforeAll(async () => {
    inst = await startTestInstance();
    await createUser(inst.api, "admin");
    alice = await createUser(inst.api, "alice");
    bob = await createUser(inst.api, "bob");
    const fixture = createFixtureRepo();
    aliceRepo = await createRepo(inst.api, alice.token, fixture);
    bobRepo = await createRepo(inst.api, bob.token, fixture);
  });
  afterEach(async () => {
    await pool.closeAll();
  });
  afterAll(async () => {
    await inst?.close();
  });

  it("a variable made Private: the link goes, bob's unit gets SchemaUpdate and stops receiving over MQTT", async () => {
    const a = await makeUnit(inst, alice.token, aliceRepo.uuid);
    const b = await makeUnit(inst, bob.token, bobRepo.uuid);
    const temperature = a.topic("Output", "temperature");
    await linkNodes(
      inst,
      bob.token,
      a.nodeUuid("Output", "temperature"),
      b.nodeUuid("Input", "relay"),
    );
    expect(await schemaTopics(b)).toContain(temperature);

    const sender = await client(a.token, a.uuid);
    const receiver = await client(b.token, b.uuid);
    const bobClient = await client(bob.token);
    expect(await subscribeCode(receiver, temperature)).toBe(1);
    expect(await subscribeCode(receiver, b.topic("Input", "relay"))).toBe(1);
    expect(
      await subscribeCode(receiver, b.base("input_base_topic", "schema_update/pepeunit")),
    ).toBe(1);
    await sender.publishAsync(temperature, "public", { qos: 1 });
    await receiver.waitFor((m) => m.payload.toString() === "public");

    const patched = await inst.api.patch(
      `/unit_nodes/${a.nodeUuid("Output", "temperature")}`,
      { visibility: "Private" },
      alice.token,
    );
    expect(patched.status).toBe(200);
    // Gone from bob's view and from his unit's schema as soon as the PATCH answered.
    expect((await edgesOut(a.nodeUuid("Output", "temperature"), bob.token)).count).toBe(0);
    expect(await schemaTopics(b)).not.toContain(temperature);
    const update = await receiver.waitFor((m) => m.topic.endsWith("/schema_update/pepeunit"));
    expect(JSON.parse(update.payload.toString())).toEqual({ COMMAND: "SchemaUpdate" });

    await sender.publishAsync(temperature, "private", { qos: 1 });
    await bobClient.publishAsync(b.topic("Input", "relay"), "marker", { qos: 1 });
    await receiver.waitFor((m) => m.payload.toString() === "marker");
    expect(receiver.received.map((m) => m.payload.toString())).not.toContain("private");
    expect(await subscribeCode(receiver, temperature)).toBe(REFUSED);
  });

  it("a unit made Private ends links into other users' units; the owner's own and Internal ones stay", async () => {
    const a = await makeUnit(inst, alice.token, aliceRepo.uuid);
    const aInternal = await makeUnit(inst, alice.token, aliceRepo.uuid);
    const aliceOther = await makeUnit(inst, alice.token, aliceRepo.uuid);
    const b = await makeUnit(inst, bob.token, bobRepo.uuid);
    const bobsLink = await linkNodes(
      inst,
      bob.token,
      a.nodeUuid("Output", "output/pepeunit"),
      b.nodeUuid("Input", "input/pepeunit"),
    );
    const ownLink = await linkNodes(
      inst,
      alice.token,
      a.nodeUuid("Output", "temperature"),
      aliceOther.nodeUuid("Input", "relay"),
    );
    const internalLink = await linkNodes(
      inst,
      bob.token,
      aInternal.nodeUuid("Output", "temperature"),
      b.nodeUuid("Input", "relay"),
    );
    const receiver = await client(b.token, b.uuid);
    expect(await subscribeCode(receiver, a.topic("Output", "output/pepeunit"))).toBe(1);

    expect(
      (await inst.api.patch(`/units/${aInternal.uuid}`, { visibility: "Internal" }, alice.token))
        .status,
    ).toBe(200);
    expect(
      (await inst.api.patch(`/units/${a.uuid}`, { visibility: "Private" }, alice.token)).status,
    ).toBe(200);
    const aliceView = await inst.api.get(`/unit_node_edges?unit_uuid=${a.uuid}`, alice.token);
    expect(aliceView.body.unit_node_edges.map((e: { uuid: string }) => e.uuid)).toEqual([ownLink]);
    const bobView = await inst.api.get(`/unit_node_edges?unit_uuid=${b.uuid}`, bob.token);
    expect(bobView.body.unit_node_edges.map((e: { uuid: string }) => e.uuid)).toEqual([
      internalLink,
    ]);
    expect(bobView.body.unit_node_edges).not.toContainEqual(
      expect.objectContaining({ uuid: bobsLink }),
    );
    // The broker no longer lets bob's unit hold the output it lost; the Internal one it keeps.
    expect(await subscribeCode(receiver, a.topic("Output", "output/pepeunit"))).toBe(REFUSED);
    expect(await subscribeCode(receiver, aInternal.topic("Output", "temperature"))).toBe(1);
  });

  it("a repo made Private ends the links out of the units it lowers", async () => {
    const repo = await createRepo(inst.api, alice.token, createFixtureRepo());
    const a = await makeUnit(inst, alice.token, repo.uuid);
    const b = await makeUnit(inst, bob.token, bobRepo.uuid);
    await linkNodes(
      inst,
      bob.token,
      a.nodeUuid("Output", "temperature"),
      b.nodeUuid("Input", "relay"),
    );
    expect(
      (await inst.api.patch(`/repos/${repo.uuid}`, { visibility: "Private" }, alice.token)).status,
    ).toBe(200);
    // The repo announces its lowered units as domain events; the links go right after.
    await eventually(
      async () => !(await schemaTopics(b)).includes(a.topic("Output", "temperature")),
    );
    expect((await edgesOut(a.nodeUuid("Output", "temperature"), alice.token)).count).toBe(0);
  });

  it("refuses linking a Private output into another user's unit", async () => {
    const a = await makeUnit(inst, alice.token, aliceRepo.uuid, { visibility: "Private" });
    const b = await makeUnit(inst, bob.token, bobRepo.uuid);
    const input = b.nodeUuid("Input", "relay");
    await inst.api.patch(`/unit_nodes/${input}`, { is_rewritable_input: true }, bob.token);
    const res = await inst.api.post(
      "/unit_node_edges",
      { output_uuid: a.nodeUuid("Output", "temperature"), input_uuid: input },
      alice.token,
    );
    expect(res.status).toBe(403);
    expect(res.body.detail).toMatch(/Private output can only be linked into its owner's units/);
  });

  it("shows the output's owner every link out of it and lets it delete one into a unit it cannot see", async () => {
    const a = await makeUnit(inst, alice.token, aliceRepo.uuid);
    const hidden = await makeUnit(inst, bob.token, bobRepo.uuid, { visibility: "Private" });
    const output = a.nodeUuid("Output", "temperature");
    const edge = await linkNodes(inst, bob.token, output, hidden.nodeUuid("Input", "relay"));

    const listed = await edgesOut(output, alice.token);
    expect(listed.count).toBe(1);
    expect(listed.unit_node_edges[0]).toMatchObject({
      uuid: edge,
      output_uuid: output,
      input_uuid: null,
      creator_uuid: bob.uuid,
    });
    // Bob, who sees both ends, gets the input as before; a stranger gets nothing.
    expect((await edgesOut(output, bob.token)).unit_node_edges[0].input_uuid).toBe(
      hidden.nodeUuid("Input", "relay"),
    );
    const carol = await createUser(inst.api, "carol");
    expect((await edgesOut(output, carol.token)).count).toBe(0);
    expect((await inst.api.delete(`/unit_node_edges/${edge}`, carol.token)).status).toBe(404);

    expect((await inst.api.delete(`/unit_node_edges/${edge}`, alice.token)).status).toBe(204);
    expect((await edgesOut(output, bob.token)).count).toBe(0);
  });
});
