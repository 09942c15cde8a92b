import { performance } from "node:perf_hooks";
import { type BenchUnit, call, createBenchWorld, pool } from "../lib/bench-world.ts";
import { CPU_PER_UNIT, WORK_UNIT } from "../lib/cpu-per-unit.ts";
import { connectUnit, type LeanClient, PublishEncoder } from "../lib/lean-mqtt.ts";
import { processStats } from "../lib/process-stats.ts";
import { record } from "../lib/report.ts";
import { startBenchServer } from "../lib/server.ts";
import { sleep } from "../lib/stats.ts";

// The cost of alert rules on the device plane: 1 000 routed variables (25 unit pairs,
// each of 40 outputs linked to the other unit's 40 inputs), numbers published at a
// fixed 5 000 msg/s, every one routed to its input unit. Server CPU-seconds per
// 100 000 routed messages, median of 3 runs, without rules and then with one rule on
// each routed output (limits the values stay inside: the steady state of a healthy
// fleet, every value evaluated and none changing a rule's state). Goal: ≤ 1.2×.

const PAIRS = 25;
const VARIABLES_PER_UNIT = 40;
const RATE = 5_000;
const RUNS = 3;
const PER = 100_000;

const names = (prefix: string) =>
  Array.from({ length: VARIABLES_PER_UNIT }, (_, i) => `${prefix}${String(i).padStart(2, "0")}`);
const OUTPUTS = names("v");
const INPUTS = names("in");
const FILES = {
  "env_example.json": JSON.stringify({ PUC_WIFI_SSID: "", PEPEUNIT_URL: "" }),
  "schema_example.json": JSON.stringify({
    input_base_topic: ["update/pepeunit", "env_update/pepeunit", "schema_update/pepeunit"],
    output_base_topic: ["state/pepeunit"],
    input_topic: INPUTS,
    output_topic: OUTPUTS,
  }),
  "main.py": "print('bench')\n",
};

type Sender = { client: LeanClient; encoder: PublishEncoder };

/** One run: RATE msg/s round-robin over the outputs until `total` are sent and routed. */
async function run(pid: number, senders: Sender[], receivers: LeanClient[], total: number) {
  let received = 0;
  for (const r of receivers) r.onMessage = () => void received++;
  const cpuBefore = processStats(pid).cpuSeconds;
  const start = performance.now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) * RATE) / 1000)) - sent;
    const perClient = new Map<LeanClient, Buffer[]>();
    for (let k = 0; k < due; k++) {
      const s = senders[(sent + k) % senders.length] as Sender;
      const buf = Buffer.allocUnsafe(s.encoder.packetBytes);
      // 7 bytes, 10000.5 … 99999.5: inside every rule's limits.
      buf.write(`${10_000 + ((sent + k) % 90_000)}.5`, s.encoder.writeInto(buf, 0), "latin1");
      const list = perClient.get(s.client) ?? [];
      list.push(buf);
      perClient.set(s.client, list);
    }
    for (const [client, bufs] of perClient) client.write(Buffer.concat(bufs));
    sent += Math.max(0, due);
    await sleep(1);
  }
  const until = performance.now() + 5000;
  while (received < sent && performance.now() < until) await sleep(5);
  const cpu = processStats(pid).cpuSeconds - cpuBefore;
  for (const r of receivers) r.onMessage = () => {};
  return { sent, received, cpuPer: (cpu * PER) / sent };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

export async function alertsSuite(
  database: { name: string; url?: string },
  seconds: number,
): Promise<void> {
  console.log(`\n# Alert rules on routed variables (${database.name})`);
  const server = await startBenchServer({
    databaseUrl: database.url,
    env: { PEPEUNIT_MQTT_MAX_MSG_PER_S: "10000000" },
  });
  const clients: LeanClient[] = [];
  try {
    const world = await createBenchWorld(server.url, "bench-alerts", FILES);
    const units = await world.createUnits(2 * PAIRS);
    const pairs: Array<[BenchUnit, BenchUnit]> = [];
    for (let i = 0; i < PAIRS; i++)
      pairs.push([units[2 * i] as BenchUnit, units[2 * i + 1] as BenchUnit]);
    const links = pairs.flatMap(([out, inp]) =>
      OUTPUTS.map((name, k) => ({
        output: out.nodeUuid("Output", name),
        input: inp.nodeUuid("Input", INPUTS[k] as string),
        topic: out.topic("Output", name),
        sender: out,
      })),
    );
    let t0 = performance.now();
    await pool(links, 8, (l) => world.link(l.output, l.input));
    await pool(
      pairs.map(([, inp]) => inp),
      8,
      world.refresh,
    );
    console.log(`  ${links.length} links in ${Math.round((performance.now() - t0) / 1000)} s`);
    const connect = (u: BenchUnit) => connectUnit(server.mqttPort, u, clients);
    const byUnit = new Map<string, LeanClient>();
    const receivers: LeanClient[] = [];
    for (const [out, inp] of pairs) {
      byUnit.set(out.uuid, await connect(out));
      const r = await connect(inp);
      for (const t of inp.inputTopics()) await r.subscribe(t);
      receivers.push(r);
    }
    const senders = links.map((l) => ({
      client: byUnit.get(l.sender.uuid) as LeanClient,
      encoder: new PublishEncoder(l.topic, 7),
    }));
    const total = Math.max(10, seconds) * RATE;

    const measure = async (label: string) => {
      await run(server.pid, senders, receivers, RATE * 2); // warm-up
      const results = [];
      for (let i = 0; i < RUNS; i++) {
        const r = await run(server.pid, senders, receivers, total);
        console.log(
          `  ${label}: ${r.sent} sent, ${r.received} routed, ${r.cpuPer.toFixed(2)} cpu-s / 100k`,
        );
        results.push(r);
      }
      return {
        cpuPer: median(results.map((r) => r.cpuPer)),
        lost: results.reduce((n, r) => n + r.sent - r.received, 0),
      };
    };

    const none = await measure("no rules");
    t0 = performance.now();
    await pool(links, 8, (l) =>
      call(
        world.url,
        "POST",
        "/alerts",
        { unit_node_uuid: l.output, min: 0, max: 1e6 },
        world.token,
      ),
    );
    console.log(`  ${links.length} rules in ${Math.round((performance.now() - t0) / 1000)} s`);
    const rules = await measure(`${links.length} rules`);
    record({
      suite: "alerts",
      case: `server cpu-s per ${PER} routed msgs @ ${RATE}/s, ${links.length} rules vs none (median of ${RUNS})`,
      database: database.name,
      metric: {
        "none cpu-s": Math.round(none.cpuPer * 100) / 100,
        "rules cpu-s": Math.round(rules.cpuPer * 100) / 100,
        "×": Math.round((rules.cpuPer / none.cpuPer) * 100) / 100,
        undelivered: none.lost + rules.lost,
        // With the rules: the production case (cpu-s per 100 000 = 10 µs per message).
        [CPU_PER_UNIT]: Number(((rules.cpuPer * 1e6) / PER).toPrecision(3)),
        [WORK_UNIT]: "routed message (rules on)",
      },
      goal: "≤ 1.2×",
      met: rules.cpuPer <= 1.2 * none.cpuPer,
    });
  } finally {
    for (const c of clients) c.close();
    await server.stop();
  }
}
