import { connectUnits, type Target } from "../suites/mqtt.ts";
import { type BenchUnit, createBenchWorld, pool } from "./bench-world.ts";
import { type LeanClient, PublishEncoder } from "./lean-mqtt.ts";
import type { BenchServer } from "./server.ts";

// The routing cost benches' fleet: `pairs` units whose output/pepeunit is linked to
// another unit's input/pepeunit, all connected as devices (receivers subscribed to
// what their schema lists), ready for flow() in suites/mqtt.ts.

export type RoutedPairs = {
  target: Target;
  /** The world's user token (REST calls of the suite). */
  token: string;
  pairs: Array<{ client: LeanClient; encoder: PublishEncoder }>;
  receivers: LeanClient[];
  close(): void;
};

export async function routedPairs(
  server: BenchServer,
  login: string,
  pairs: number,
): Promise<RoutedPairs> {
  const world = await createBenchWorld(server.url, login);
  const units = await world.createUnits(2 * pairs);
  const senders = units.slice(0, pairs);
  const receivers = units.slice(pairs);
  const OUT = "output/pepeunit";
  await pool(senders, 8, (s, i) =>
    world.link(
      s.nodeUuid("Output", OUT),
      (receivers[i] as BenchUnit).nodeUuid("Input", "input/pepeunit"),
    ),
  );
  await pool(receivers, 8, (u) => world.refresh(u));
  const target: Target = { name: "pepeunit", port: server.mqttPort, pid: server.pid };
  const endpoints = (list: BenchUnit[]) =>
    list.map((unit) => ({ unit, topics: unit.inputTopics() }));
  const sendClients = await connectUnits(target, endpoints(senders));
  const recvClients = await connectUnits(target, endpoints(receivers));
  return {
    target,
    token: world.token,
    pairs: sendClients.map((client, i) => ({
      client,
      encoder: new PublishEncoder((senders[i] as BenchUnit).topic("Output", OUT), 20),
    })),
    receivers: recvClients,
    close() {
      for (const c of [...sendClients, ...recvClients]) c.close();
    },
  };
}
