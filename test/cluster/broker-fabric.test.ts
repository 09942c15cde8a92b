import { randomBytes } from "node:crypto";
import net from "node:net";
import path from "node:path";
import { Redis } from "ioredis";
import mqttPacket, { type Packet } from "mqtt-packet";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  clientPool,
  eventually,
  linkNodes,
  makeUnit,
  makeWorld,
  refusedCode,
  subscribeCode,
  type World,
  type WorldUnit,
} from "../broker/mqtt-helpers.ts";
import { testDbKind } from "../helpers/database.ts";
import { createUser, startTestInstance, type TestInstance } from "../helpers/instance.ts";
import { createRepo } from "../helpers/repos.ts";

// Two broker processes of one cluster, in this test process: one PostgreSQL database,
// one Redis (a random namespace per run). The lead's multi-process tests kill real
// processes; here "death" is a stop of the other instance after the device's socket
// was cut, with a QoS 1 message still unacknowledged.

const REDIS_URL = process.env.PEPEUNIT_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const REFUSED = 0x80;
const IDENTIFIER_REJECTED = 2;

/** A hand-driven MQTT 3.1.1 client: acknowledges nothing on its own. */
async function rawClient(port: number) {
  const socket = net.connect(port, "127.0.0.1");
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  socket.on("error", () => {});
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const packets: Packet[] = [];
  socket.on("data", (chunk) => parser.parse(chunk));
  parser.on("packet", (p) => packets.push(p));
  return {
    packets,
    send: (p: Packet) => socket.write(mqttPacket.generate(p)),
    async next(cmd: Packet["cmd"], pred: (p: Packet) => boolean = () => true): Promise<Packet> {
      return eventually(async () => {
        const i = packets.findIndex((p) => p.cmd === cmd && pred(p));
        return i >= 0 ? packets.splice(i, 1)[0] : undefined;
      }, 8000);
    },
    /** The connection is cut, no DISCONNECT (a device losing power). */
    kill: () => socket.destroy(),
  };
}

const pg = testDbKind() === "postgres";

