import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { DomainEventName, DomainEvents, EventBus } from "../events.ts";
import { connectRedis } from "./redis.ts";

// One bridge for every domain event (src/events.ts): each process publishes what it
// emitted on one Redis channel and replays what the others published. Redis pub/sub
// keeps the order of one publisher's messages, so a unit's events arrive in the order
// they happened. A message missed while Redis was down is not replayed: the caches
// that follow events reload what they hold on reconnect (onReconnect).

type Envelope = { node: string; name: DomainEventName; payload: unknown };

export type EventBridge = {
  /** Published and not yet confirmed by Redis (tests wait for 0). */
  pending(): number;
  stop(): Promise<void>;
};

export async function startEventBridge(opts: {
  events: EventBus;
  redisUrl: string;
  channel: string;
  nodeName: string;
  log: Logger;
  /** Called when the subscription came back after a Redis outage (events may have been missed). */
  onReconnect?: () => void;
}): Promise<EventBridge> {
  const { events, channel, nodeName, log } = opts;
  const publisher = await connectRedis(opts.redisUrl, log, "event bridge publisher");
  let subscriber: Redis;
  try {
    subscriber = await connectRedis(opts.redisUrl, log, "event bridge subscriber");
  } catch (err) {
    publisher.disconnect();
    throw err;
  }
  let inFlight = 0;
  let subscribedOnce = false;

  subscriber.on("message", (ch: string, text: string) => {
    if (ch !== channel) return;
    let envelope: Envelope;
    try {
      envelope = JSON.parse(text) as Envelope;
    } catch {
      log.warn("cluster: unreadable event on the bridge, ignored");
      return;
    }
    if (envelope.node === nodeName) return;
    try {
      events.emitFromOtherProcess(
        envelope.name,
        // JSON is enough: the bridged events carry strings, numbers and parsed device state.
        envelope.payload as DomainEvents[typeof envelope.name][0],
      );
    } catch (err) {
      log.error({ err, event: envelope.name }, "cluster: a listener failed on a bridged event");
    }
  });
  subscriber.on("ready", () => {
    if (subscribedOnce) opts.onReconnect?.();
  });
  await subscriber.subscribe(channel);
  subscribedOnce = true;

  events.onLocalEmit = (name, payload) => {
    const text = JSON.stringify({ node: nodeName, name, payload } satisfies Envelope);
    inFlight++;
    publisher
      .publish(channel, text)
      .catch((err: unknown) =>
        log.error({ err: String(err), event: name }, "cluster: an event did not reach the bridge"),
      )
      .finally(() => inFlight--);
  };

  return {
    pending: () => inFlight,
    async stop() {
      events.onLocalEmit = null;
      // What this process emitted last still reaches the others.
      const until = Date.now() + 2000;
      while (inFlight > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
      await subscriber.quit().catch(() => subscriber.disconnect());
      await publisher.quit().catch(() => publisher.disconnect());
    },
  };
}
