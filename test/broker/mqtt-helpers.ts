import net from "node:net";
import { connectAsync, type IClientOptions, type MqttClient } from "mqtt";
import type { FixtureRepo } from "../helpers/git-fixtures.ts";
import { createFixtureRepo } from "../helpers/git-fixtures.ts";
import { createUser, type TestInstance } from "../helpers/instance.ts";
import { createRepo } from "../helpers/repos.ts";
import { createUnit, nodeOf, unitToken } from "../helpers/units.ts";

// MQTT test helpers: real MQTT.js clients and hand-built MQTT 3.1.1 packets over TCP.

export const DOMAIN = "localhost:8080";

export type Received = { topic: string; payload: Buffer };

/** An MQTT.js client that does not reconnect and records every message it receives. */
export type TestClient = MqttClient & {
  received: Received[];
  /** Resolves with the first message (already received or future) matching `pred`. */
  waitFor(pred: (m: Received) => boolean, timeoutMs?: number): Promise<Received>;
  /** Resolves when the connection is closed (by either side). */
  closed: Promise<void>;
};

export async function connectClient(
  url: string,
  token: string,
  opts: IClientOptions = {},
): Promise<TestClient> {
  const client = (await connectAsync(url, {
    username: token,
    password: "",
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    ...opts,
  })) as TestClient;
  client.received = [];
  const waiters: Array<{ pred: (m: Received) => boolean; resolve: (m: Received) => void }> = [];
  client.on("message", (topic, payload) => {
    const m = { topic, payload: Buffer.from(payload) };
    client.received.push(m);
    for (const w of waiters.splice(0)) {
      if (w.pred(m)) w.resolve(m);
      else waiters.push(w);
    }
  });
  client.closed = new Promise((resolve) => client.once("close", () => resolve()));
  client.on("error", () => {});
  client.waitFor = (pred, timeoutMs = 5000) => {
    const seen = client.received.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error("no matching MQTT message arrived")),
        timeoutMs,
      );
      waiters.push({
        pred,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      });
    });
  };
  return client;
}

/** Clients a test file opens through `client`, all ended by `closeAll` (its afterEach). */
export function clientPool(url: () => string) {
  const open: TestClient[] = [];
  return {
    async client(token: string, clientId?: string): Promise<TestClient> {
      const cl = await connectClient(url(), token, clientId ? { clientId } : {});
      open.push(cl);
      return cl;
    },
    async closeAll(): Promise<void> {
      await Promise.all(open.splice(0).map((cl) => cl.endAsync(true)));
    },
  };
}

/** The granted QoS of one SUBSCRIBE, or its failure code (0x80 = refused). */
export async function subscribeCode(client: MqttClient, topic: string, qos: 0 | 1 = 1) {
  try {
    const granted = await client.subscribeAsync(topic, { qos });
    return granted[0]?.qos;
  } catch (err) {
    // MQTT.js rejects a refused subscription, with the SUBACK packet attached.
    const granted = (err as { packet?: { granted?: unknown[] } }).packet?.granted;
    if (typeof granted?.[0] === "number") return granted[0];
    throw err;
  }
}

/** The CONNACK return code of a refused login (MQTT.js rejects with it). */
export async function refusedCode(url: string, token: string, opts: IClientOptions = {}) {
  try {
    const c = await connectClient(url, token, opts);
    await c.endAsync();
    return 0;
  } catch (err) {
    return (err as { code?: number }).code;
  }
}

export async function eventually<T>(
  probe: () => Promise<T | undefined | null | false>,
  timeoutMs = 5000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 25));
  }
}

// --- hand-built MQTT 3.1.1 packets (what a MicroPython umqtt client sends) ---

function str(s: string): Buffer {
  const b = Buffer.from(s, "utf8");
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return Buffer.concat([len, b]);
}

function remainingLength(n: number): Buffer {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return Buffer.from(out);
}

function packet(firstByte: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([firstByte]), remainingLength(body.length), body]);
}

