import net from "node:net";
import fc from "fast-check";
import mqttPacket, { type Packet } from "mqtt-packet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  clientPool,
  connectClient,
  DOMAIN,
  linkNodes,
  makeUnit,
  makeWorld,
  subscribeCode,
  type TestClient,
  type World,
  type WorldUnit,
} from "../broker/mqtt-helpers.ts";
import { createUser, startTestInstance, type TestInstance } from "../helpers/instance.ts";
import { createRepo } from "../helpers/repos.ts";

// Seeded fuzzing of the broker over TCP: valid MQTT 3.1.1 and 5 packets (built with
// mqtt-packet, the library Aedes and MQTT.js use) are mutated and sent by two principals
// that may touch nothing of bob's: alice's unit C and alice herself. Bob's Private units A
// (sender) and B (receiver, A's temperature is linked into it) are watched by B itself and
// by bob throughout. Nothing a fuzzer sends may reach a watcher, nothing of A's may reach a
// fuzzer, the process must not crash nor log an error, and afterwards the broker still
// routes a fresh legitimate message end to end.

const SEED = 20_261_130;
const CASES = 480;
const CONCURRENT = 24;
const MAX_PAYLOAD = 2048;
const MAX_LEVELS = 10;

type Version = 4 | 5;
type Mutation =
  | { kind: "none" }
  | { kind: "flip"; at: number[]; xor: number[] }
  | { kind: "truncate"; at: number }
  | { kind: "length"; value: number }
  | { kind: "huge" }
  | { kind: "insert"; at: number; bytes: number[] };
type Step = { packet: Packet; mutation: Mutation };
type FuzzCase = {
  as: "unit" | "user";
  version: Version;
  /** Omitted: the first packet arrives before any CONNECT. */
  connect: Step | null;
  /** Unmutated packets, sent once the CONNACK is back: they reach the ACL. */
  valid: Step[];
  /** Mutated (and a few valid) packets, sent after the valid ones were answered. */
  broken: Step[];
};

/** Applies a mutation to a packet's bytes (positions are taken modulo the length). */
function mutate(bytes: Buffer, m: Mutation): Buffer {
  const out = Buffer.from(bytes);
  switch (m.kind) {
    case "none":
      return out;
    case "flip":
      m.at.forEach((at, i) => {
        const pos = at % out.length;
        out[pos] = (out[pos] as number) ^ ((m.xor[i] ?? 1) || 1);
      });
      return out;
    case "truncate":
      return out.subarray(0, m.at % out.length);
    case "length": {
      // Rewrite the remaining length (1 byte when it fits) and keep the body as it was.
      let i = 1;
      while (i < out.length && i < 5 && ((out[i] as number) & 0x80) !== 0) i++;
      return Buffer.concat([
        out.subarray(0, 1),
        Buffer.from([m.value & 0x7f]),
        out.subarray(i + 1),
      ]);
    }
    case "huge":
      // The largest remaining length MQTT can express (256 MB), with a 40-byte body.
      return Buffer.concat([
        out.subarray(0, 1),
        Buffer.from([0xff, 0xff, 0xff, 0x7f]),
        out.subarray(2, 42),
      ]);
    case "insert": {
      const at = m.at % (out.length + 1);
      return Buffer.concat([out.subarray(0, at), Buffer.from(m.bytes), out.subarray(at)]);
    }
  }
}

