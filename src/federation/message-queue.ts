import { EventEmitter } from "node:events";
import type {
  MessageQueue,
  MessageQueueDepth,
  MessageQueueEnqueueOptions,
  MessageQueueListenOptions,
} from "@fedify/fedify";
import { sql } from "drizzle-orm";
import type { Logger } from "pino";
import { decryptJson, encryptJson } from "../crypto/aes-gcm.ts";
import type { DbLike } from "../db/database.ts";
import { rowsOf } from "./kv-store.ts";

// Fedify's message queue on the project's database. Messages survive a restart;
// a worker claims ready ones with FOR UPDATE SKIP LOCKED and a lease, so two
// workers (or a crashed one) never deliver a message twice at the same time.
//
// Ordering: among messages sharing an ordering key only the oldest one is ever
// claimable, and it stays in the table (leased) while it runs. A failure keeps
// it at the head with a later run_at (exponential back-off): the queue retries
// by itself (`nativeRetrial`), so a follower that was down receives everything
// in the original order when it comes back.
//
// Messages are stored encrypted: outbox messages carry the actors' signing keys.
// Messages `storePlain` picks (readings: values and URLs, signed only when sent,
// the same values the history table keeps in clear) are stored as JSON text:
// encrypting thousands of values per second was a tenth of the sender's CPU.

export type DrizzleMessageQueueOptions = {
  db: DbLike;
  encryptKey: Uint8Array;
  log: Logger;
  /** Messages handled at the same time by listen(). */
  concurrency?: number;
  /** Poll period for delayed messages and retries (enqueues in this process wake at once). */
  pollMs?: number;
  /** A claimed message not finished within this is claimable again (a crashed worker). */
  leaseMs?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** A message still failing this long after it was first enqueued is dropped. */
  maxAgeMs?: number;
  /**
   * Consulted before each message is handled: "drop" deletes it unhandled (a peer
   * blocked since it was queued), "hold" leaves it queued (federation off).
   */
  gate?: (message: unknown) => "run" | "drop" | "hold";
  /** Told after messages were queued in this process (direct sending yields to them). */
  onEnqueue?: (orderingKey: string | null) => void;
  /** Messages without secrets, stored as plain JSON (the others are encrypted). */
  storePlain?: (message: unknown) => boolean;
  /** Told after each handled message, and after each failed attempt (statistics). */
  onHandled?: (message: unknown, error: unknown | null) => void;
  /** Told when a message leaves the queue for good (handled, dropped or given up). */
  onDone?: (message: unknown) => void;
  /**
   * Handlers of our own message types (`message.type`), sharing the table and its
   * ordering with Fedify's messages; any other type goes to Fedify's handler.
   */
  handlers?: Record<string, (message: unknown) => Promise<void>>;
};

/** Outcomes of handled messages since start, for the metrics endpoint (src/metrics/). */
export type DeliveryStats = {
  delivered: number;
  /** Failed attempts (each is retried later). */
  failed: number;
  /** Dropped unhandled by the gate (a peer blocked since it was queued). */
  dropped: number;
  /** Still failing after the maximum age: removed without being delivered. */
  givenUp: number;
};

type Claimed = { id: number; message: string; attempts: number; created_at: string | Date };

export class DrizzleMessageQueue implements MessageQueue {
  readonly nativeRetrial = true;
  readonly #o: Required<
    Omit<
      DrizzleMessageQueueOptions,
      "gate" | "onHandled" | "onDone" | "handlers" | "storePlain" | "onEnqueue"
    >
  > &
    Pick<
      DrizzleMessageQueueOptions,
      "gate" | "onHandled" | "onDone" | "handlers" | "storePlain" | "onEnqueue"
    >;
  readonly #wake = new EventEmitter();
  readonly stats: DeliveryStats = { delivered: 0, failed: 0, dropped: 0, givenUp: 0 };

