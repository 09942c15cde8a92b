import { readFile } from "node:fs/promises";
import path from "node:path";
import { asc, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { unitLogs } from "../../src/db/schema.ts";
import type { SimulatedUnit } from "../../src/simulator/simulated-unit.ts";
import {
  eventually,
  linkNodes,
  makeUnit,
  makeWorld,
  type World,
  type WorldUnit,
} from "../broker/mqtt-helpers.ts";
import { startTestInstance, type TestInstance } from "../helpers/instance.ts";
import { nextEvent, startSimulatedUnit } from "./sim-helpers.ts";

// The unit simulator (src/simulator/) driven against a real instance: real firmware
// archives, real unit tokens, the real broker with its exact ACL, real edges.

describe("simulated units on a real instance", () => {
  let inst: TestInstance;
  let world: World;
  let a: WorldUnit;
  let b: WorldUnit;
  let simA: SimulatedUnit;
  let simB: SimulatedUnit;
  const sims: SimulatedUnit[] = [];

  const start = async (unit: WorldUnit, opts = {}) => {
    const sim = await startSimulatedUnit(inst, world.bob.token, unit.uuid, opts);
    sims.push(sim);
    return sim;
  };
  /** The command as the instance sends it; the commands feature may also send its own. */
  const command = (unit: WorldUnit, name: string, payload: object) =>
    inst.broker.publish(unit.base("input_base_topic", name), JSON.stringify(payload), { qos: 1 });

  beforeAll(async () => {
    inst = await startTestInstance();
    world = await makeWorld(inst);
    a = await makeUnit(inst, world.bob.token, world.repoUuid);
    b = await makeUnit(inst, world.bob.token, world.repoUuid);
    await linkNodes(
      inst,
      world.bob.token,
      a.nodeUuid("Output", "output/pepeunit"),
      b.nodeUuid("Input", "input/pepeunit"),
    );
    simA = await start(a);
    simB = await start(b);
  });
  afterAll(async () => {
    await Promise.all(sims.map((s) => s.stop()));
    await inst?.close();
  });

  it("subscribes to every input topic of its schema.json and reports its running version", async () => {
    const schema = JSON.parse(await readFile(path.join(simB.dir, "schema.json"), "utf8"));
    const expected = [
      ...Object.values<string[]>(schema.input_base_topic).flat(),
      ...Object.values<string[]>(schema.input_topic).flat(),
    ];
    // The linked output of A is among B's inputs (device-protocol §3).
    expect(expected).toContain(a.topic("Output", "output/pepeunit"));
    expect([...simB.subscriptions].sort()).toEqual([...new Set(expected)].sort());
    expect(simA.uuid).toBe(a.uuid);

    const seen = await eventually(async () => {
      const res = await inst.api.get(`/units/${a.uuid}`, world.bob.token);
      return res.body.current_commit ? res.body : null;
    });
    expect(seen.current_commit).toBe(seen.commit);
    expect(seen.current_commit).toBe(simA.commit);
    expect(seen.last_state).toMatchObject({ pu_commit_version: simA.commit });
    expect(typeof seen.last_state.mem_free).toBe("number");
    expect(Array.isArray(seen.last_state.statvfs)).toBe(true);
  });

  it("an output value reaches the linked unit's input through the instance", async () => {
    const got = nextEvent(simB, "input", (m) => m.payload.toString() === "21.5");
    await simA.publishOutput("output/pepeunit", "21.5");
    const [msg] = await got;
    expect(msg.name).toBe("input/pepeunit");
    expect(msg.topic).toBe(a.topic("Output", "output/pepeunit"));
    // Received inputs are logged like the device clients log them.
    expect(simB.recentLogs().some((l) => JSON.parse(l).text === "Input input/pepeunit: 21.5")).toBe(
      true,
    );
  });

  it("SchemaUpdate: after a new edge the unit subscribes to the new output and receives it", async () => {
    const c = await makeUnit(inst, world.bob.token, world.repoUuid);
    const simC = await start(c);
    const cTopic = c.topic("Output", "output/pepeunit");
    const updated = nextEvent(simA, "schema-updated", (e) => e.subscribed.includes(cTopic));
    await linkNodes(
      inst,
      world.bob.token,
      c.nodeUuid("Output", "output/pepeunit"),
      a.nodeUuid("Input", "input/pepeunit"),
    );
    await command(a, "schema_update/pepeunit", { COMMAND: "SchemaUpdate" });
    await updated;
    const schema = JSON.parse(await readFile(path.join(simA.dir, "schema.json"), "utf8"));
    expect(schema.input_topic["input/pepeunit"]).toContain(cTopic);

    const got = nextEvent(simA, "input", (m) => m.topic === cTopic);
    await simC.publishOutput("output/pepeunit", "from-c");
    const [msg] = await got;
    expect(msg.payload.toString()).toBe("from-c");
  });

  it("EnvUpdate: the unit downloads its env again, writes env.json and reconnects", async () => {
    // The instance may send EnvUpdate on its own after the edit; any EnvUpdate will do.
    const updated = nextEvent(simA, "env-updated");
    const edited = await inst.api.patch(
      `/units/env/${a.uuid}`,
      { PUC_WIFI_SSID: "lab-net" },
      world.bob.token,
    );
    expect(edited.status).toBe(200);
    await command(a, "env_update/pepeunit", { COMMAND: "EnvUpdate" });
    await updated;
    const env = JSON.parse(await readFile(path.join(simA.dir, "env.json"), "utf8"));
    expect(env.PUC_WIFI_SSID).toBe("lab-net");
    expect(simA.env.PUC_WIFI_SSID).toBe("lab-net");
    // Reconnected with the new env (perhaps twice: the instance's EnvUpdate and ours):
    // its values are still routed. Published until one arrives, as a sensor would.
    const got = nextEvent(simB, "input", (m) => m.payload.toString() === "after-env");
    let arrived = false;
    got.then(
      () => {
        arrived = true;
      },
      () => {},
    );
    while (!arrived) {
      await simA.publishOutput("output/pepeunit", "after-env");
      await Promise.race([got, new Promise((r) => setTimeout(r, 300))]);
    }
  });

  it("LogSync: the unit publishes its recent log lines and the instance stores them", async () => {
    const d = await makeUnit(inst, world.bob.token, world.repoUuid);
    // Nothing goes to log/pepeunit until LogSync asks for the buffer.
    const simD = await start(d, { publishLogs: false });
    const db = inst.deps.database.db;
    const rows = () => db.select().from(unitLogs).where(eq(unitLogs.unitUuid, d.uuid));
    await inst.broker.flush();
    expect(await rows()).toEqual([]);
    const synced = nextEvent(simD, "log-synced");
    await command(d, "log_sync/pepeunit", { COMMAND: "LogSync" });
    const [{ lines }] = await synced;
    expect(lines).toBeGreaterThan(0);
    const stored = await eventually(async () => {
      await inst.broker.flush();
      const r = await db
        .select()
        .from(unitLogs)
        .where(eq(unitLogs.unitUuid, d.uuid))
        .orderBy(asc(unitLogs.id));
      return r.length >= lines ? r : null;
    });
    expect(stored.map((r) => r.text)).toContain(`MQTT connected as ${d.uuid}`);
    expect(
      stored.every((r) => ["Debug", "Info", "Warning", "Error", "Critical"].includes(r.level)),
    ).toBe(true);
  });

  it("Update: a new commit is downloaded, unpacked over the unit's files and reported as running", async () => {
    const oldCommit = simB.commit;
    const newCommit = world.fixture.commit("v2", { "main.py": "print('v2')\n" });
    expect(newCommit).not.toBe(oldCommit);
    const synced = await inst.api.post(`/repos/${world.repoUuid}/sync`, undefined, world.bob.token);
    expect(synced.status).toBe(200);
    const updated = nextEvent(simB, "updated", (e) => e.to === newCommit, 25_000);

    // The OTA feature may already have moved the unit with the repo; pin it otherwise.
    const now = await inst.api.get(`/units/${b.uuid}`, world.bob.token);
    if (now.body.commit !== newCommit) {
      const pinned = await inst.api.patch(
        `/units/${b.uuid}`,
        { follow_repo: false, branch: "main", commit: newCommit },
        world.bob.token,
      );
      expect(pinned.status).toBe(200);
    }
    // The command API when this instance has it, else the instance's own publish.
    const sent = await inst.api.post(
      `/units/send_command_to_input_base_topic/${b.uuid}?command=Update`,
      undefined,
      world.bob.token,
    );
    if (sent.status !== 204) {
      expect(sent.status).toBe(404);
      await command(b, "update/pepeunit", { COMMAND: "Update", PU_COMMIT_VERSION: newCommit });
    }

    const [{ from, to }] = await updated;
    expect(from).toBe(oldCommit);
    expect(to).toBe(newCommit);
    expect(await readFile(path.join(simB.dir, "main.py"), "utf8")).toBe("print('v2')\n");
    const env = JSON.parse(await readFile(path.join(simB.dir, "env.json"), "utf8"));
    expect(env.PU_COMMIT_VERSION).toBe(newCommit);
    // The state it sent after restarting names the new commit (the OTA tracker may mark
    // current_commit a moment before the batched state write lands: wait for both).
    const reported = await eventually(async () => {
      const res = await inst.api.get(`/units/${b.uuid}`, world.bob.token);
      const body = res.body;
      return body.current_commit === newCommit && body.last_state?.pu_commit_version === newCommit
        ? body
        : null;
    }, 15_000);
    expect(reported.current_commit).toBe(newCommit);
    if (reported.update_status !== null) {
      await eventually(async () => {
        const res = await inst.api.get(`/units/${b.uuid}`, world.bob.token);
        return res.body.update_status === "Success";
      }, 15_000);
    }

    // A repeated Update for the running version changes nothing.
    const skipped = nextEvent(simB, "log", (e) => e.text.startsWith("No update needed"));
    await command(b, "update/pepeunit", { COMMAND: "Update", PU_COMMIT_VERSION: newCommit });
    await skipped;
    expect(simB.commit).toBe(newCommit);
  });
});
