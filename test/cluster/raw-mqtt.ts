import net from "node:net";
import mqttPacket, { type IConnackPacket, type Packet } from "mqtt-packet";

// An MQTT 3.1.1 client that does only what the test tells it: it never acknowledges a
// PUBLISH by itself, so a QoS 1 message can be left in flight on purpose (MQTT.js
// always answers PUBACK). Packets are built and parsed with mqtt-packet.

export type RawMqtt = {
  connack: IConnackPacket;
  /** Every packet the broker sent after CONNACK. */
  packets: Packet[];
  send(packet: Packet): void;
  /** Resolves with the first packet (already received or future) matching `pred`. */
  waitFor(pred: (p: Packet) => boolean, timeoutMs?: number): Promise<Packet>;
  closed: Promise<void>;
  end(): void;
};

export async function rawMqtt(
  port: number,
  connect: { clientId: string; username: string; clean: boolean },
): Promise<RawMqtt> {
  const socket = net.connect(port, "127.0.0.1");
  socket.on("error", () => {});
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const packets: Packet[] = [];
  let notify: (() => void) | null = null;
  let connack: IConnackPacket | undefined;
  parser.on("packet", (p: Packet) => {
    if (p.cmd === "connack" && !connack) connack = p;
    else packets.push(p);
    notify?.();
  });
  socket.on("data", (chunk) => parser.parse(chunk));
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  const send = (p: Packet) => socket.write(mqttPacket.generate(p, { protocolVersion: 4 }));
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });

  async function until<T>(probe: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = probe();
      if (v !== undefined) return v;
      if (socket.destroyed) throw new Error(`connection closed while waiting for ${what}`);
      if (Date.now() > deadline) throw new Error(`no ${what} in ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        notify = resolve;
        setTimeout(resolve, 50);
      });
      notify = null;
    }
  }

  send({
    cmd: "connect",
    protocolId: "MQTT",
    protocolVersion: 4,
    clientId: connect.clientId,
    clean: connect.clean,
    keepalive: 60,
    username: connect.username,
    password: Buffer.alloc(0),
  });
  const ack = await until(() => connack, 5000, "CONNACK");
  if (ack.returnCode !== 0) throw new Error(`CONNACK ${ack.returnCode}`);
  return {
    connack: ack,
    packets,
    send,
    waitFor: (pred, timeoutMs = 5000) =>
      until(() => packets.find(pred), timeoutMs, "matching packet"),
    closed,
    end: () => socket.destroy(),
  };
}