  constructor(options: DrizzleMessageQueueOptions) {
    this.#o = {
      concurrency: 8,
      pollMs: 1000,
      leaseMs: 60_000,
      retryBaseMs: 1000,
      retryMaxMs: 5 * 60_000,
      maxAgeMs: 3 * 24 * 3600_000,
      ...options,
    };
    this.#wake.setMaxListeners(0);
  }

  async enqueue(message: unknown, options?: MessageQueueEnqueueOptions): Promise<void> {
    await this.enqueueMany([message], options);
  }

  async enqueueMany(messages: readonly unknown[], options?: MessageQueueEnqueueOptions) {
    if (!messages.length) return;
    const delayMs = options?.delay ? Math.max(0, options.delay.total("millisecond")) : 0;
    const runAt = new Date(Date.now() + delayMs).toISOString();
    const key = options?.orderingKey ?? null;
    const rows = messages.map(
      (m) =>
        sql`(${this.#o.storePlain?.(m) ? JSON.stringify(m) : encryptJson(this.#o.encryptKey, m)}, ${key}::text, ${runAt}::timestamptz)`,
    );
    await this.#o.db.execute(sql`
      insert into federation_queue (message, ordering_key, run_at)
      values ${sql.join(rows, sql`, `)}`);
    this.#o.onEnqueue?.(key);
    if (delayMs === 0) this.#wake.emit("wake");
    else setTimeout(() => this.#wake.emit("wake"), delayMs).unref();
  }

  async getDepth(): Promise<MessageQueueDepth> {
    const [row] = rowsOf<{ queued: number; ready: number }>(
      await this.#o.db.execute(sql`
        select count(*)::int as queued,
               count(*) filter (where run_at <= now())::int as ready
        from federation_queue`),
    );
    const queued = Number(row?.queued ?? 0);
    const ready = Number(row?.ready ?? 0);
    return { queued, ready, delayed: queued - ready };
  }

  /** Messages queued (in any process) under an ordering key. */
  async countOrderingKey(key: string): Promise<number> {
    const [row] = rowsOf<{ n: number }>(
      await this.#o.db.execute(
        sql`select count(*)::int as n from federation_queue where ordering_key = ${key}`,
      ),
    );
    return Number(row?.n ?? 0);
  }

  /** Claims up to `limit` ready messages, each the head of its ordering key. */
  async #claim(limit: number): Promise<Claimed[]> {
    return rowsOf<Claimed>(
      await this.#o.db.execute(sql`
        with cand as (
          select q.id from federation_queue q
          where q.run_at <= now()
            and (q.locked_until is null or q.locked_until < now())
            and (q.ordering_key is null or not exists (
              select 1 from federation_queue p
              where p.ordering_key = q.ordering_key and p.id < q.id))
          order by q.id
          limit ${limit}
          for update skip locked)
        update federation_queue u
        set locked_until = now() + ${`${this.#o.leaseMs} milliseconds`}::interval
        from cand where u.id = cand.id
        returning u.id, u.message, u.attempts, u.created_at`),
    ).sort((a, b) => Number(a.id) - Number(b.id));
  }

  async #finish(id: number): Promise<void> {
    await this.#o.db.execute(sql`delete from federation_queue where id = ${id}`);
  }

  async #release(id: number): Promise<void> {
    await this.#o.db.execute(
      sql`update federation_queue set locked_until = null, run_at = now() + interval '1 second' where id = ${id}`,
    );
  }

  async #fail(c: Claimed, err: unknown, message: unknown): Promise<void> {
    const age = Date.now() - new Date(c.created_at).getTime();
    if (age > this.#o.maxAgeMs) {
      this.#o.log.warn(
        { id: c.id, attempts: c.attempts + 1 },
        "federation queue: giving up on a message",
      );
      this.stats.givenUp++;
      await this.#finish(c.id);
      this.#o.onDone?.(message);
      return;
    }
    const delay = Math.min(this.#o.retryMaxMs, this.#o.retryBaseMs * 2 ** Math.min(c.attempts, 20));
    const reason = err instanceof Error ? err.message : String(err);
    await this.#o.db.execute(sql`
      update federation_queue
      set locked_until = null, attempts = attempts + 1, last_error = ${reason.slice(0, 500)},
          run_at = now() + ${`${Math.round(delay)} milliseconds`}::interval
      where id = ${c.id}`);
    setTimeout(() => this.#wake.emit("wake"), delay).unref();
  }

  async listen(
    handler: (message: unknown) => Promise<void> | void,
    options: MessageQueueListenOptions = {},
  ): Promise<void> {
    const { signal } = options;
    const inFlight = new Set<Promise<void>>();
    let wakeRequested = true;
    let resolveWait: (() => void) | null = null;
    const wake = () => {
      wakeRequested = true;
      resolveWait?.();
    };
    this.#wake.on("wake", wake);
    signal?.addEventListener("abort", wake);
    const timer = setInterval(wake, this.#o.pollMs);
    timer.unref();
    const run = async (c: Claimed) => {
      let message: unknown = null;
      try {
        // Encrypted text is base64 and dots; plain JSON (storePlain) is an object.
        message = c.message.startsWith("{")
          ? (JSON.parse(c.message) as unknown)
          : decryptJson<unknown>(this.#o.encryptKey, c.message);
        const gate = this.#o.gate?.(message) ?? "run";
        if (gate === "hold") return void (await this.#release(c.id));
        if (gate === "run") {
          const type = (message as { type?: unknown } | null)?.type;
          const own = typeof type === "string" ? this.#o.handlers?.[type] : undefined;
          await (own ? own(message) : handler(message));
          this.stats.delivered++;
          this.#o.onHandled?.(message, null);
        } else {
          this.stats.dropped++;
        }
        await this.#finish(c.id);
        this.#o.onDone?.(message);
      } catch (err) {
        this.stats.failed++;
        this.#o.onHandled?.(message, err);
        await this.#fail(c, err, message).catch((e: unknown) =>
          this.#o.log.error({ err: e }, "federation queue: recording a failure failed"),
        );
      }
    };
    try {
      while (!signal?.aborted) {
        const free = this.#o.concurrency - inFlight.size;
        if (wakeRequested && free > 0) {
          wakeRequested = false;
          let claimed: Claimed[] = [];
          try {
            claimed = await this.#claim(free);
          } catch (err) {
            if (signal?.aborted) break;
            this.#o.log.error({ err }, "federation queue: claiming failed");
          }
          for (const c of claimed) {
            const p = run(c).finally(() => {
              inFlight.delete(p);
              wake(); // a slot is free, and its ordering key may have a successor
            });
            inFlight.add(p);
          }
          // A full batch means more may be waiting.
          if (claimed.length === free) wakeRequested = true;
          continue;
        }
        await new Promise<void>((resolve) => {
          resolveWait = resolve;
          const free = this.#o.concurrency - inFlight.size;
          if ((wakeRequested && free > 0) || signal?.aborted) resolve();
        });
        resolveWait = null;
      }
      await Promise.allSettled([...inFlight]);
    } finally {
      clearInterval(timer);
      this.#wake.off("wake", wake);
      signal?.removeEventListener("abort", wake);
    }
  }
}