describe.skipIf(!pg)(
  "MQTT across the processes of a cluster (needs PEPEUNIT_TEST_DB=postgres: a cluster shares one PostgreSQL, not the embedded PGlite)",
  () => {
    let p1: TestInstance;
    let p2: TestInstance;
    let p2Closed = false;
    let world: World;
    let a: WorldUnit;
    let b: WorldUnit;
    let c: WorldUnit;
    const on1 = clientPool(() => p1.mqttUrl);
    const on2 = clientPool(() => p2.mqttUrl);
    const SECRET_KEY = randomBytes(32).toString("base64");
    const ENCRYPT_KEY = randomBytes(32).toString("base64");
    const namespace = `pepeunit-test-${randomBytes(6).toString("hex")}`;
    const clusterEnv = (node: string) => ({
      // Validation only: the test helper hands both instances the same database.
      DATABASE_URL: process.env.DATABASE_URL_TEST ?? "postgres://postgres@127.0.0.1:5432/test",
      PEPEUNIT_CLUSTER_REDIS_URL: REDIS_URL,
      PEPEUNIT_CLUSTER_NAMESPACE: namespace,
      PEPEUNIT_NODE_NAME: node,
      // A cluster's processes share their keys (cluster mode refuses generated ones).
      PEPEUNIT_SECRET_KEY: SECRET_KEY,
      PEPEUNIT_ENCRYPT_KEY: ENCRYPT_KEY,
    });

    beforeAll(async () => {
      p1 = await startTestInstance(clusterEnv("p1"));
      world = await makeWorld(p1);
      const alice = await createUser(p1.api, "alice");
      a = await makeUnit(p1, world.bob.token, world.repoUuid);
      b = await makeUnit(p1, world.bob.token, world.repoUuid);
      const aliceRepo = await createRepo(p1.api, alice.token, world.fixture);
      c = await makeUnit(p1, alice.token, aliceRepo.uuid);
      await linkNodes(
        p1,
        world.bob.token,
        a.nodeUuid("Output", "output/pepeunit"),
        b.nodeUuid("Input", "input/pepeunit"),
      );
      // The processes of a cluster share the clones too (unit templates are read from them).
      p2 = await startTestInstance(
        { ...clusterEnv("p2"), PEPEUNIT_REPOSITORIES_DIR: path.join(p1.dir, "repositories") },
        { shareWith: p1 },
      );
    }, 60_000);
    afterEach(async () => {
      await on1.closeAll();
      await on2.closeAll();
    });
    afterAll(async () => {
      if (!p2Closed) await p2?.close();
      await p1?.close();
      // This run's keys (sessions, presence, claims).
      const redis = new Redis(REDIS_URL);
      try {
        const keys: string[] = [];
        for await (const batch of redis.scanStream({ match: `${namespace}:*`, count: 500 }))
          keys.push(...(batch as string[]));
        if (keys.length) await redis.del(...keys);
      } finally {
        redis.disconnect();
      }
    });

    it("routes a device's publish on one process to a subscriber on the other, with the same ACL", async () => {
      const aTopic = a.topic("Output", "output/pepeunit");
      const bOn1 = await on1.client(b.token, b.uuid);
      expect(await subscribeCode(bOn1, aTopic)).toBe(1);
      // Alice's unit is linked to nothing: refused on this process as on one instance.
      const cOn1 = await on1.client(c.token, c.uuid);
      expect(await subscribeCode(cOn1, aTopic)).toBe(REFUSED);
      expect(await subscribeCode(cOn1, "#")).toBe(REFUSED);

      const values = { p1: 0, p2: 0 };
      const count1 = () => values.p1++;
      const count2 = () => values.p2++;
      p1.deps.events.on("unit-node.value", count1);
      p2.deps.events.on("unit-node.value", count2);
      try {
        const aOn2 = await on2.client(a.token, a.uuid);
        await aOn2.publishAsync(aTopic, "42", { qos: 1 });
        const got = await bOn1.waitFor((m) => m.topic === aTopic);
        expect(got.payload.toString()).toBe("42");
        // B may not publish on A's output: dropped on B's process, never reaches A's subscriber.
        await bOn1.publishAsync(aTopic, "forged", { qos: 1 });
        await aOn2.publishAsync(aTopic, "43", { qos: 1 });
        await bOn1.waitFor((m) => m.payload.toString() === "43");
        expect(bOn1.received.map((m) => m.payload.toString())).toEqual(["42", "43"]);
        // Ingest (and its event) happens once, on the process that took the publish.
        expect(values).toEqual({ p1: 0, p2: 2 });
        expect(cOn1.received).toEqual([]);
      } finally {
        p1.deps.events.off("unit-node.value", count1);
        p2.deps.events.off("unit-node.value", count2);
      }
    });

    it("delivers the instance's own publish from either process to the device wherever it is", async () => {
      const topic = b.base("input_base_topic", "update/pepeunit");
      const bOn1 = await on1.client(b.token, b.uuid);
      expect(await subscribeCode(bOn1, topic)).toBe(1);
      await p2.broker.publish(topic, '{"COMMAND":"SchemaUpdate"}', { qos: 1 });
      await p1.broker.publish(topic, '{"COMMAND":"LogSync"}');
      await bOn1.waitFor((m) => m.payload.toString().includes("SchemaUpdate"));
      await bOn1.waitFor((m) => m.payload.toString().includes("LogSync"));
    });

    it("refuses another principal the client id a device holds on the other process", async () => {
      const bOn1 = await on1.client(b.token, b.uuid);
      expect(await refusedCode(p2.mqttUrl, c.token, { clientId: b.uuid })).toBe(
        IDENTIFIER_REJECTED,
      );
      // B's own reconnect through the other process takes its id over.
      const bOn2 = await on2.client(b.token, b.uuid);
      await bOn1.closed;
      expect(bOn2.connected).toBe(true);
    });

    it("shows a unit online on both processes, and offline on both once it leaves", async () => {
      const bOn1 = await on1.client(b.token, b.uuid);
      // Online from the broker's clientReady, just after CONNACK (and a read of the session store).
      await eventually(async () => p1.broker.isOnline(b.uuid));
      await eventually(async () => p2.broker.isOnline(b.uuid), 8000);
      expect(p2.broker.onlineUnits()).toContain(b.uuid);
      const units = await p2.api.get("/units?limit=100", world.bob.token);
      const row = (units.body.units as Array<{ uuid: string; is_online: boolean }>).find(
        (u) => u.uuid === b.uuid,
      );
      expect(row?.is_online).toBe(true);
      await bOn1.endAsync();
      await eventually(async () => !p2.broker.isOnline(b.uuid), 8000);
      expect(p1.broker.isOnline(b.uuid)).toBe(false);
    });

    it("takes a dead process's units offline once its presence set expires", async () => {
      // What a process killed with -9 leaves behind: its set, no longer refreshed.
      const redis = new Redis(REDIS_URL, { keyPrefix: `${namespace}:` });
      try {
        await redis
          .multi()
          .sadd("online:ghost", "ghost-unit")
          .pexpire("online:ghost", 5000)
          .sadd("online-nodes", "ghost")
          .exec();
      } finally {
        redis.disconnect();
      }
      await eventually(async () => p1.broker.isOnline("ghost-unit"), 8000);
      await eventually(async () => p2.broker.onlineUnits().includes("ghost-unit"), 8000);
      await eventually(async () => !p1.broker.isOnline("ghost-unit"), 10_000);
    }, 20_000);

    // Last: stops p2.
    it("resumes a persistent session on the other process: the unacknowledged message and those sent meanwhile", async () => {
      const topic = b.base("input_base_topic", "update/pepeunit");
      const connect = (clean = false) =>
        ({
          cmd: "connect",
          protocolId: "MQTT",
          protocolVersion: 4,
          clean,
          clientId: b.uuid,
          keepalive: 60,
          username: b.token,
          password: Buffer.alloc(0),
        }) as Packet;

      const dev = await rawClient(p2.broker.tcpPort);
      dev.send(connect());
      const connack = await dev.next("connack");
      expect(connack).toMatchObject({ returnCode: 0, sessionPresent: false });
      dev.send({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic, qos: 1 }] } as Packet);
      expect(await dev.next("suback")).toMatchObject({ granted: [1] });

      await p1.broker.publish(topic, "in-flight", { qos: 1 });
      const first = await dev.next("publish");
      expect(String((first as { payload?: Buffer }).payload)).toBe("in-flight");
      // No PUBACK: the device loses power, then its process goes away.
      dev.kill();
      p2Closed = true;
      await p2.close();

      await p1.broker.publish(topic, "while-away", { qos: 1 });
      const again = await rawClient(p1.broker.tcpPort);
      again.send(connect());
      // Session-present stays 0 (the MicroPython client accepts nothing else).
      expect(await again.next("connack")).toMatchObject({ returnCode: 0, sessionPresent: false });
      const redelivered = await again.next(
        "publish",
        (p) => String((p as { payload?: Buffer }).payload) === "in-flight",
      );
      const queued = await again.next(
        "publish",
        (p) => String((p as { payload?: Buffer }).payload) === "while-away",
      );
      for (const p of [redelivered, queued]) {
        expect(p).toMatchObject({ topic, qos: 1 });
        again.send({ cmd: "puback", messageId: (p as { messageId: number }).messageId });
      }
      // Acknowledged now: a further reconnect gets nothing again.
      await new Promise((r) => setTimeout(r, 200));
      again.kill();
      const third = await rawClient(p1.broker.tcpPort);
      third.send(connect());
      await third.next("connack");
      await new Promise((r) => setTimeout(r, 500));
      expect(third.packets.filter((p) => p.cmd === "publish")).toEqual([]);
      third.kill();

      // A clean session ends the stored one: nothing is queued for the id any more.
      const clean = await rawClient(p1.broker.tcpPort);
      clean.send(connect(true));
      await clean.next("connack");
      clean.kill();
      await eventually(async () => !p1.broker.isOnline(b.uuid));
      await p1.broker.publish(topic, "not-queued", { qos: 1 });
      const last = await rawClient(p1.broker.tcpPort);
      last.send(connect());
      await last.next("connack");
      await new Promise((r) => setTimeout(r, 500));
      expect(last.packets.filter((p) => p.cmd === "publish")).toEqual([]);
      last.kill();
    }, 30_000);
  },
);
