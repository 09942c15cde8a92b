import type { LeanClient, PublishEncoder } from "./lean-mqtt.ts";

// Offered load at a fixed rate over several publishers: each call sends what the
// schedule owes by then, as one socket write per publisher, spread round-robin. Every
// payload is 20 bytes: send time (f64), sequence, run id and a magic number (u32 each),
// so a receiver can time it and ignore what another run or suite sent.

export type PacedPublisher = { client: LeanClient; encoder: PublishEncoder };

export function createPacedSender(opts: {
  senders: PacedPublisher[];
  /** Messages per second over all senders. */
  rate: number;
  /** Nothing more is owed after this many ms. */
  durationMs: number;
  runId: number;
  magic: number;
}) {
  const { senders, rate, durationMs, runId, magic } = opts;
  let sent = 0;
  let seq = 0;
  let rr = 0;
  return {
    sent: () => sent,
    /** Sends what the schedule owes at `elapsed` ms (stamped `now`). */
    sendDue(now: number, elapsed: number) {
      const due = Math.floor((Math.min(elapsed, durationMs) * rate) / 1000) - sent;
      if (due <= 0) return;
      const base = Math.floor(due / senders.length);
      const extra = due % senders.length;
      for (let k = 0; k < senders.length; k++) {
        const s = senders[(k + rr) % senders.length] as PacedPublisher;
        const count = base + (k < extra ? 1 : 0);
        if (count === 0) continue;
        const buf = Buffer.allocUnsafe(count * s.encoder.packetBytes);
        for (let j = 0; j < count; j++) {
          const off = s.encoder.writeInto(buf, j * s.encoder.packetBytes);
          buf.writeDoubleLE(now, off);
          buf.writeUInt32LE(seq++, off + 8);
          buf.writeUInt32LE(runId, off + 12);
          buf.writeUInt32LE(magic, off + 16);
        }
        s.client.write(buf);
      }
      rr = (rr + extra) % senders.length;
      sent += due;
    },
  };
}
