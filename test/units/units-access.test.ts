import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFixtureRepo } from "../helpers/git-fixtures.ts";
import { createUser, startTestInstance, type TestInstance } from "../helpers/instance.ts";
import { createRepo } from "../helpers/repos.ts";
import { createUnit, nodeOf, unitToken } from "../helpers/units.ts";

const names = (body: { units: Array<{ name: string }> }) => body.units.map((u) => u.name).sort();

describe("units: visibility, listing, update and delete", () => {
  let inst: TestInstance;
  let admin: { uuid: string; token: string };
  let bob: { uuid: string; token: string };
  let carol: { uuid: string; token: string };
  let repoUuid: string;
  let otherRepoUuid: string;
  let bobPrivate: any;

  beforeAll(async () => {
    inst = await startTestInstance();
    admin = await createUser(inst.api, "admin");
    bob = await createUser(inst.api, "bob");
    carol = await createUser(inst.api, "carol");
    const fixture = createFixtureRepo();
    repoUuid = (await createRepo(inst.api, bob.token, fixture)).uuid;
    otherRepoUuid = (await createRepo(inst.api, carol.token, fixture)).uuid;
    await createUnit(inst.api, bob.token, repoUuid, { name: "bob-public", visibility: "Public" });
    await createUnit(inst.api, bob.token, repoUuid, {
      name: "bob-internal",
      visibility: "Internal",
    });
    bobPrivate = await createUnit(inst.api, bob.token, repoUuid, {
      name: "bob-private",
      visibility: "Private",
    });
    await createUnit(inst.api, carol.token, otherRepoUuid, {
      name: "carol-private",
      visibility: "Private",
    });
    await createUnit(inst.api, carol.token, otherRepoUuid, {
      name: "carol-public",
      visibility: "Public",
    });
  });
  afterAll(async () => {
    await inst?.close();
  });

  it("lists Public to anonymous, +Internal +own to users, all to admin, the creator's view to a unit", async () => {
    const anon = await inst.api.get("/units");
    expect(anon.status).toBe(200);
    expect(names(anon.body)).toEqual(["bob-public", "carol-public"]);
    expect(anon.body.count).toBe(2);
    expect(names((await inst.api.get("/units", carol.token)).body)).toEqual([
      "bob-internal",
      "bob-public",
      "carol-private",
      "carol-public",
    ]);
    expect((await inst.api.get("/units", admin.token)).body.count).toBe(5);
    const token = await unitToken(inst.api, bob.token, bobPrivate.uuid);
    expect(names((await inst.api.get("/units", token)).body)).toEqual([
      "bob-internal",
      "bob-private",
      "bob-public",
      "carol-public",
    ]);
    expect((await inst.api.get(`/units/${bobPrivate.uuid}`, carol.token)).status).toBe(404);
    expect((await inst.api.get(`/units/${bobPrivate.uuid}`)).status).toBe(404);
    expect((await inst.api.get(`/units/${bobPrivate.uuid}`, admin.token)).status).toBe(200);
  });

  it("filters by repo, creator, visibility and name search, and paginates", async () => {
    const byRepo = await inst.api.get(`/units?repo_uuid=${otherRepoUuid}`, admin.token);
    expect(names(byRepo.body)).toEqual(["carol-private", "carol-public"]);
    const byCreator = await inst.api.get(`/units?creator_uuid=${bob.uuid}`, carol.token);
    expect(names(byCreator.body)).toEqual(["bob-internal", "bob-public"]);
    const byVis = await inst.api.get("/units?visibility=Private&visibility=Internal", admin.token);
    expect(names(byVis.body)).toEqual(["bob-internal", "bob-private", "carol-private"]);
    const search = await inst.api.get("/units?search=PUB", carol.token);
    expect(names(search.body)).toEqual(["bob-public", "carol-public"]);
    expect((await inst.api.get("/units?search=%25", carol.token)).body.count).toBe(0);
    const page = await inst.api.get("/units?limit=2&offset=1&order_by_unit_name=asc", admin.token);
    expect(page.body.count).toBe(5);
    expect(page.body.units.map((u: { name: string }) => u.name)).toEqual([
      "bob-private",
      "bob-public",
    ]);
    expect((await inst.api.get("/units?limit=501", admin.token)).status).toBe(422);
    expect((await inst.api.get("/units?unit_node_uuids=nope", admin.token)).status).toBe(422);
  });

  it("refuses a Private unit's name without saying that it exists or whose it is (create and rename)", async () => {
    // Names are instance-wide (WebFinger handles), so the name is refused, but a refusal
    // for a Private unit's name must read exactly like one for a free-but-reserved name.
    const taken = await inst.api.post(
      "/units",
      { repo_uuid: otherRepoUuid, name: "bob-private" },
      carol.token,
    );
    expect(taken.status).toBe(409);
    expect(taken.body).toEqual({ detail: "this unit name is not available" });
    const own = await createUnit(inst.api, carol.token, otherRepoUuid, { name: "carol-renames" });
    const rename = await inst.api.patch(`/units/${own.uuid}`, { name: "bob-private" }, carol.token);
    expect(rename.status).toBe(409);
    expect(rename.body).toEqual({ detail: "this unit name is not available" });
    // A Public unit's name gets the very same answer: nothing tells the two apart.
    const pub = await inst.api.patch(`/units/${own.uuid}`, { name: "bob-public" }, carol.token);
    expect(pub.body).toEqual(rename.body);
  });

  it("renames, refuses a taken name, and keeps a unit no more open than its repo", async () => {
    const u = await createUnit(inst.api, bob.token, repoUuid, { name: "to-rename" });
    const renamed = await inst.api.patch(`/units/${u.uuid}`, { name: "renamed" }, bob.token);
    expect(renamed.status).toBe(200);
    expect(renamed.body.name).toBe("renamed");
    expect(
      (await inst.api.patch(`/units/${u.uuid}`, { name: "bob-public" }, bob.token)).status,
    ).toBe(409);
    expect((await inst.api.patch(`/units/${u.uuid}`, { name: "x" }, carol.token)).status).toBe(403);
    expect((await inst.api.patch(`/units/${u.uuid}`, { name: "y" }, admin.token)).status).toBe(200);

    const internalRepo = await createRepo(inst.api, bob.token, createFixtureRepo(), {
      visibility: "Internal",
    });
    const inner = await createUnit(inst.api, bob.token, internalRepo.uuid, {
      visibility: "Internal",
    });
    const up = await inst.api.patch(`/units/${inner.uuid}`, { visibility: "Public" }, bob.token);
    expect(up.status).toBe(422);
    expect(up.body.detail).toMatch(/more open than its repo/);
  });

  it("lowering a unit's visibility lowers its more open variables", async () => {
    const u = await createUnit(inst.api, bob.token, repoUuid, { visibility: "Public" });
    const relay = nodeOf(u, "Input", "relay");
    const temp = nodeOf(u, "Output", "temperature");
    expect(
      (await inst.api.patch(`/unit_nodes/${relay.uuid}`, { visibility: "Private" }, bob.token))
        .status,
    ).toBe(200);
    const lowered = await inst.api.patch(`/units/${u.uuid}`, { visibility: "Internal" }, bob.token);
    expect(lowered.status).toBe(200);
    expect(nodeOf(lowered.body, "Input", "relay").visibility).toBe("Private");
    expect(nodeOf(lowered.body, "Output", "temperature").visibility).toBe("Internal");
    // Raising the unit again does not raise its variables.
    const raised = await inst.api.patch(`/units/${u.uuid}`, { visibility: "Public" }, bob.token);
    expect(nodeOf(raised.body, "Output", "temperature").visibility).toBe("Internal");
    // Others see the unit but not its Private variable.
    const seen = await inst.api.get(`/units/${u.uuid}`, carol.token);
    expect(seen.body.unit_nodes.map((n: { uuid: string }) => n.uuid)).not.toContain(relay.uuid);
    expect(seen.body.unit_nodes.map((n: { uuid: string }) => n.uuid)).toContain(temp.uuid);
    // Anonymous sees the Public unit, but every variable is at most Internal now.
    const anon = await inst.api.get(`/units/${u.uuid}`);
    expect(anon.status).toBe(200);
    expect(anon.body.unit_nodes).toEqual([]);
  });

  it("deletes a unit with its variables and edges (creator or admin), emitting unit.deleted", async () => {
    const u = await createUnit(inst.api, bob.token, repoUuid);
    const v = await createUnit(inst.api, carol.token, otherRepoUuid);
    const edge = await inst.api.post(
      "/unit_node_edges",
      {
        output_uuid: nodeOf(u, "Output", "temperature").uuid,
        input_uuid: nodeOf(v, "Input", "relay").uuid,
      },
      carol.token,
    );
    expect(edge.status).toBe(201);
    const events: string[] = [];
    inst.deps.events.on("unit.deleted", (e) => events.push(`unit:${e.unitUuid}`));
    inst.deps.events.on("edge.deleted", (e) =>
      events.push(`edge:${e.edgeUuid}:${e.inputUnitUuid}`),
    );
    expect((await inst.api.delete(`/units/${u.uuid}`, carol.token)).status).toBe(403);
    expect((await inst.api.delete(`/units/${u.uuid}`)).status).toBe(401);
    expect((await inst.api.delete(`/units/${u.uuid}`, bob.token)).status).toBe(204);
    expect(events.sort()).toEqual([`edge:${edge.body.uuid}:${v.uuid}`, `unit:${u.uuid}`].sort());
    expect((await inst.api.get(`/units/${u.uuid}`, bob.token)).status).toBe(404);
    expect(
      (await inst.api.get(`/unit_nodes/${nodeOf(u, "Output", "temperature").uuid}`, admin.token))
        .status,
    ).toBe(404);
    expect(
      (await inst.api.get(`/unit_node_edges?unit_uuid=${v.uuid}`, carol.token)).body.count,
    ).toBe(0);
    const schema = (await inst.api.get(`/units/get_current_schema/${v.uuid}`, carol.token)).body;
    expect(schema.input_topic.relay).toHaveLength(1);
    expect((await inst.api.delete(`/units/${v.uuid}`, admin.token)).status).toBe(204);
  });

  it("documents every route in the OpenAPI document", async () => {
    const doc = await inst.api.get("/openapi.json");
    expect(doc.status).toBe(200);
    const paths = doc.body.paths;
    for (const [path, method] of [
      ["/units", "post"],
      ["/units", "get"],
      ["/units/{uuid}", "patch"],
      ["/units/{uuid}/rotate_token", "post"],
      ["/units/env/{uuid}", "get"],
      ["/units/env/{uuid}", "patch"],
      ["/units/get_current_schema/{uuid}", "get"],
      ["/units/get_target_version/{uuid}", "get"],
      ["/units/set_state_storage/{uuid}", "post"],
      ["/units/get_state_storage/{uuid}", "get"],
      ["/unit_nodes", "get"],
      ["/unit_nodes/{uuid}", "patch"],
      ["/unit_node_edges", "post"],
      ["/unit_node_edges/{uuid}", "delete"],
    ] as const) {
      expect(paths[path]?.[method], `${method} ${path}`).toBeDefined();
    }
    const params = paths["/units"].get.parameters.map((p: { name: string }) => p.name);
    expect(params).toEqual(
      expect.arrayContaining(["unit_node_uuids", "is_include_output_unit_nodes"]),
    );
  });
});
