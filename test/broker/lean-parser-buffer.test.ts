import { Duplex, PassThrough } from "node:stream";
import { Aedes } from "aedes";
import bl from "bl";
import mqtt from "mqtt-packet";
import { afterEach, describe, expect, it } from "vitest";
import { leanParserBuffer } from "../../src/broker/lean-parser-buffer.ts";

// src/broker/lean-parser-buffer.ts on a real Aedes client: the parser's stream list is
// swapped for a plain BufferList, and packets still parse, whole or split.

/** A connection for Aedes: bytes pushed into `conn` reach it, its writes come out of `fromBroker`. */
function connection() {
  const fromBroker = new PassThrough();
  const conn = new Duplex({
    read() {},
    write(chunk, _encoding, cb) {
      fromBroker.write(chunk);
      cb();
    },
  });
  return { conn, fromBroker };
}

let broker: Aedes | null = null;
afterEach(async () => {
  await new Promise<void>((resolve) => broker?.close(() => resolve()) ?? resolve());
  broker = null;
});

describe("lean parser buffer", () => {
  it("swaps the list and the client still logs in and subscribes from split packets", async () => {
    broker = await Aedes.createBroker();
    const { conn, fromBroker } = connection();
    const client = broker.handle(conn);
    expect(leanParserBuffer(client)).toBe(true);
    const list = (client as unknown as { _parser: { _list: unknown } })._parser._list;
    expect(list).toBeInstanceOf(bl.BufferList);
    expect(list).not.toBeInstanceOf(bl.BufferListStream);

    const replies: string[] = [];
    const parser = mqtt.parser();
    parser.on("packet", (p) => replies.push(p.cmd));
    fromBroker.on("data", (chunk) => parser.parse(chunk));
    const bytes = Buffer.concat([
      mqtt.generate({
        cmd: "connect",
        protocolId: "MQTT",
        protocolVersion: 4,
        clean: true,
        clientId: "lean-1",
        keepalive: 0,
      }),
      mqtt.generate({
        cmd: "subscribe",
        messageId: 1,
        subscriptions: [{ topic: "a/b", qos: 0 }],
      }),
    ]);
    // One byte at a time: every packet is put together from many appends.
    for (const byte of bytes) conn.push(Buffer.from([byte]));
    await expect.poll(() => replies).toEqual(["connack", "suback"]);
  });

  it("leaves a client alone whose parser has no such list", () => {
    const client = { _parser: { _list: null } } as never;
    expect(leanParserBuffer(client)).toBe(false);
  });
});
