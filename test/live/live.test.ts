import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectUnit } from "../e2e/support/mqtt.ts";
import { seedPair } from "../e2e/support/seed.ts";
import { createFixtureRepo } from "../helpers/git-fixtures.ts";
import { createUser, startTestInstance, type TestInstance } from "../helpers/instance.ts";
import { createRepo } from "../helpers/repos.ts";
import { createUnit, unitToken } from "../helpers/units.ts";

// The live entity-state channel (GET /live, server-sent events) pushes to each session
// only what that session may see, as the REST lists would show it.

type LiveEvent = { event: string; data: { uuid?: string; link?: { uuid: string } } & object };

/** An open event stream and everything it received so far. */
async function openStream(baseUrl: string, token?: string) {
  const abort = new AbortController();
  const res = await fetch(`${baseUrl}/pepeunit/api/v1/live`, {
    headers: token ? { "x-auth-token": token } : {},
    signal: abort.signal,
  });
  const got: LiveEvent[] = [];
  const state = { ended: false };
  if (res.status !== 200 || !res.body) return { status: res.status, got, state, close() {} };
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let hello = () => {};
  const greeted = new Promise<void>((resolve) => {
    hello = resolve;
  });
  void (async () => {
    let buf = "";
    for (;;) {
      const { done, value } = await reader.read().catch(() => ({ done: true, value: "" }));
      if (done) {
        state.ended = true;
        return;
      }
      buf += value;
      let end = buf.indexOf("\n\n");
      while (end >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event && data) got.push({ event, data: JSON.parse(data) });
        if (event === "hello") hello();
        end = buf.indexOf("\n\n");
      }
    }
  })();
  // Registered once the first message arrived: nothing later is missed.
  await greeted;
  return { status: res.status, got, state, close: () => abort.abort() };
}

type Stream = Awaited<ReturnType<typeof openStream>>;
const about = (s: Stream, uuid: string) =>
  s.got.filter((e) => e.data.uuid === uuid || e.data.link?.uuid === uuid);
const has = (s: Stream, event: string, uuid: string) =>
  about(s, uuid).some((e) => e.event === event);