export function connectPacket(o: {
  clientId: string;
  username?: string;
  /** With the flag set and an empty password, like the device clients. */
  password?: string;
  clean: boolean;
  keepalive?: number;
  protocolLevel?: number;
}): Buffer {
  let flags = o.clean ? 0x02 : 0;
  if (o.username !== undefined) flags |= 0x80;
  if (o.password !== undefined) flags |= 0x40;
  const keepalive = Buffer.alloc(2);
  keepalive.writeUInt16BE(o.keepalive ?? 60);
  const parts = [
    str("MQTT"),
    Buffer.from([o.protocolLevel ?? 4, flags]),
    keepalive,
    str(o.clientId),
  ];
  if (o.username !== undefined) parts.push(str(o.username));
  if (o.password !== undefined) parts.push(str(o.password));
  return packet(0x10, Buffer.concat(parts));
}

export function subscribePacket(messageId: number, topic: string, qos = 0): Buffer {
  const id = Buffer.alloc(2);
  id.writeUInt16BE(messageId);
  return packet(0x82, Buffer.concat([id, str(topic), Buffer.from([qos])]));
}

/** A raw TCP connection that collects every byte the broker sends. */
export async function rawConnection(port: number) {
  const socket = net.connect(port, "127.0.0.1");
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  socket.on("error", () => {});
  let data = Buffer.alloc(0);
  let notify: (() => void) | null = null;
  socket.on("data", (chunk) => {
    data = Buffer.concat([data, chunk]);
    notify?.();
  });
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  return {
    socket,
    closed,
    send: (b: Buffer) => socket.write(b),
    /** Resolves with exactly `n` bytes the broker sent next. */
    async read(n: number, timeoutMs = 5000): Promise<Buffer> {
      const deadline = Date.now() + timeoutMs;
      while (data.length < n) {
        if (socket.destroyed && data.length < n) throw new Error("connection closed");
        await new Promise<void>((resolve) => {
          notify = resolve;
          setTimeout(resolve, Math.max(0, Math.min(100, deadline - Date.now())));
        });
        notify = null;
        if (Date.now() > deadline) throw new Error(`only ${data.length} of ${n} bytes arrived`);
      }
      const out = data.subarray(0, n);
      data = data.subarray(n);
      return Buffer.from(out);
    },
    end: () => socket.destroy(),
  };
}

// --- a small world of units: bob's A and B from one fixture repo ---

export type WorldUnit = {
  uuid: string;
  token: string;
  /** The unit JSON as the API returns it (tests assert the fields they read). */
  json: any;
  topic(type: "Input" | "Output", name: string): string;
  nodeUuid(type: "Input" | "Output", name: string): string;
  base(section: "input_base_topic" | "output_base_topic", name: string): string;
};

export async function makeUnit(
  inst: Pick<TestInstance, "api">,
  ownerToken: string,
  repoUuid: string,
  overrides: object = {},
): Promise<WorldUnit> {
  const json = await createUnit(inst.api, ownerToken, repoUuid, overrides);
  const token = await unitToken(inst.api, ownerToken, json.uuid);
  return {
    uuid: json.uuid,
    token,
    json,
    topic: (type, name) => nodeOf(json, type, name).topic,
    nodeUuid: (type, name) => nodeOf(json, type, name).uuid,
    base: (section, name) => `${DOMAIN}/${section}/${json.uuid}/${name}`,
  };
}

export async function linkNodes(
  inst: TestInstance,
  token: string,
  outputUuid: string,
  inputUuid: string,
): Promise<string> {
  const res = await inst.api.post(
    "/unit_node_edges",
    { output_uuid: outputUuid, input_uuid: inputUuid },
    token,
  );
  if (res.status !== 201) throw new Error(`edge: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.uuid;
}

export type World = {
  admin: { uuid: string; token: string };
  bob: { uuid: string; token: string };
  fixture: FixtureRepo;
  repoUuid: string;
};

export async function makeWorld(inst: Pick<TestInstance, "api">): Promise<World> {
  const admin = await createUser(inst.api, "admin");
  const bob = await createUser(inst.api, "bob");
  const fixture = createFixtureRepo();
  const repo = await createRepo(inst.api, bob.token, fixture);
  return { admin, bob, fixture, repoUuid: repo.uuid };
}
