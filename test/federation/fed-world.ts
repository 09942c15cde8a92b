import {
  connectClient,
  makeUnit,
  makeWorld,
  type TestClient,
  type World,
  type WorldUnit,
} from "../broker/mqtt-helpers.ts";
import { type FedInstance, startFedInstance } from "../helpers/federation.ts";
import type { TestInstance } from "../helpers/instance.ts";

// Two (or three) federated instances with users, a repo and units, and MQTT clients
// acting as the units' devices.

export type Side = {
  fi: FedInstance;
  world: World;
  /** The broker helpers' TestInstance shape (they use api and mqttUrl only). */
  t: TestInstance;
  unit(overrides?: object): Promise<FedUnit>;
};

export type FedUnit = WorldUnit & {
  /** The physical topic of a variable on its home instance. */
  homeTopic(type: "Input" | "Output", name: string): string;
};

export async function startSide(env: Record<string, string> = {}): Promise<Side> {
  const fi = await startFedInstance(env);
  const t = {
    get api() {
      return fi.api;
    },
    get mqttUrl() {
      return fi.mqttUrl;
    },
  } as unknown as TestInstance;
  const world = await makeWorld(t);
  return {
    fi,
    world,
    t,
    async unit(overrides = {}) {
      const u = await makeUnit(t, world.bob.token, world.repoUuid, overrides);
      return {
        ...u,
        homeTopic: (type, name) => {
          const node = u.json.unit_nodes.find(
            (n: { type: string; topic_name: string }) => n.type === type && n.topic_name === name,
          );
          return name.endsWith("/pepeunit")
            ? `${fi.domain}/${node.uuid}/pepeunit`
            : `${fi.domain}/${node.uuid}`;
        },
      };
    },
  };
}

export async function device(side: Side, unit: WorldUnit): Promise<TestClient> {
  return connectClient(side.fi.mqttUrl, unit.token, { clientId: `${unit.uuid}-${Math.random()}` });
}

export async function eventually<T>(
  probe: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** POST /unit_node_edges with a remote output; the pending remote edge. */
export async function linkRemote(side: Side, output: string, inputUuid: string) {
  return side.fi.api.post(
    "/unit_node_edges",
    { output, input_uuid: inputUuid },
    side.world.bob.token,
  );
}

export async function remoteEdge(side: Side, uuid: string) {
  const res = await side.fi.api.get("/federation/remote_edges", side.world.bob.token);
  return (
    res.body.remote_edges as Array<{
      uuid: string;
      status: string;
      reason: string | null;
      remote_topic: string | null;
    }>
  ).find((e) => e.uuid === uuid);
}

export async function schemaInputs(side: Side, unit: WorldUnit, name: string): Promise<string[]> {
  const res = await side.fi.api.get(`/units/get_current_schema/${unit.uuid}`, unit.token);
  return res.body.input_topic[name] ?? [];
}

/** Two instances: a unit on B (the sensor) and one on A (the relay); close() also ends `open` devices. */
export async function startPair() {
  const [a, b] = await Promise.all([startSide(), startSide()]);
  const [sensor, relay] = await Promise.all([b.unit(), a.unit()]);
  const open: TestClient[] = [];
  return {
    a,
    b,
    sensor,
    relay,
    open,
    async close() {
      await Promise.all(open.map((c) => c.endAsync(true)));
      await Promise.all([a.fi.close(), b.fi.close()]);
    },
  };
}
