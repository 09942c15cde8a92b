import net from "node:net";

// A minimal MQTT 3.1.1 client for load generation: the bytes a device sends (CONNECT
// with a username and an empty password, one topic per SUBSCRIBE, QoS 0 PUBLISH,
// PINGREQ), with publishes pre-encoded and written in batches so that the generator
// spends its core on the broker's traffic, not on its own bookkeeping. The same client
// drives Pepeunit and Mosquitto, so their figures compare like for like.

function str(s: string): Buffer {
  const b = Buffer.from(s, "utf8");
  const out = Buffer.allocUnsafe(2 + b.length);
  out.writeUInt16BE(b.length, 0);
  b.copy(out, 2);
  return out;
}

function varint(n: number): Buffer {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return Buffer.from(out);
}

function packet(first: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([first]), varint(body.length), body]);
}

export type LeanOptions = {
  port: number;
  host?: string;
  clientId: string;
  username?: string;
  keepaliveS?: number;
};

export type OnMessage = (topic: string, payload: Buffer) => void;

/** Encodes QoS 0 PUBLISH packets for one topic and payload size: header once, payload per call. */
export class PublishEncoder {
  private readonly header: Buffer;
  readonly payloadBytes: number;
  readonly packetBytes: number;

  constructor(topic: string, payloadBytes: number) {
    const t = str(topic);
    this.header = Buffer.concat([Buffer.from([0x30]), varint(t.length + payloadBytes), t]);
    this.payloadBytes = payloadBytes;
    this.packetBytes = this.header.length + payloadBytes;
  }

  /** Writes one packet at `offset` of `into`; returns where the payload starts. */
  writeInto(into: Buffer, offset: number): number {
    this.header.copy(into, offset);
    return offset + this.header.length;
  }
}

export class LeanClient {
  readonly socket: net.Socket;
  onMessage: OnMessage = () => {};
  private buf: Buffer = Buffer.alloc(0);
  private pid = 0;
  private readonly acks = new Map<number, (code: number) => void>();
  private connack: ((code: number) => void) | null = null;
  private ping: NodeJS.Timeout | undefined;
  readonly closed: Promise<void>;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", () => {});
    this.closed = new Promise((resolve) => socket.once("close", () => resolve()));
  }

  static async connect(o: LeanOptions): Promise<LeanClient> {
    const socket = net.connect(o.port, o.host ?? "127.0.0.1");
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    const c = new LeanClient(socket);
    const keepalive = o.keepaliveS ?? 60;
    const flags = 0x02 | (o.username !== undefined ? 0xc0 : 0);
    const ka = Buffer.alloc(2);
    ka.writeUInt16BE(keepalive);
    const parts = [str("MQTT"), Buffer.from([4, flags]), ka, str(o.clientId)];
    if (o.username !== undefined) parts.push(str(o.username), str(""));
    const code = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no CONNACK for ${o.clientId}`)), 10_000);
      c.connack = (rc) => {
        clearTimeout(timer);
        resolve(rc);
      };
      socket.write(packet(0x10, Buffer.concat(parts)));
      c.closed.then(() => reject(new Error(`connection closed before CONNACK (${o.clientId})`)));
    });
    if (code !== 0) {
      socket.destroy();
      throw new Error(`CONNACK refused with ${code} (${o.clientId})`);
    }
    if (keepalive > 0) {
      c.ping = setInterval(() => socket.write(Buffer.from([0xc0, 0])), (keepalive * 1000) / 2);
      c.ping.unref();
    }
    return c;
  }

  /** One SUBSCRIBE; resolves with the granted QoS (0x80 = refused). */
  subscribe(topic: string, qos = 0): Promise<number> {
    this.pid = (this.pid % 65535) + 1;
    const id = this.pid;
    const pidBuf = Buffer.alloc(2);
    pidBuf.writeUInt16BE(id);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no SUBACK for ${topic}`)), 10_000);
      this.acks.set(id, (code) => {
        clearTimeout(timer);
        resolve(code);
      });
      this.socket.write(packet(0x82, Buffer.concat([pidBuf, str(topic), Buffer.from([qos])])));
    });
  }

  publish(topic: string, payload: Buffer | string): void {
    const body = Buffer.concat([str(topic), Buffer.from(payload)]);
    this.socket.write(packet(0x30, body));
  }

  /** Writes pre-encoded packets (one syscall for a batch). */
  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  close(): void {
    if (this.ping) clearInterval(this.ping);
    if (!this.socket.destroyed) this.socket.end(Buffer.from([0xe0, 0]));
  }

  private onData(chunk: Buffer): void {
    const data = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    let i = 0;
    for (;;) {
      if (data.length - i < 2) break;
      const first = data[i] as number;
      let len = 0;
      let mul = 1;
      let j = i + 1;
      let complete = false;
      while (j < data.length) {
        const b = data[j++] as number;
        len += (b & 0x7f) * mul;
        mul *= 128;
        if (!(b & 0x80)) {
          complete = true;
          break;
        }
      }
      if (!complete || data.length - j < len) break;
      this.onPacket(first, data, j, j + len);
      i = j + len;
    }
    this.buf = i < data.length ? Buffer.from(data.subarray(i)) : Buffer.alloc(0);
  }

  private onPacket(first: number, data: Buffer, start: number, end: number): void {
    const type = first >> 4;
    if (type === 3) {
      const topicLen = data.readUInt16BE(start);
      const topic = data.toString("utf8", start + 2, start + 2 + topicLen);
      let p = start + 2 + topicLen;
      const qos = (first >> 1) & 3;
      if (qos > 0) {
        // PUBACK with the packet id (QoS 1 deliveries, e.g. instance commands).
        this.socket.write(Buffer.from([0x40, 2, data[p] as number, data[p + 1] as number]));
        p += 2;
      }
      this.onMessage(topic, data.subarray(p, end));
    } else if (type === 2) {
      this.connack?.(data[start + 1] as number);
      this.connack = null;
    } else if (type === 9) {
      const id = data.readUInt16BE(start);
      this.acks.get(id)?.(data[start + 2] as number);
      this.acks.delete(id);
    }
  }
}

/** A unit's connection (its uuid as client id, its token as user name), kept in `clients` to close. */
export async function connectUnit(
  port: number,
  unit: { uuid: string; token: string },
  clients: LeanClient[],
): Promise<LeanClient> {
  const c = await LeanClient.connect({ port, clientId: unit.uuid, username: unit.token });
  clients.push(c);
  return c;
}
