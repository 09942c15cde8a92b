import { asc, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { unitLogs, unitNodes, units } from "../../src/db/schema.ts";
import { startTestInstance, type TestInstance } from "../helpers/instance.ts";
import {
  connectClient,
  eventually,
  makeUnit,
  makeWorld,
  type TestClient,
  type World,
  type WorldUnit,
} from "./mqtt-helpers.ts";

const SHA = "0123456789abcdef0123456789abcdef01234567";

describe("MQTT ingest: state, logs and variable values", () => {
  let inst: TestInstance;
  let world: World;
  let unit: WorldUnit;
  let device: TestClient;

  const logsOf = (uuid: string) =>
    inst.deps.database.db
      .select()
      .from(unitLogs)
      .where(eq(unitLogs.unitUuid, uuid))
      .orderBy(asc(unitLogs.id));

  beforeAll(async () => {
    inst = await startTestInstance({ PEPEUNIT_LOG_RETENTION_H: "1" });
    world = await makeWorld(inst);
    unit = await makeUnit(inst, world.bob.token, world.repoUuid);
    device = await connectClient(inst.mqttUrl, unit.token, { clientId: unit.uuid });
  });
  afterAll(async () => {
    await device?.endAsync(true);
    await inst?.close();
  });

  it("stores a state message's known keys, the running commit and the time it was seen", async () => {
    const state = {
      millis: 123456,
      mem_free: 40000,
      mem_alloc: 20000,
      freq: 240000000,
      rssi: -61,
      statvfs: [4096, 4096, 512, 300, 300, 0, 0, 0, 0, 255],
      ifconfig: ["192.168.1.7", "255.255.255.0", "192.168.1.1", "8.8.8.8"],
      pu_commit_version: SHA,
      // Unknown keys are ignored, wrong types dropped.
      custom_blob: "x".repeat(100),
      mem_free_str: "12",
    };
    await device.publishAsync(
      unit.base("output_base_topic", "state/pepeunit"),
      JSON.stringify({ ...state, freq: "fast" }),
      { qos: 1 },
    );
    const got = await eventually(async () => {
      const res = await inst.api.get(`/units/${unit.uuid}`, world.bob.token);
      return res.body.current_commit ? res.body : null;
    });
    expect(got.current_commit).toBe(SHA);
    expect(got.last_state).toEqual({
      millis: 123456,
      mem_free: 40000,
      mem_alloc: 20000,
      rssi: -61,
      statvfs: state.statvfs,
      ifconfig: state.ifconfig,
      pu_commit_version: SHA,
    });
    const seen = new Date(got.last_seen_datetime).getTime();
    expect(Math.abs(Date.now() - seen)).toBeLessThan(60_000);
  });

  it("survives state payloads that are not what devices should send", async () => {
    const topic = unit.base("output_base_topic", "state/pepeunit");
    for (const bad of ["not json", "[1,2]", "null", '{"millis":', '{"pu_commit_version":42}']) {
      await device.publishAsync(topic, bad, { qos: 1 });
    }
    await device.publishAsync(topic, JSON.stringify({ millis: 7 }), { qos: 1 });
    const got = await eventually(async () => {
      const res = await inst.api.get(`/units/${unit.uuid}`, world.bob.token);
      return res.body.last_state?.millis === 7 ? res.body : null;
    });
    expect(device.connected).toBe(true);
    // A state without pu_commit_version keeps the last known running commit.
    expect(got.current_commit).toBe(SHA);
  });

  it("stores log entries: one object or an array, any level case, three time formats", async () => {
    const topic = unit.base("output_base_topic", "log/pepeunit");
    const t1 = new Date(Date.now() - 10 * 60_000);
    const t2 = new Date(Date.now() - 5 * 60_000);
    const t3 = new Date(Date.now() - 2 * 60_000);
    await device.publishAsync(
      topic,
      JSON.stringify({ level: "info", text: "booted", create_datetime: t1.toISOString() }),
      { qos: 1 },
    );
    await device.publishAsync(
      topic,
      JSON.stringify([
        {
          level: "WARNING",
          text: "low memory",
          create_datetime: t2.toISOString().replace("Z", "+00:00"),
        },
        { level: "Critical", text: "sensor lost", create_datetime: t3.getTime(), extra: 1 },
        { level: "Debug", text: "no time" },
        { level: "Verbose", text: "unknown level: skipped" },
        { level: "Error" },
        "not an object",
        // A device clock at its 2000 epoch: stored with the time of arrival instead.
        { level: "Error", text: "bad clock", create_datetime: "2000-01-01T00:00:05Z" },
      ]),
      { qos: 1 },
    );
    const rows = await eventually(async () => {
      const r = await logsOf(unit.uuid);
      return r.length >= 5 ? r : null;
    });
    expect(rows.map((r) => [r.level, r.text])).toEqual([
      ["Info", "booted"],
      ["Warning", "low memory"],
      ["Critical", "sensor lost"],
      ["Debug", "no time"],
      ["Error", "bad clock"],
    ]);
    expect(rows[0]?.createdAt.getTime()).toBe(t1.getTime());
    expect(rows[1]?.createdAt.getTime()).toBe(t2.getTime());
    expect(rows[2]?.createdAt.getTime()).toBe(t3.getTime());
    expect(Math.abs(Date.now() - (rows[4]?.createdAt.getTime() ?? 0))).toBeLessThan(60_000);
  });

  it("prunes logs older than the retention", async () => {
    const db = inst.deps.database.db;
    await db.insert(unitLogs).values([
      {
        unitUuid: unit.uuid,
        level: "Info",
        text: "ancient",
        createdAt: new Date(Date.now() - 2 * 3600_000),
      },
      {
        unitUuid: unit.uuid,
        level: "Info",
        text: "recent",
        createdAt: new Date(Date.now() - 30 * 60_000),
      },
    ]);
    expect(await inst.broker.pruneLogs()).toBe(1);
    const texts = (await logsOf(unit.uuid)).map((r) => r.text);
    expect(texts).toContain("recent");
    expect(texts).not.toContain("ancient");
  });

  it("keeps the latest value of a variable from a burst of messages", async () => {
    const topic = unit.topic("Output", "temperature");
    for (let i = 1; i <= 50; i++) device.publish(topic, `t=${i}`, { qos: 0 });
    await device.publishAsync(topic, "t=final", { qos: 1 });
    const node = await eventually(async () => {
      const res = await inst.api.get(`/units/${unit.uuid}`, world.bob.token);
      const n = res.body.unit_nodes.find((x: { topic: string }) => x.topic === topic);
      return n?.last_value === "t=final" ? n : null;
    });
    expect(new Date(node.last_value_datetime).getTime()).toBeGreaterThan(Date.now() - 60_000);
  });

  it("stores a value the instance publishes into an input (set-input path)", async () => {
    const topic = unit.topic("Input", "relay");
    await inst.broker.publish(topic, "on", { qos: 1 });
    await eventually(async () => {
      const [row] = await inst.deps.database.db
        .select({ v: unitNodes.lastValue })
        .from(unitNodes)
        .where(eq(unitNodes.uuid, unit.nodeUuid("Input", "relay")));
      return row?.v === "on";
    });
  });

  it("loses nothing acknowledged when the broker stops cleanly", async () => {
    const other = await makeUnit(inst, world.bob.token, world.repoUuid);
    const client = await connectClient(inst.mqttUrl, other.token, { clientId: other.uuid });
    await client.publishAsync(
      other.base("output_base_topic", "state/pepeunit"),
      JSON.stringify({ millis: 99, pu_commit_version: SHA }),
      { qos: 1 },
    );
    await client.publishAsync(
      other.base("output_base_topic", "log/pepeunit"),
      JSON.stringify({ level: "Info", text: "last words" }),
      { qos: 1 },
    );
    await client.publishAsync(other.topic("Output", "temperature"), "21.5", { qos: 1 });
    await inst.broker.close();
    const db = inst.deps.database.db;
    const [row] = await db.select().from(units).where(eq(units.uuid, other.uuid));
    expect(row?.lastState).toEqual({ millis: 99, pu_commit_version: SHA });
    expect(row?.currentCommit).toBe(SHA);
    expect((await logsOf(other.uuid)).map((r) => r.text)).toEqual(["last words"]);
    const [node] = await db
      .select()
      .from(unitNodes)
      .where(eq(unitNodes.uuid, other.nodeUuid("Output", "temperature")));
    expect(node?.lastValue).toBe("21.5");
  });
});
