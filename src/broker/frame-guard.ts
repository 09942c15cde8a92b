import { Duplex } from "node:stream";
import type { MqttStats } from "./mqtt-stats.ts";
import { connectProtocolLevel, Mqtt5Translator } from "./mqtt5-translator.ts";

// A transport-level guard between a connection and the broker. It reads only the MQTT
// fixed headers (type + remaining length) as bytes stream by, so it can refuse an
// oversized packet before it is buffered (the MQTT parser would otherwise collect up
// to 256 MB) and rate-limit what a client sends, whatever state the session is in.

export type FrameLimits = {
  /** Largest remaining length (bytes after the fixed header) of any packet. */
  maxPacketBytes: number;
  /** PUBLISH, SUBSCRIBE and UNSUBSCRIBE packets per second; a one-second burst is allowed. */
  maxPerSecond: number;
};

const PUBLISH = 3;
const SUBSCRIBE = 8;
const UNSUBSCRIBE = 10;

/** Token bucket: `rate` tokens a second, holding at most `capacity`. */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly rate: number;
  private readonly capacity: number;

  constructor(rate: number, capacity = Math.max(rate, 1), now = Date.now()) {
    this.rate = rate;
    this.capacity = capacity;
    this.tokens = capacity;
    this.last = now;
  }

  take(now = Date.now()): boolean {
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** Incremental reader of MQTT fixed headers; returns a reason when a limit is broken. */
export class FrameInspector {
  private skip = 0;
  // -1: the next byte is a packet's first byte; >= 0: remaining-length bytes read so far.
  private lengthBytes = -1;
  private length = 0;
  private multiplier = 1;
  private type = 0;
  private readonly limits: FrameLimits;
  private readonly bucket: TokenBucket;

  constructor(limits: FrameLimits) {
    this.limits = limits;
    this.bucket = new TokenBucket(limits.maxPerSecond);
  }

  inspect(chunk: Uint8Array): string | null {
    let i = 0;
    while (i < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - i);
        this.skip -= n;
        i += n;
        continue;
      }
      const byte = chunk[i++] as number;
      if (this.lengthBytes === -1) {
        this.type = byte >> 4;
        this.lengthBytes = 0;
        this.length = 0;
        this.multiplier = 1;
        continue;
      }
      this.length += (byte & 0x7f) * this.multiplier;
      this.multiplier *= 128;
      this.lengthBytes++;
      if (byte & 0x80) {
        // [MQTT-2.2.3] the remaining length takes at most four bytes.
        if (this.lengthBytes >= 4) return "malformed remaining length";
        continue;
      }
      if (this.length > this.limits.maxPacketBytes) {
        return `packet of ${this.length} bytes exceeds the limit of ${this.limits.maxPacketBytes}`;
      }
      if (
        (this.type === PUBLISH || this.type === SUBSCRIBE || this.type === UNSUBSCRIBE) &&
        !this.bucket.take()
      ) {
        return `more than ${this.limits.maxPerSecond} messages per second`;
      }
      this.skip = this.length;
      this.lengthBytes = -1;
    }
    return null;
  }
}

/** The guard of a transport stream, for the listeners below (shared by every connection). */
const GUARD = Symbol("pepeunit.guard");
type GuardedTransport = Duplex & { [GUARD]: GuardedConnection };

/** Told when a connection broke a limit, with the connection (for its client and remote). */
export type ViolationHandler = (reason: string, conn: GuardedConnection) => void;

// The transport's listeners, the flush timer's callback and the drain callback are these
// functions, shared by every connection (an emitter calls a listener with itself as
// `this`), not closures made per connection: ~0.5 KB less per idle device.
function onTransportData(this: GuardedTransport, chunk: Buffer): void {
  this[GUARD].fromTransport(chunk);
}
function onTransportEnd(this: GuardedTransport): void {
  this[GUARD].push(null);
}
function onTransportError(this: GuardedTransport, err: Error): void {
  this[GUARD].destroy(err);
}
function onTransportClose(this: GuardedTransport): void {
  this[GUARD].destroy();
}
function onTransportDrain(this: GuardedTransport): void {
  this[GUARD].releaseHeld();
}
function flushLater(conn: GuardedConnection): void {
  conn.flushOut();
}

/**
 * Wraps a connection (TCP, TLS or WebSocket stream) for the broker: bytes pass
 * through unchanged until a limit is broken, then the connection is destroyed and
 * `onViolation` told why. An MQTT 5 client (known from its CONNECT) is translated
 * to and from 3.1.1 for Aedes (see mqtt5-translator.ts).
 *
 * Outgoing bytes are coalesced: mqtt-packet writes a PUBLISH as four or more small
 * chunks and Aedes delivers each message in its own setImmediate, so the chunks of one
 * event-loop turn are joined and written to the socket once (one syscall instead of
 * one per chunk; this is most of the routing cost at high rates). Backpressure still
 * holds: while the socket wants a drain, write callbacks wait for it.
 */
