import { rm } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AlertService } from "../../src/alerts/alerts.service.ts";
import {
  connectClient,
  eventually,
  makeUnit,
  makeWorld,
  type TestClient,
  type World,
  type WorldUnit,
} from "../broker/mqtt-helpers.ts";
import { createFixtureRepo, DEFAULT_SCHEMA_EXAMPLE } from "../helpers/git-fixtures.ts";
import { createUser, startTestInstance, type TestInstance } from "../helpers/instance.ts";
import { createRepo } from "../helpers/repos.ts";
import { type SmtpSink, startSmtpSink } from "../helpers/smtp-sink.ts";

// Alerts through the real server: rules over HTTP, values published by a unit over MQTT,
// events read back over HTTP, mail through a real SMTP server, and a restart on the same
// database. The evaluator's and the unit watch's clocks are moved by the test, so rate
// limits and grace periods pass without waiting.

const SECOND = 1000;

describe("alerts", () => {
  let inst: TestInstance;
  /** The instance started again on the same data (the restart test). */
  let restarted: TestInstance | null = null;
  let sink: SmtpSink;
  let world: World;
  let carol: { uuid: string; token: string };
  let unit: WorldUnit;
  let device: TestClient;
  let clock = Date.now();

  const current = () => restarted ?? inst;
  const alerts = (): AlertService => {
    const a = current().deps.alerts;
    if (!a) throw new Error("no alert service");
    return a;
  };
  const setTime = (ms: number) => {
    clock = ms;
    alerts().evaluator.setClock(() => clock);
    alerts().watch.setClock(() => clock);
  };

  /** Publishes a value as the unit and waits until the evaluator has seen it and acted. */
  async function publish(value: string, name = "temperature") {
    const nodeUuid = unit.nodeUuid("Output", name);
    const events = current().deps.events;
    const seen = new Promise<void>((resolve) => {
      const on = (e: { nodeUuid: string; payload: Buffer }) => {
        if (e.nodeUuid !== nodeUuid || e.payload.toString() !== value) return;
        events.off("unit-node.value-seen", on);
        resolve();
      };
      events.on("unit-node.value-seen", on);
    });
    await device.publishAsync(unit.topic("Output", name), value, { qos: 1 });
    await seen;
    await alerts().evaluator.drain();
  }

  async function eventsOf(token: string) {
    const res = await current().api.get("/alerts/events?limit=500", token);
    expect(res.status).toBe(200);
    return res.body as {
      count: number;
      unread: number;
      alert_events: Array<{ uuid: string; kind: string; message: string; read: boolean }>;
    };
  }

  async function createRule(body: object, token = world.bob.token) {
    const res = await current().api.post("/alerts", body, token);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body.uuid as string;
  }

  beforeAll(async () => {
    sink = await startSmtpSink();
    inst = await startTestInstance({ PEPEUNIT_SMTP_URL: sink.url });
    world = await makeWorld(inst);
    carol = await createUser(inst.api, "carol");
    unit = await makeUnit(inst, world.bob.token, world.repoUuid, { name: "greenhouse" });
    device = await connectClient(inst.mqttUrl, unit.token);
    setTime(clock);
  }, 60_000);

  afterAll(async () => {
    await device?.endAsync();
    if (restarted) {
      await restarted.close();
      await inst.deps.database.close();
      await rm(inst.dir, { recursive: true, force: true });
    } else {
      await inst?.close();
    }
    await sink?.close();
  });

  it("checks rules: limits, visibility of the variable, only one's own rules", async () => {
    const temperature = unit.nodeUuid("Output", "temperature");
    const bad = [
      { unit_node_uuid: temperature },
      { unit_node_uuid: temperature, min: 10, max: 5 },
      { unit_node_uuid: temperature, min: 0, max: 10, hysteresis: 5 },
      { unit_node_uuid: temperature, max: 10, hysteresis: -1 },
      { unit_node_uuid: temperature, max: 10, min_interval_s: 1.5 },
      { unit_node_uuid: temperature, max: 1e300 },
      { unit_node_uuid: "not-a-uuid", max: 1 },
    ];
    for (const body of bad) {
      const res = await inst.api.post("/alerts", body, world.bob.token);
      expect(res.status, JSON.stringify(body)).toBe(422);
      expect(res.body.detail).toBeDefined();
    }
    expect((await inst.api.post("/alerts", { unit_node_uuid: temperature, max: 1 })).status).toBe(
      401,
    );

    // A Private unit's variable is not carol's to watch; her own rule on a Public one is hers alone.
    const hidden = await makeUnit(inst, world.bob.token, world.repoUuid, {
      name: "hidden",
      visibility: "Private",
    });
    const refused = await inst.api.post(
      "/alerts",
      { unit_node_uuid: hidden.nodeUuid("Output", "temperature"), max: 1 },
      carol.token,
    );
    expect(refused.status).toBe(404);
    const ruleUuid = await createRule({ unit_node_uuid: temperature, min: 1, max: 2 }, carol.token);
    const got = await inst.api.get(`/alerts/${ruleUuid}`, carol.token);
    expect(got.body).toMatchObject({
      unit_node_uuid: temperature,
      unit_uuid: unit.uuid,
      min: 1,
      max: 2,
      hysteresis: 0,
      min_interval_s: 60,
      enabled: true,
      state: "normal",
    });
    for (const token of [world.bob.token, world.admin.token]) {
      expect((await inst.api.get(`/alerts/${ruleUuid}`, token)).status).toBe(404);
      expect((await inst.api.patch(`/alerts/${ruleUuid}`, { enabled: false }, token)).status).toBe(
        404,
      );
      expect((await inst.api.delete(`/alerts/${ruleUuid}`, token)).status).toBe(404);
      const list = await inst.api.get("/alerts", token);
      expect(list.body.alerts.map((r: { uuid: string }) => r.uuid)).not.toContain(ruleUuid);
    }
    const mine = await inst.api.get("/alerts?limit=1", carol.token);
    expect(mine.body).toMatchObject({ count: 1, alerts: [{ uuid: ruleUuid }] });
    const widened = await inst.api.patch(`/alerts/${ruleUuid}`, { min: null }, carol.token);
    expect(widened.body).toMatchObject({ min: null, max: 2 });
    expect((await inst.api.patch(`/alerts/${ruleUuid}`, { max: null }, carol.token)).status).toBe(
      422,
    );
    expect((await inst.api.delete(`/alerts/${ruleUuid}`, carol.token)).status).toBe(204);
    expect((await inst.api.get(`/alerts/${ruleUuid}`, carol.token)).status).toBe(404);
  });

  it("fires once on crossing, is re-armed only past the hysteresis, and is rate-limited", async () => {
    const rule = await createRule({
      unit_node_uuid: unit.nodeUuid("Output", "temperature"),
      max: 30,
      hysteresis: 2,
      min_interval_s: 60,
    });
    const t0 = clock;
    const kinds = async () =>
      (await eventsOf(world.bob.token)).alert_events
        .filter((e) => e.message.startsWith("greenhouse / temperature"))
        .map((e) => e.kind)
        .reverse();

    await publish("25");
    await publish("31");
    await publish("35");
    expect(await kinds()).toEqual(["threshold"]);
    const [fired] = (await eventsOf(world.bob.token)).alert_events;
    expect(fired?.message).toBe("greenhouse / temperature: 31 is above the maximum 30");

    // Inside, but not by more than the hysteresis: still firing.
    setTime(t0 + 61 * SECOND);
    await publish("29");
    await publish("31");
    expect(await kinds()).toEqual(["threshold"]);
    await publish("27.5");
    expect(await kinds()).toEqual(["threshold", "back_to_normal"]);
    expect((await current().api.get(`/alerts/${rule}`, world.bob.token)).body.state).toBe("normal");

    // Within a minute of the last message: a crossing that comes back is never sent...
    setTime(t0 + 70 * SECOND);
    await publish("40");
    await publish("20");
    alerts().evaluator.tick();
    // ...and one that lasts is sent when the interval ends, with the latest value.
    await publish("41");
    await publish("42");
    setTime(t0 + 120 * SECOND);
    alerts().evaluator.tick();
    await alerts().evaluator.drain();
    expect(await kinds()).toEqual(["threshold", "back_to_normal"]);
    setTime(t0 + 121 * SECOND);
    alerts().evaluator.tick();
    await alerts().evaluator.drain();
    expect(await kinds()).toEqual(["threshold", "back_to_normal", "threshold"]);
    const [held] = (await eventsOf(world.bob.token)).alert_events;
    expect(held?.message).toBe("greenhouse / temperature: 42 is above the maximum 30");
    clock = t0 + 121 * SECOND;
  });

  it("ignores values that are not numbers", async () => {
    const before = (await eventsOf(world.bob.token)).count;
    // The rule above fires again (it is firing now): bring it back first, past the interval.
    setTime(clock + 61 * SECOND);
    await publish("10");
    const normal = (await eventsOf(world.bob.token)).count;
    expect(normal).toBe(before + 1);
    setTime(clock + 61 * SECOND);
    for (const v of ["abc", "NaN", "Infinity", "1e999", "99 C", "0x50", "[99]", " "]) {
      await publish(v);
    }
    expect((await eventsOf(world.bob.token)).count).toBe(normal);
    await publish("99");
    expect((await eventsOf(world.bob.token)).count).toBe(normal + 1);
    clock += 61 * SECOND;
  });

  it("stops a rule whose variable its owner can no longer see", async () => {
    const output = unit.nodeUuid("Output", "output/pepeunit");
    const carols = await createRule({ unit_node_uuid: output, max: 100 }, carol.token);
    const bobs = await createRule({ unit_node_uuid: output, max: 100 });
    const hide = await inst.api.patch(
      `/unit_nodes/${output}`,
      { visibility: "Private" },
      world.bob.token,
    );
    expect(hide.status).toBe(200);
    await alerts().evaluator.drain();
    setTime(clock + SECOND);
    await publish("101", "output/pepeunit");
    const bobEvents = (await eventsOf(world.bob.token)).alert_events;
    expect(bobEvents[0]?.message).toBe(
      "greenhouse / output/pepeunit: 101 is above the maximum 100",
    );
    expect(
      (await eventsOf(carol.token)).alert_events.filter((e) => e.message.includes("output/")),
    ).toEqual([]);
    expect((await inst.api.get(`/alerts/${carols}`, carol.token)).body.state).toBe("normal");
    expect((await inst.api.get(`/alerts/${bobs}`, world.bob.token)).body.state).toBe("firing");
  });

  it("keeps events newest first with a read flag, and mails them when e-mail is on", async () => {
    const list = await eventsOf(world.bob.token);
    expect(list.count).toBe(list.alert_events.length);
    expect(list.unread).toBe(list.count);
    const [newest, second] = list.alert_events;
    if (!newest || !second) throw new Error("expected events");
    const marked = await inst.api.post(
      "/alerts/events/read",
      { uuids: [newest.uuid] },
      world.bob.token,
    );
    expect(marked.body).toEqual({ marked: 1 });
    const after = await eventsOf(world.bob.token);
    expect(after.unread).toBe(list.count - 1);
    expect(after.alert_events.map((e) => e.read).slice(0, 2)).toEqual([true, false]);
    // Carol cannot mark bob's events.
    expect(
      (await inst.api.post("/alerts/events/read", { uuids: [second.uuid] }, carol.token)).body,
    ).toEqual({ marked: 0 });
    expect((await inst.api.post("/alerts/events/read", {}, world.bob.token)).body).toEqual({
      marked: list.count - 1,
    });
    expect((await eventsOf(world.bob.token)).unread).toBe(0);

    expect(sink.messages).toEqual([]);
    const on = await inst.api.patch("/users/me/notifications", { email: true }, world.bob.token);
    expect(on.body).toEqual({ update_failed: true, unit_offline: true, email: true });
    expect((await inst.api.get("/users/me", world.bob.token)).body.notifications).toEqual({
      update_failed: true,
      unit_offline: true,
      email: true,
    });
    setTime(clock + 61 * SECOND);
    const announced: Array<{ userUuid: string; kind: string }> = [];
    const onCreated = (e: { userUuid: string; kind: string }) => announced.push(e);
    inst.deps.events.on("alert.created", onCreated);
    await publish("5", "output/pepeunit");
    inst.deps.events.off("alert.created", onCreated);
    // The live channel hears of it (a bell's unread count).
    expect(announced).toEqual([
      expect.objectContaining({ userUuid: world.bob.uuid, kind: "back_to_normal" }),
    ]);
    const mail = await sink.next();
    expect(mail).toContain("bob@example.test");
    expect(mail).toContain("greenhouse / output/pepeunit: back to normal, 5");
  });

  it("tells the owner of a failed update and of a unit offline past its grace period", async () => {
    const schema = { ...DEFAULT_SCHEMA_EXAMPLE, input_base_topic: ["env_update/pepeunit"] };
    const fixture = createFixtureRepo({
      "env_example.json": "{}",
      "schema_example.json": JSON.stringify(schema),
    });
    const repo = await createRepo(inst.api, carol.token, fixture);
    const deaf = await makeUnit(inst, carol.token, repo.uuid, { name: "deaf" });
    const update = await inst.api.post(`/units/${deaf.uuid}/update`, {}, carol.token);
    expect(update.status).toBe(422);
    await alerts().drain();
    const failed = (await eventsOf(carol.token)).alert_events.filter(
      (e) => e.kind === "update_failed",
    );
    expect(failed).toHaveLength(1);
    expect(failed[0]?.message).toMatch(/^deaf: update to [0-9a-f]{12} failed: /);

    // Offline: the default state interval is 60 s, so the grace period is 2 minutes.
    const client = await connectClient(inst.mqttUrl, deaf.token);
    await alerts().watch.sweep();
    await client.endAsync();
    await eventually(async () => !inst.broker.isOnline(deaf.uuid));
    const gone = clock;
    await alerts().watch.sweep();
    setTime(gone + 119 * SECOND);
    await alerts().watch.sweep();
    await alerts().drain();
    const offline = async () =>
      (await eventsOf(carol.token)).alert_events.filter((e) => e.kind === "unit_offline");
    expect(await offline()).toEqual([]);
    setTime(gone + 121 * SECOND);
    await alerts().watch.sweep();
    await alerts().watch.sweep();
    await alerts().drain();
    const sent = await offline();
    expect(sent).toHaveLength(1);
    expect(sent[0]?.message).toContain("deaf is offline");

    // Switched off: nothing more.
    const off = await inst.api.patch(
      "/users/me/notifications",
      { update_failed: false },
      carol.token,
    );
    expect(off.body.update_failed).toBe(false);
    expect((await inst.api.post(`/units/${deaf.uuid}/update`, {}, carol.token)).status).toBe(422);
    await alerts().drain();
    expect(
      (await eventsOf(carol.token)).alert_events.filter((e) => e.kind === "update_failed"),
    ).toHaveLength(1);
  });

  it("does not fire again after a restart for a condition already firing", async () => {
    const output = unit.nodeUuid("Output", "temperature");
    const rule = await createRule(
      { unit_node_uuid: output, min: 0, min_interval_s: 0 },
      carol.token,
    );
    setTime(clock + SECOND);
    await publish("-5");
    const count = (await eventsOf(carol.token)).count;
    expect((await inst.api.get(`/alerts/${rule}`, carol.token)).body.state).toBe("firing");

    await device.endAsync();
    await inst.stop();
    restarted = await startTestInstance({ PEPEUNIT_SMTP_URL: sink.url }, { shareWith: inst });
    device = await connectClient(restarted.mqttUrl, unit.token);
    setTime(clock + SECOND);
    await publish("-6");
    await publish("-7");
    expect((await eventsOf(carol.token)).count).toBe(count);
    await publish("3");
    const after = await eventsOf(carol.token);
    expect(after.count).toBe(count + 1);
    expect(after.alert_events[0]?.kind).toBe("back_to_normal");
  });
});