describe("live entity-state channel", { timeout: 60_000 }, () => {
  let inst: TestInstance;
  let admin: { uuid: string; token: string };
  let alice: { uuid: string; token: string };
  let bob: { uuid: string; token: string };
  const streams: Record<"admin" | "alice" | "bob" | "anon", Stream> = {} as never;

  beforeAll(async () => {
    inst = await startTestInstance();
    admin = await createUser(inst.api, "admin");
    alice = await createUser(inst.api, "alice");
    bob = await createUser(inst.api, "bob");
    streams.admin = await openStream(inst.httpUrl, admin.token);
    streams.alice = await openStream(inst.httpUrl, alice.token);
    streams.bob = await openStream(inst.httpUrl, bob.token);
    streams.anon = await openStream(inst.httpUrl);
  }, 120_000);

  afterAll(async () => {
    for (const s of Object.values(streams)) s.close();
    await inst?.close();
  });

  it("a private repo and unit reach only their owner and the admin, even online and updated", async () => {
    for (const s of Object.values(streams)) expect(s.got[0]?.event).toBe("hello");
    const fixture = createFixtureRepo();
    const repo = await createRepo(inst.api, alice.token, fixture, {
      name: "alice-private",
      visibility: "Private",
    });
    const unit = await createUnit(inst.api, alice.token, repo.uuid, {
      name: "alice-secret",
      visibility: "Private",
    });
    for (const s of [streams.alice, streams.admin]) {
      await expect.poll(() => has(s, "repo", repo.uuid)).toBe(true);
      await expect.poll(() => has(s, "unit", unit.uuid)).toBe(true);
    }
    const device = await connectUnit(
      inst.mqttUrl,
      await unitToken(inst.api, alice.token, unit.uuid),
    );
    try {
      for (const s of [streams.alice, streams.admin]) {
        await expect
          .poll(() =>
            about(s, unit.uuid).some(
              (e) => e.event === "unit-state" && (e.data as { is_online?: boolean }).is_online,
            ),
          )
          .toBe(true);
      }
    } finally {
      await device.endAsync();
    }
    await expect
      .poll(() =>
        about(streams.alice, unit.uuid).some(
          (e) =>
            e.event === "unit-state" && (e.data as { is_online?: boolean }).is_online === false,
        ),
      )
      .toBe(true);
    expect(
      (await inst.api.patch(`/units/${unit.uuid}`, { name: "alice-renamed" }, alice.token)).status,
    ).toBe(200);
    // An update's outcome (src/ota/ announces it): the fields themselves, to its viewers.
    inst.deps.events.emit("unit.update-status", {
      unitUuid: unit.uuid,
      commit: unit.commit,
      status: "Error",
      error: "flash failed",
    });
    for (const s of [streams.alice, streams.admin]) {
      await expect
        .poll(
          () =>
            about(s, unit.uuid).find((e) => e.event === "unit-state" && "update_status" in e.data)
              ?.data,
        )
        .toEqual({ uuid: unit.uuid, update_status: "Error", update_error: "flash failed" });
    }
    const unitEvents = () => about(streams.alice, unit.uuid).filter((e) => e.event === "unit");
    await expect.poll(() => unitEvents().length).toBeGreaterThan(1);

    // A sentinel everyone sees: by the time it arrives, anything sent earlier has arrived too.
    const open = await createRepo(inst.api, alice.token, fixture, { name: "alice-open" });
    for (const s of [streams.bob, streams.anon]) {
      await expect.poll(() => has(s, "repo", open.uuid)).toBe(true);
      expect(about(s, unit.uuid)).toEqual([]);
      expect(about(s, repo.uuid)).toEqual([]);
    }

    // Deleted: announced to those who saw it (and still to nobody else).
    expect((await inst.api.delete(`/units/${unit.uuid}`, alice.token)).status).toBe(204);
    for (const s of [streams.alice, streams.admin])
      await expect.poll(() => has(s, "unit-removed", unit.uuid)).toBe(true);
    expect((await inst.api.delete(`/repos/${open.uuid}`, alice.token)).status).toBe(204);
    for (const s of [streams.bob, streams.anon]) {
      await expect.poll(() => has(s, "repo-removed", open.uuid)).toBe(true);
      expect(about(s, unit.uuid)).toEqual([]);
    }
  });

  it("public units and links reach everyone; a link's deletion and a unit closed to its owner are announced", async () => {
    const seeded = await seedPair(inst.api, alice.token, { prefix: "pub" });
    const everyone = Object.values(streams);
    for (const s of everyone) {
      await expect.poll(() => has(s, "unit", seeded.relay.uuid)).toBe(true);
      await expect.poll(() => has(s, "link", seeded.edge.uuid)).toBe(true);
    }
    expect(
      (await inst.api.delete(`/unit_node_edges/${seeded.edge.uuid}`, alice.token)).status,
    ).toBe(204);
    for (const s of everyone)
      await expect.poll(() => has(s, "link-removed", seeded.edge.uuid)).toBe(true);

    // Closed to its owner: the others lose sight of it (a removal), the owner gets a change.
    const sensorEvents = () =>
      about(streams.alice, seeded.sensor.uuid).filter((e) => e.event === "unit").length;
    const before = sensorEvents();
    const res = await inst.api.patch(
      `/units/${seeded.sensor.uuid}`,
      { visibility: "Private" },
      alice.token,
    );
    expect(res.status).toBe(200);
    for (const s of [streams.bob, streams.anon])
      await expect.poll(() => has(s, "unit-removed", seeded.sensor.uuid)).toBe(true);
    await expect.poll(sensorEvents).toBeGreaterThan(before);
    expect(has(streams.alice, "unit-removed", seeded.sensor.uuid)).toBe(false);
  });

  it("refuses a unit token and ends a session's stream when it logs out", async () => {
    const repo = await createRepo(inst.api, bob.token, createFixtureRepo(), { name: "bob-repo" });
    const unit = await createUnit(inst.api, bob.token, repo.uuid, { name: "bob-unit" });
    const s = await openStream(inst.httpUrl, await unitToken(inst.api, bob.token, unit.uuid));
    expect(s.status).toBe(403);

    const login = await inst.api.post("/users/auth", { login: "bob", password: "pw-bob-secret" });
    const second = await openStream(inst.httpUrl, login.body.token);
    expect(second.state.ended).toBe(false);
    expect((await inst.api.post("/users/logout", undefined, login.body.token)).status).toBe(204);
    await expect.poll(() => second.state.ended).toBe(true);
    // Only that session: bob's other stream still gets what bob may see.
    expect(streams.bob.state.ended).toBe(false);
  });
});