export class GuardedConnection extends Duplex {
  /** Where the connection comes from, for logs. */
  remote = "?";
  private readonly inner: GuardedTransport;
  private readonly inspector: FrameInspector;
  private readonly limits: FrameLimits;
  private readonly onViolation: ViolationHandler;
  private violated = false;
  /** Bytes before the CONNECT's protocol level is known. */
  private pending: Buffer | null = Buffer.alloc(0);
  private translator: Mqtt5Translator | null = null;
  private out: Buffer[] = [];
  private outBytes = 0;
  private flushScheduled = false;
  private innerFull = false;
  /** Write callbacks held while the transport wants a drain (made when first needed). */
  private heldCallbacks: Array<(err?: Error | null) => void> | null = null;
  private readonly stats: Pick<MqttStats, "bytesIn" | "bytesOut"> | undefined;

  constructor(
    inner: Duplex,
    limits: FrameLimits,
    onViolation: ViolationHandler,
    stats?: Pick<MqttStats, "bytesIn" | "bytesOut">,
  ) {
    super({ allowHalfOpen: false });
    this.inner = Object.assign(inner, { [GUARD]: this });
    this.limits = limits;
    this.onViolation = onViolation;
    this.stats = stats;
    this.inspector = new FrameInspector(limits);
    inner.on("data", onTransportData);
    inner.on("end", onTransportEnd);
    inner.on("error", onTransportError);
    inner.on("close", onTransportClose);
  }

  private refuse(problem: string, quiet = false): void {
    if (this.violated) return;
    this.violated = true;
    if (!quiet) this.onViolation(problem, this);
    this.destroy(quiet ? undefined : new Error(problem));
  }

  /** A chunk from the client (the transport's "data"). */
  fromTransport(chunk: Buffer): void {
    if (this.violated) return;
    if (this.stats) this.stats.bytesIn += chunk.length;
    const problem = this.inspector.inspect(chunk);
    if (problem) {
      this.refuse(problem);
      return;
    }
    if (this.translator) {
      this.translator.fromClient(chunk);
      return;
    }
    if (this.pending) {
      const head = Buffer.concat([this.pending, chunk]);
      const level = connectProtocolLevel(head);
      if (level === null) {
        this.pending = head;
        return;
      }
      this.pending = null;
      if (level === 5) {
        this.translator = new Mqtt5Translator(
          {
            toBroker: (bytes) => {
              if (!this.push(bytes)) this.inner.pause();
            },
            toClient: (bytes) => this.queueOut(bytes),
            fail: (problem, quiet) => this.refuse(problem, quiet),
          },
          this.limits.maxPacketBytes,
        );
        this.translator.fromClient(head);
        return;
      }
      chunk = head;
    }
    if (!this.push(chunk)) this.inner.pause();
  }

  override _read(): void {
    this.inner.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (err?: Error | null) => void) {
    if (this.inner.destroyed) return cb(new Error("connection closed"));
    if (this.translator) this.translator.fromBroker(chunk);
    else this.queueOut(chunk);
    if (!this.innerFull) cb();
    else if (this.heldCallbacks) this.heldCallbacks.push(cb);
    else this.heldCallbacks = [cb];
  }

  private queueOut(bytes: Buffer): void {
    this.out.push(bytes);
    this.outBytes += bytes.length;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(flushLater, this);
    }
  }

  /** Writes what was queued this turn to the transport as one chunk. */
  flushOut(): void {
    this.flushScheduled = false;
    const out = this.out;
    if (out.length === 0 || this.inner.destroyed) return;
    const data = out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out, this.outBytes);
    this.out = [];
    this.outBytes = 0;
    if (this.stats) this.stats.bytesOut += data.length;
    if (!this.inner.write(data) && !this.innerFull) {
      this.innerFull = true;
      this.inner.once("drain", onTransportDrain);
    }
  }

  /** The transport drained: the held write callbacks run. */
  releaseHeld(): void {
    this.innerFull = false;
    const held = this.heldCallbacks;
    this.heldCallbacks = null;
    if (held) for (const cb of held) cb();
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.flushOut();
    this.inner.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // Whatever was written before the close (e.g. a refusing CONNACK) still goes out.
    this.flushOut();
    this.out = [];
    this.inner.destroy();
    const held = this.heldCallbacks;
    this.heldCallbacks = null;
    if (held) for (const cb of held) cb(err ?? new Error("connection closed"));
    cb(err);
  }
}
