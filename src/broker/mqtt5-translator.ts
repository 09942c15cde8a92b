import mqttPacket, { type Packet, type Parser } from "mqtt-packet";

// Aedes 1.x speaks MQTT 3.1 / 3.1.1 only; the device protocol asks the broker to accept
// MQTT 5 clients too. A connection whose CONNECT says protocol level 5 is translated at
// the transport: its v5 packets are rewritten as 3.1.1 for Aedes, and what Aedes sends
// back is rewritten as v5. MQTT 5 extras (properties, no-local, retain-handling, user
// properties) are dropped; the CONNACK tells the client that topic aliases are not
// available. 3.1.1 connections never reach this code (no cost on the hot path).

/** Aedes 3.1.1 CONNACK return codes → MQTT 5 reason codes. */
const CONNACK_REASON: Record<number, number> = {
  0: 0x00, // success
  1: 0x84, // unsupported protocol version
  2: 0x85, // client identifier not valid
  3: 0x88, // server unavailable
  4: 0x86, // bad user name or password
  5: 0x87, // not authorized
};
/** A 3.1.1 SUBACK failure (0x80) means our ACL refused the filter. */
const SUBACK_NOT_AUTHORIZED = 0x87;
/** Reason code of a client DISCONNECT that asks for its will to be published. */
const DISCONNECT_WITH_WILL = 0x04;

/** Reads the protocol level of a CONNECT packet at the start of `buf`; null until enough bytes arrived. */
export function connectProtocolLevel(buf: Buffer): number | null | "not-connect" {
  if (buf.length === 0) return null;
  if (buf[0] !== undefined && buf[0] >> 4 !== 1) return "not-connect";
  let i = 1;
  while (i < buf.length && i <= 4 && ((buf[i] as number) & 0x80) !== 0) i++;
  if (i >= buf.length) return null;
  i++; // past the last remaining-length byte
  if (buf.length < i + 2) return null;
  const nameLength = buf.readUInt16BE(i);
  const levelAt = i + 2 + nameLength;
  if (buf.length <= levelAt) return null;
  return buf[levelAt] as number;
}

export type TranslatorSinks = {
  /** 3.1.1 bytes for the broker. */
  toBroker(bytes: Buffer): void;
  /** MQTT 5 bytes for the client. */
  toClient(bytes: Buffer): void;
  /** The client sent something that cannot be translated; the connection should close. */
  fail(reason: string, quiet?: boolean): void;
};

/** Packet-by-packet v5 ⇄ 3.1.1 rewriting for one connection. */
export class Mqtt5Translator {
  private readonly fromClientParser: Parser;
  private readonly fromBrokerParser: Parser;
  /** UNSUBACK in v5 carries one reason code per filter: remember how many each UNSUBSCRIBE had. */
  private readonly unsubscribeCounts = new Map<number, number>();
  private failed = false;
  private readonly sinks: TranslatorSinks;
  private readonly maximumPacketSize: number;

  constructor(sinks: TranslatorSinks, maximumPacketSize: number) {
    this.sinks = sinks;
    this.maximumPacketSize = maximumPacketSize;
    this.fromClientParser = mqttPacket.parser({ protocolVersion: 5 });
    this.fromClientParser.on("packet", (p) => this.clientPacket(p));
    this.fromClientParser.on("error", (e) => this.fail(`malformed MQTT 5 packet: ${e.message}`));
    this.fromBrokerParser = mqttPacket.parser({ protocolVersion: 4 });
    this.fromBrokerParser.on("packet", (p) => this.brokerPacket(p));
    this.fromBrokerParser.on("error", (e) =>
      this.fail(`broker packet not translatable: ${e.message}`),
    );
  }

  fromClient(chunk: Buffer): void {
    if (!this.failed) this.fromClientParser.parse(chunk);
  }

  fromBroker(chunk: Buffer): void {
    if (!this.failed) this.fromBrokerParser.parse(chunk);
  }

  private fail(reason: string, quiet = false) {
    if (this.failed) return;
    this.failed = true;
    this.sinks.fail(reason, quiet);
  }

  private clientPacket(packet: Packet) {
    // A copy: mqtt-packet's parser keeps the CONNECT object as its own settings, so
    // rewriting it in place would switch the parser to 3.1.1 for the rest of the session.
    // biome-ignore lint/suspicious/noExplicitAny: packets are rewritten field by field across union members
    const p = { ...packet } as any;
    switch (p.cmd) {
      case "connect":
        p.protocolVersion = 4;
        p.protocolId = "MQTT";
        delete p.properties;
        if (p.will) p.will = { ...p.will, properties: undefined };
        break;
      case "publish":
        // Topic aliases are refused in the CONNACK, so an empty topic is a protocol error.
        if (!p.topic) return this.fail("PUBLISH without a topic (topic aliases are not available)");
        delete p.properties;
        break;
      case "subscribe":
        delete p.properties;
        p.subscriptions = p.subscriptions.map((s: { topic: string; qos: number }) => ({
          topic: s.topic,
          qos: s.qos,
        }));
        break;
      case "unsubscribe":
        delete p.properties;
        this.unsubscribeCounts.set(p.messageId, p.unsubscriptions.length);
        break;
      case "disconnect":
        // 3.1.1 has no "disconnect but publish my will": closing without DISCONNECT does that.
        if (p.reasonCode === DISCONNECT_WITH_WILL)
          return this.fail("client disconnected with will", true);
        delete p.reasonCode;
        delete p.properties;
        break;
      case "auth":
        return this.fail("MQTT 5 AUTH (enhanced authentication) is not supported");
      default:
        delete p.reasonCode;
        delete p.properties;
    }
    this.emit(p, 4, this.sinks.toBroker);
  }

  private brokerPacket(packet: Packet) {
    // biome-ignore lint/suspicious/noExplicitAny: see clientPacket
    const p = packet as any;
    switch (p.cmd) {
      case "connack":
        p.reasonCode = CONNACK_REASON[p.returnCode] ?? 0x80;
        delete p.returnCode;
        if (p.reasonCode === 0) {
          p.properties = { topicAliasMaximum: 0, maximumPacketSize: this.maximumPacketSize };
        }
        break;
      case "suback":
        p.granted = p.granted.map((g: number) => (g === 0x80 ? SUBACK_NOT_AUTHORIZED : g));
        break;
      case "unsuback": {
        const count = this.unsubscribeCounts.get(p.messageId) ?? 1;
        this.unsubscribeCounts.delete(p.messageId);
        p.granted = new Array(count).fill(0);
        break;
      }
    }
    this.emit(p, 5, this.sinks.toClient);
  }

  private emit(packet: Packet, protocolVersion: 4 | 5, sink: (bytes: Buffer) => void) {
    try {
      sink(mqttPacket.generate(packet, { protocolVersion }));
    } catch (err) {
      this.fail(`packet not translatable: ${(err as Error).message}`);
    }
  }
}