describe("MQTT packet fuzzing", () => {
  let inst: TestInstance;
  let world: World;
  let a: WorldUnit;
  let b: WorldUnit;
  let c: WorldUnit;
  let alice: { uuid: string; token: string };
  let unitWatcher: TestClient;
  let userWatcher: TestClient;
  let sender: TestClient;
  const pool = clientPool(() => inst.mqttUrl);
  const logged: string[] = [];
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown) => uncaught.push(err);
  /** Topics of bob's that neither alice nor her unit may subscribe or publish to. */
  let forbidden: string[];

  beforeAll(async () => {
    process.on("uncaughtException", onUncaught);
    process.on("unhandledRejection", onUncaught);
    inst = await startTestInstance({
      PEPEUNIT_MQTT_MAX_PAYLOAD: String(MAX_PAYLOAD),
      PEPEUNIT_MQTT_MAX_TOPIC_LEVELS: String(MAX_LEVELS),
      // High enough that the fuzzer reaches the parser and the ACL rather than the rate limit.
      PEPEUNIT_MQTT_MAX_MSG_PER_S: "5000",
    });
    // Every error or fatal line of the instance is a finding (the logger is shared by reference).
    const log = inst.deps.log as unknown as Record<string, (...args: unknown[]) => void>;
    for (const level of ["error", "fatal"]) {
      log[level] = (...args: unknown[]) => logged.push(`${level}: ${JSON.stringify(args)}`);
    }
    world = await makeWorld(inst);
    alice = await createUser(inst.api, "alice");
    a = await makeUnit(inst, world.bob.token, world.repoUuid, { visibility: "Private" });
    b = await makeUnit(inst, world.bob.token, world.repoUuid, { visibility: "Private" });
    const aliceRepo = await createRepo(inst.api, alice.token, world.fixture);
    c = await makeUnit(inst, alice.token, aliceRepo.uuid);
    await linkNodes(
      inst,
      world.bob.token,
      a.nodeUuid("Output", "temperature"),
      b.nodeUuid("Input", "relay"),
    );
    forbidden = [
      a.topic("Output", "temperature"),
      a.topic("Output", "output/pepeunit"),
      b.topic("Input", "relay"),
      b.topic("Input", "input/pepeunit"),
      b.base("input_base_topic", "update/pepeunit"),
      b.base("output_base_topic", "state/pepeunit"),
    ];
    unitWatcher = await pool.client(b.token, b.uuid);
    for (const t of [
      a.topic("Output", "temperature"),
      b.topic("Input", "relay"),
      b.topic("Input", "input/pepeunit"),
    ]) {
      expect(await subscribeCode(unitWatcher, t)).toBe(1);
    }
    userWatcher = await pool.client(world.bob.token);
    for (const t of forbidden.slice(0, 4)) expect(await subscribeCode(userWatcher, t)).toBe(1);
    sender = await pool.client(a.token, a.uuid);
  });
  afterAll(async () => {
    await pool.closeAll();
    await inst?.close();
    process.off("uncaughtException", onUncaught);
    process.off("unhandledRejection", onUncaught);
  });

  function arbitraries() {
    const deep = "l/".repeat(300);
    const topic = fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom(...forbidden) },
      fc.constantFrom(
        "#",
        "+",
        "+/+",
        `${DOMAIN}/#`,
        `${DOMAIN}/+`,
        `${DOMAIN}/+/pepeunit`,
        `${DOMAIN}/input_base_topic/#`,
        "$SYS/#",
        "$pepeunit/dropped",
        `${a.topic("Output", "temperature")}/#`,
        `${DOMAIN}/${a.nodeUuid("Output", "temperature")}\u0000`,
        `${DOMAIN}/\u00e9\u{1F600}/pepeunit`,
        deep,
        `${deep}#`,
        c.topic("Output", "temperature"),
        c.topic("Input", "relay"),
      ),
      fc.string({ unit: "binary", maxLength: 80 }),
      fc
        .array(fc.constantFrom("+", "#", "a", DOMAIN, "\u0000", "\u{10FFFF}", ""), {
          maxLength: 14,
        })
        .map((l) => l.join("/")),
    );
    const payload = fc.oneof(
      { weight: 10, arbitrary: fc.uint8Array({ maxLength: 64 }).map((u) => Buffer.from(u)) },
      {
        weight: 2,
        arbitrary: fc.constantFrom(MAX_PAYLOAD, MAX_PAYLOAD + 1).map((n) => Buffer.alloc(n, 0x61)),
      },
    );
    const messageId = fc.integer({ min: 1, max: 65_535 });
    const qos = fc.constantFrom(0, 1, 2) as fc.Arbitrary<0 | 1 | 2>;
    const publish = fc.record({
      cmd: fc.constant("publish" as const),
      topic,
      payload,
      qos,
      messageId,
      retain: fc.boolean(),
      dup: fc.boolean(),
    });
    const subscribe = fc.record({
      cmd: fc.constant("subscribe" as const),
      messageId,
      subscriptions: fc.array(fc.record({ topic, qos }), { minLength: 1, maxLength: 3 }),
    });
    const unsubscribe = fc.record({
      cmd: fc.constant("unsubscribe" as const),
      messageId,
      unsubscriptions: fc.array(topic, { minLength: 1, maxLength: 3 }),
    });
    const ping = fc.constant<Packet>({ cmd: "pingreq" });
    // QoS 2 flows cut midway: a PUBREL / PUBREC / PUBCOMP with no flow behind it, or none after a QoS 2 PUBLISH.
    const qos2 = fc
      .record({ cmd: fc.constantFrom("pubrel", "pubrec", "pubcomp", "puback"), messageId })
      .map((p) => p as Packet);
    const packet = fc.oneof(
      { weight: 4, arbitrary: publish as fc.Arbitrary<Packet> },
      { weight: 4, arbitrary: subscribe as fc.Arbitrary<Packet> },
      { weight: 1, arbitrary: unsubscribe as fc.Arbitrary<Packet> },
      { weight: 1, arbitrary: ping },
      { weight: 1, arbitrary: qos2 },
    );
    // DISCONNECT ends the session: only among the broken packets, where little follows.
    const anyPacket = fc.oneof(
      { weight: 9, arbitrary: packet },
      { weight: 1, arbitrary: fc.constant<Packet>({ cmd: "disconnect" }) },
    );
    const mutation: fc.Arbitrary<Mutation> = fc.oneof(
      { weight: 5, arbitrary: fc.constant({ kind: "none" as const }) },
      {
        weight: 2,
        arbitrary: fc.record({
          kind: fc.constant("flip" as const),
          at: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }),
          xor: fc.array(fc.integer({ min: 1, max: 255 }), { minLength: 4, maxLength: 4 }),
        }),
      },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }) },
      {
        weight: 1,
        arbitrary: fc.record({ kind: fc.constant("length" as const), value: fc.nat(127) }),
      },
      { weight: 1, arbitrary: fc.constant({ kind: "huge" as const }) },
      {
        weight: 1,
        arbitrary: fc.record({
          kind: fc.constant("insert" as const),
          at: fc.nat(),
          bytes: fc.array(fc.nat(255), { minLength: 1, maxLength: 8 }),
        }),
      },
    );
    const step = fc.record({ packet: anyPacket, mutation });
    const validStep = packet.map((p): Step => ({ packet: p, mutation: { kind: "none" } }));
    return fc
      .record({
        as: fc.constantFrom("unit" as const, "user" as const),
        version: fc.constantFrom(4 as const, 5 as const),
        withConnect: fc.nat(9),
        connectMutation: fc.oneof(
          { weight: 6, arbitrary: fc.constant({ kind: "none" as const }) },
          { weight: 1, arbitrary: mutation },
        ),
        keepalive: fc.constantFrom(0, 1, 60, 65_535),
        // 0: the principal's own uuid; others are shared by a few cases (takeovers happen).
        clientSlot: fc.nat(6),
        valid: fc.array(validStep, { minLength: 1, maxLength: 7 }),
        broken: fc.array(step, { maxLength: 4 }),
        secondConnect: fc.boolean(),
      })
      .map((r): FuzzCase => {
        const connect: Packet = {
          cmd: "connect",
          protocolId: "MQTT",
          protocolVersion: r.version,
          clean: true,
          clientId:
            r.clientSlot === 0
              ? r.as === "unit"
                ? c.uuid
                : alice.uuid
              : `fuzz-${r.as}-${r.clientSlot}`,
          keepalive: r.keepalive,
          username: r.as === "unit" ? c.token : alice.token,
          password: Buffer.alloc(0),
        };
        const again: Step = { packet: connect, mutation: { kind: "none" } };
        return {
          as: r.as,
          version: r.version,
          // One case in ten sends its first packets before any CONNECT.
          connect: r.withConnect === 0 ? null : { packet: connect, mutation: r.connectMutation },
          valid: r.secondConnect ? [...r.valid, again] : r.valid,
          broken: r.broken,
        };
      });
  }

  /** The bytes of a step; a packet the generator refuses (e.g. a NUL in a v5 topic) is sent mutated anyway. */
  function bytesOf(step: Step, version: Version): Buffer {
    let raw: Buffer;
    try {
      raw = mqttPacket.generate(step.packet, { protocolVersion: version });
    } catch {
      raw = Buffer.from([0x30, 0x02, 0x00, 0x00]);
    }
    return mutate(raw, step.mutation);
  }

  /**
   * Sends a case over a raw TCP connection: the CONNECT, then (once answered) the valid
   * packets, then the broken ones. Resolves with what the broker sent back; the socket
   * stays open for the probe.
   */
  async function runCase(fuzz: FuzzCase) {
    const socket = net.connect(inst.broker.tcpPort, "127.0.0.1");
    socket.on("error", () => {});
    const chunks: Buffer[] = [];
    socket.on("data", (d) => chunks.push(d));
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    await new Promise<void>((resolve) => socket.once("connect", resolve).once("close", resolve));
    const received = () => Buffer.concat(chunks);
    /** Waits (briefly) until the broker answered everything sent so far, or closed. */
    const answered = async (until: (got: Buffer) => boolean) => {
      for (let waited = 0; waited < 400 && !socket.destroyed; waited += 10) {
        if (until(received())) return;
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    const send = (steps: Step[]) => {
      for (const s of steps) if (!socket.destroyed) socket.write(bytesOf(s, fuzz.version));
    };
    // Aedes handles a client's packets in order: once the PINGRESP of a trailing PINGREQ
    // is back, everything before it was decided. A stream the mutations left mid-packet
    // never answers; it is given a moment, then probed as it is.
    const pingresp = Buffer.from([0xd0, 0x00]);
    const sendAndPing = async (steps: Step[]) => {
      send([...steps, { packet: { cmd: "pingreq" }, mutation: { kind: "none" } }]);
      await answered((got) => got.subarray(-2).equals(pingresp));
    };
    if (fuzz.connect) {
      send([fuzz.connect]);
      await answered((got) => got.length >= 4);
    }
    await sendAndPing(fuzz.valid);
    await sendAndPing(fuzz.broken);
    const steps = [...(fuzz.connect ? [fuzz.connect] : []), ...fuzz.valid, ...fuzz.broken];
    return { socket, closed, received, steps };
  }

  /** SUBACKs of a connection whose CONNECT and SUBSCRIBE went out unmutated: refused filters must be refused. */
  function checkSubacks(fuzz: FuzzCase, received: Buffer, sent: Step[]) {
    if (fuzz.connect?.mutation.kind !== "none") return;
    const topicsById = new Map<number, string[] | null>();
    for (const s of sent) {
      if (s.packet.cmd !== "subscribe") continue;
      const id = s.packet.messageId ?? 0;
      // An id used twice (or by a mutated packet) cannot be matched to its SUBACK.
      const clean = s.mutation.kind === "none" && !topicsById.has(id);
      topicsById.set(id, clean ? s.packet.subscriptions.map((x) => x.topic) : null);
    }
    const parser = mqttPacket.parser({ protocolVersion: fuzz.version });
    parser.on("error", () => {});
    parser.on("packet", (p) => {
      if (p.cmd !== "suback") return;
      const topics = topicsById.get(p.messageId ?? 0);
      if (!topics || topics.length !== p.granted.length) return;
      p.granted.forEach((g, i) => {
        // Aedes and the translator write plain numbers; anything else counts as a grant.
        const code = typeof g === "number" ? g : 0;
        const topic = topics[i] as string;
        if (forbidden.includes(topic) || topic.includes("#") || topic.includes("+")) {
          expect(code, `granted ${topic} to ${fuzz.as}`).toBeGreaterThanOrEqual(0x80);
        }
      });
    });
    parser.parse(received);
  }

  it(`survives ${CASES} seeded cases of mutated packets without crashing, logging an error or leaking`, async () => {
    const cases = fc.sample(arbitraries(), { seed: SEED, numRuns: CASES });
    let packets = 0;
    for (let i = 0; i < cases.length; i += CONCURRENT) {
      const batch = cases.slice(i, i + CONCURRENT);
      const runs = await Promise.all(batch.map(runCase));
      packets += runs.reduce((n, r) => n + r.steps.length, 0);
      // A probe from A after the batch: it must reach both watchers and no fuzzing connection.
      const probe = `probe-${i}`;
      await sender.publishAsync(a.topic("Output", "temperature"), probe, { qos: 1 });
      await unitWatcher.waitFor((m) => m.payload.toString() === probe);
      await userWatcher.waitFor((m) => m.payload.toString() === probe);
      for (const [j, run] of runs.entries()) {
        run.socket.destroy();
        await run.closed;
        const got = run.received();
        expect(got.includes(probe), `case ${i + j} received A's value`).toBe(false);
        checkSubacks(batch[j] as FuzzCase, got, run.steps);
      }
    }
    expect(packets).toBeGreaterThan(2000);
    // The watchers got the probes and nothing a fuzzer published.
    for (const w of [unitWatcher, userWatcher]) {
      const foreign = w.received.filter((m) => !m.payload.toString().startsWith("probe-"));
      expect(foreign.map((m) => m.topic)).toEqual([]);
    }
    expect(uncaught).toEqual([]);
    expect(logged).toEqual([]);
  }, 180_000);

  it("still takes fresh legitimate clients (3.1.1 and 5) and routes their messages end to end", async () => {
    const fresh = await pool.client(a.token, a.uuid);
    await fresh.publishAsync(a.topic("Output", "temperature"), "after-the-storm", { qos: 1 });
    await unitWatcher.waitFor((m) => m.payload.toString() === "after-the-storm");
    const fresh5 = await connectClient(inst.mqttUrl, a.token, { protocolVersion: 5 });
    await fresh5.publishAsync(a.topic("Output", "temperature"), "v5-after-the-storm", { qos: 1 });
    await userWatcher.waitFor((m) => m.payload.toString() === "v5-after-the-storm");
    await fresh5.endAsync(true);
    expect(uncaught).toEqual([]);
    expect(logged).toEqual([]);
  });
});
