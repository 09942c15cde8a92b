import type { Aedes, AuthenticateError, Client, ConnectPacket } from "aedes";
import pino from "pino";
import { describe, expect, it } from "vitest";
import type { AclSync } from "../../src/broker/acl-sync.ts";
import { createHooks } from "../../src/broker/broker-hooks.ts";
import { Connections } from "../../src/broker/connections.ts";
import { createMqttStats } from "../../src/broker/mqtt-stats.ts";
import { createRevocations } from "../../src/broker/user-revocations.ts";

// src/broker/broker-hooks.ts, the login hook on its own: what a connection keeps of its
// CONNECT once the login was decided.

const UNIT = { kind: "unit", uuid: "u-1", creatorUuid: "owner-1" } as const;

function hooksWith(conns: Connections) {
  return createHooks({
    domain: "localhost",
    maxPayloadBytes: 1024,
    acl: { ensureUnit: async () => true, settled: () => null } as unknown as AclSync,
    conns,
    resolvePrincipal: async (token) => (token === "good-token" ? UNIT : null),
    internalSecret: Buffer.from("secret"),
    log: pino({ level: "silent" }),
    revocations: createRevocations(),
    broker: () => ({ clients: {} }) as unknown as Aedes,
    stats: createMqttStats(),
    onPublishAccepted: () => {},
  });
}

async function login(token: string) {
  const conns = new Connections();
  const hooks = hooksWith(conns);
  const client = { id: "u-1", conn: {} } as unknown as Client;
  const packet = {
    cmd: "connect",
    clientId: "u-1",
    username: token,
    password: Buffer.alloc(0),
  } as ConnectPacket;
  await new Promise<void>((resolve) => hooks.preConnect(client, packet, () => resolve()));
  const ok = await new Promise<boolean | null>((resolve) =>
    hooks.authenticate(
      client,
      packet.username,
      packet.password,
      (_err: AuthenticateError | null, ok: boolean | null) => resolve(ok),
    ),
  );
  return { ok, packet, info: conns.get(client) };
}

describe("login hook", () => {
  it("drops the credentials from the kept CONNECT once a login is accepted", async () => {
    const { ok, packet, info } = await login("good-token");
    expect(ok).toBe(true);
    expect(info?.principal).toEqual(UNIT);
    expect(packet.username).toBeUndefined();
    expect(packet.password).toBeUndefined();
    // The connection keeps other CONNECT fields (Aedes reads clean and keepalive later).
    expect(packet.clientId).toBe("u-1");
  });

  it("drops them from a refused one too", async () => {
    const { ok, packet, info } = await login("bad-token");
    expect(ok).toBe(false);
    expect(info).toBeUndefined();
    expect(packet.username).toBeUndefined();
    expect(packet.password).toBeUndefined();
  });
});

describe("connections", () => {
  const unitClient = (conns: Connections, id: string) => {
    const client = { id } as unknown as Client;
    conns.set(client, { principal: UNIT, token: null, remote: "?", epoch: 0 });
    return client;
  };

  it("reports a unit online with its first connection and offline after its last", () => {
    const conns = new Connections();
    const a = unitClient(conns, "a");
    const b = unitClient(conns, "b");
    expect(conns.isOnline(UNIT.uuid)).toBe(false);
    expect(conns.ready(a)).toBe(true);
    expect(conns.ready(a)).toBe(false); // reported twice: still one connection
    expect(conns.ready(b)).toBe(false);
    expect(conns.gone(a)).toBe(false);
    expect(conns.gone(a)).toBe(false); // gone twice (an error, then the disconnect)
    expect(conns.isOnline(UNIT.uuid)).toBe(true);
    expect(conns.onlineUnits()).toEqual([UNIT.uuid]);
    expect(conns.gone(b)).toBe(true);
    expect(conns.gone(b)).toBe(false);
    expect(conns.isOnline(UNIT.uuid)).toBe(false);
    expect(conns.onlineUnits()).toEqual([]);
  });

  it("keeps a unit online while any of three connections lives", () => {
    const conns = new Connections();
    const [a, b, c] = ["a", "b", "c"].map((id) => unitClient(conns, id)) as [
      Client,
      Client,
      Client,
    ];
    expect([conns.ready(a), conns.ready(b), conns.ready(c)]).toEqual([true, false, false]);
    expect([conns.gone(b), conns.gone(a)]).toEqual([false, false]);
    expect(conns.isOnline(UNIT.uuid)).toBe(true);
    expect(conns.gone(c)).toBe(true);
    expect(conns.isOnline(UNIT.uuid)).toBe(false);
  });
});
