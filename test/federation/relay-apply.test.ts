import { describe, expect, it } from "vitest";
import type { Core } from "../../src/federation/core.ts";
import type { FollowerRegistry } from "../../src/federation/followers.ts";
import type { RemoteEdgeRegistry } from "../../src/federation/links.ts";
import type { IncomingReading } from "../../src/federation/readings.ts";
import { createRelay, PUBLISH_CHUNK } from "../../src/federation/relay.ts";

// The receiving side of the relay on its own, with a broker whose publishes the test
// completes by hand: a large batch is answered once the batch before it and its own
// first chunk are republished (so the sender's next one travels meanwhile), batches
// are republished one after the other in arrival order, a broker that cannot publish
// makes the answer a failure, and a stop finishes what was answered before it refuses
// more. (flow.test.ts and lifecycle.test.ts drive the same path between real instances.)

const HOME = "https://home.example";
const VARIABLE = `${HOME}/ap/actors/b5a1c1de-0000-4000-8000-000000000001`;

type Held = { topic: string; payload: string; settle(err?: Error): void };

function world(cluster: object | null = null) {
  const held: Held[] = [];
  const errors: string[] = [];
  const saved: unknown[] = [];
  const noop = () => {};
  // Only what the receiving side touches (the sending side is not used here).
  const core = {
    deps: {
      config: { federationReadingFormat: 2, cluster },
      broker: {
        publish: (topic: string, payload: Buffer) =>
          new Promise<void>((resolve, reject) => {
            held.push({
              topic,
              payload: payload.toString(),
              settle: (err) => (err ? reject(err) : resolve()),
            });
          }),
      },
    },
    db: { execute: async (query: unknown) => void saved.push(query) },
    log: { error: (_: unknown, msg: string) => errors.push(msg), warn: noop, info: noop },
  } as unknown as Core; // a stand-in: the relay's receiving side reads only these fields
  const edges = {
    active: new Map([[VARIABLE, { topic: "home/topic", lastSequence: 0 }]]),
  } as unknown as RemoteEdgeRegistry; // the one field apply reads
  const relay = createRelay(
    core,
    {} as FollowerRegistry,
    edges,
    () => {
      throw new Error("the receiving side queues nothing");
    },
    5,
  );
  return { relay, held, errors, saved };
}

const reading = (sequence: number): IncomingReading => ({
  variable: new URL(VARIABLE),
  payload: Buffer.from(`v${sequence}`),
  sequence,
  observedAt: null,
});

/** Whether the promise has settled, after the work already queued has run. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((r) => setImmediate(r));
  return done;
}

/** Readings with sequences from..to. */
const readings = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => reading(from + i));
const LARGE = PUBLISH_CHUNK + 100;
const settle = (hs: Held[], err?: Error) => {
  for (const h of hs) h.settle(err);
};

describe("relay: receiving batches", () => {
  it("answers a large batch once its first chunk is out; the next one waits its turn", async () => {
    const { relay, held } = world();
    const first = relay.apply(readings(1, LARGE), HOME);
    expect(await settled(first.accepted)).toBe(false);
    expect(held).toHaveLength(PUBLISH_CHUNK); // a chunk at a time
    settle(held.slice(0, PUBLISH_CHUNK));
    await first.accepted; // answered: the sender's next batch may travel meanwhile
    expect(held).toHaveLength(LARGE);
    expect(await settled(first.applied)).toBe(false);

    const second = relay.apply([reading(LARGE + 1)], HOME);
    expect(await settled(second.accepted)).toBe(false);
    expect(held).toHaveLength(LARGE); // not started before the first is republished
    settle(held.slice(PUBLISH_CHUNK));
    expect(await first.applied).toBe(LARGE);
    // A small batch is answered once wholly republished.
    expect(await settled(second.accepted)).toBe(false);
    settle(held.slice(LARGE));
    await second.accepted;
    expect(await second.applied).toBe(1);
    expect(held.map((h) => h.payload)).toEqual(readings(1, LARGE + 1).map((r) => `v${r.sequence}`));
  });

  it("a broker that cannot publish fails the first chunk: the failure is the answer", async () => {
    const { relay, held, errors } = world();
    const first = relay.apply(readings(1, LARGE), HOME);
    await settled(first.accepted);
    settle(held.splice(0), new Error("the MQTT broker is closed"));
    await expect(first.accepted).rejects.toThrow("the MQTT broker is closed"); // retried by the sender
    await expect(first.applied).rejects.toThrow("the MQTT broker is closed");
    expect(errors).toEqual([]);

    // After a failure, even a large batch is answered only once wholly republished; the
    // readings that failed are not skipped as duplicates.
    const retry = relay.apply(readings(1, LARGE), HOME);
    await settled(retry.accepted);
    settle(held.slice(0, PUBLISH_CHUNK));
    expect(await settled(retry.accepted)).toBe(false);
    settle(held.slice(PUBLISH_CHUNK));
    await retry.accepted;
    expect(await retry.applied).toBe(LARGE);

    // A failure after the answer cannot be retried by the sender: it is logged.
    const late = relay.apply(readings(LARGE + 1, 2 * LARGE), HOME);
    await settled(late.accepted);
    settle(held.slice(LARGE, LARGE + PUBLISH_CHUNK));
    await late.accepted;
    settle(held.slice(LARGE + PUBLISH_CHUNK), new Error("the MQTT broker is closed"));
    await expect(late.applied).rejects.toThrow();
    await settled(late.applied);
    expect(errors).toEqual(["federation: readings of an answered batch were not republished"]);
  });

  it("a stop finishes the answered batch, saves its sequences and refuses later ones", async () => {
    const { relay, held, saved } = world();
    const answered = relay.apply(readings(1, LARGE), HOME);
    await settled(answered.accepted);
    settle(held.slice(0, PUBLISH_CHUNK));
    await answered.accepted;
    const stopping = relay.stop();
    const late = relay.apply([reading(LARGE + 1)], HOME);
    await expect(late.accepted).rejects.toThrow("the relay is stopping");
    await expect(late.applied).rejects.toThrow("the relay is stopping");

    expect(await settled(stopping)).toBe(false); // waits for the rest of the answered batch
    settle(held.slice(PUBLISH_CHUNK));
    await stopping;
    expect(await answered.applied).toBe(LARGE);
    expect(held).toHaveLength(LARGE);
    expect(saved).toHaveLength(1); // one statement with the last sequence of each output
  });

  it("in cluster mode a batch is answered once wholly republished", async () => {
    // (The sender's next batch may reach another process of the cluster.)
    const { relay, held } = world({ redisUrl: "redis://127.0.0.1:6379" });
    const batch = relay.apply(readings(1, LARGE), HOME);
    await settled(batch.accepted);
    settle(held.slice(0, PUBLISH_CHUNK));
    expect(await settled(batch.accepted)).toBe(false);
    settle(held.slice(PUBLISH_CHUNK));
    await batch.accepted;
    expect(await batch.applied).toBe(LARGE);
  });
});
