import type { Context } from "@fedify/fedify";
import { Activity } from "@fedify/vocab";
import { and, count, desc, eq, lt, sql } from "drizzle-orm";
import type { Logger } from "pino";
import type { DbLike } from "../db/database.ts";
import { federationOutbox } from "../db/schema.ts";
import { INSTANCE_ACTOR } from "./core.ts";

// What each local actor sent, for its ActivityPub outbox. Every activity leaves signed
// by the instance actor, so the instance's outbox holds all of them and the unit or
// output an activity was sent for holds it too (Accept/Reject of a Follow of an output,
// a unit's Follow/Undo). Rows are written off the sending path, at most every
// FLUSH_MS, in small inserts (on PGlite each statement holds the event loop).
//
// Reading batches are many (dozens a second to one peer): each actor gets at most one
// Add per flush, summarizing the batches that carried its readings since the previous
// one (the last batch's id, the recipients, how many readings). An outbox here is a
// view of recent activity, not a log.
//
// Each actor keeps its newest KEEP rows: once TRIM_EVERY rows were added to it (since
// start or its last trim), everything below its KEEP-th newest row goes, found on the
// (actor, id) index. A trim reads about KEEP index entries, so few run per write.

/** Newest activities kept per actor (up to TRIM_EVERY more between trims). */
export const OUTBOX_KEEP = 200;
const TRIM_EVERY = 20;
const TRIMS_PER_WRITE = 10;
const FLUSH_MS = 5000;
const INSERT_CHUNK = 25;
const AS_CONTEXT = "https://www.w3.org/ns/activitystreams";

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export type Outbox = {
  /** An activity sent for `actor` (a unit or output identifier; null: the instance alone). */
  record(activity: Activity, actor: string | null): void;
  /** A reading batch enqueued for `to`: noted for the instance and each output it carries. */
  readingsSent(activityId: URL | null, to: string, readings: readonly { variable: URL }[]): void;
  /** Newest first, rows older than `before` (a row id; null: the newest). */
  page(
    ctx: Context<void>,
    actor: string,
    before: number | null,
    limit: number,
  ): Promise<{ items: Activity[]; next: number | null }>;
  count(actor: string): Promise<number>;
  /** Writes what is pending now (tests, stop). */
  flush(): Promise<void>;
  stop(): Promise<void>;
};

/** A row to write: the activity as compact JSON-LD, made when written. */
type Entry = { actor: string; at: number; json: () => Promise<ActivityJson | null> };
type ActivityJson = { id: string; type: string } & Record<string, unknown>;
type Summary = { lastId: string; to: Set<string>; readings: number; batches: number; at: number };

export function createOutbox(db: DbLike, log: Logger, instanceUri: () => URL): Outbox {
  let entries: Entry[] = [];
  let summaries = new Map<string, Summary>();
  let timer: NodeJS.Timeout | null = null;
  let writing: Promise<void> = Promise.resolve();
  /** Rows added per actor since its last trim. */
  const added = new Map<string, number>();

  const schedule = () => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = null;
      void flush();
    }, FLUSH_MS);
    timer.unref();
  };

  // Written as plain JSON: a hundred outputs' summaries through Fedify's JSON-LD
  // compaction would hold the event loop for tens of milliseconds each second.
  const summarize = (actor: string, s: Summary) => async (): Promise<ActivityJson> => ({
    "@context": AS_CONTEXT,
    id: s.lastId,
    type: "Add",
    actor: instanceUri().href,
    to: [...s.to],
    summary:
      actor === INSTANCE_ACTOR
        ? `${s.readings} readings in ${s.batches} batches`
        : `${s.readings} readings of this output in ${s.batches} batches`,
    published: new Date(s.at).toISOString(),
  });

  async function write(batch: Entry[]): Promise<void> {
    batch.sort((a, b) => a.at - b.at); // ids follow time: newest first is id descending
    const rows = [];
    for (const e of batch) {
      const json = await e.json();
      if (!json) continue;
      rows.push({
        actor: e.actor,
        activityId: json.id,
        type: json.type,
        activity: json,
        createdAt: new Date(e.at),
      });
    }
    for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
      if (i > 0) await yieldToLoop();
      await db.insert(federationOutbox).values(rows.slice(i, i + INSERT_CHUNK));
    }
    for (const r of rows) added.set(r.actor, (added.get(r.actor) ?? 0) + 1);
    let trims = 0;
    for (const [actor, n] of added) {
      if (n < TRIM_EVERY) continue;
      if (trims++ >= TRIMS_PER_WRITE) break; // the others at the next write
      added.delete(actor);
      await yieldToLoop();
      await db.execute(sql`
        DELETE FROM ${federationOutbox}
        WHERE ${federationOutbox.actor} = ${actor} AND ${federationOutbox.id} <= (
          SELECT x.id FROM ${federationOutbox} x WHERE x.actor = ${actor}
          ORDER BY x.id DESC OFFSET ${OUTBOX_KEEP} LIMIT 1
        )`);
    }
  }

  function flush(): Promise<void> {
    if (timer) clearTimeout(timer);
    timer = null;
    const batch = entries;
    entries = [];
    for (const [actor, s] of summaries) batch.push({ actor, at: s.at, json: summarize(actor, s) });
    summaries = new Map();
    if (!batch.length) return writing;
    // One write at a time: a trim must not race the next insert of the same actor.
    writing = writing
      .then(() => write(batch))
      .catch((err: unknown) => log.warn({ err }, "federation: recording the outbox failed"));
    return writing;
  }

  return {
    record(activity, actor) {
      const at = Date.now();
      let json: Promise<ActivityJson | null> | null = null;
      // Once for both rows; an activity without an id cannot be listed.
      const get = () => {
        json ??= activity.id
          ? (activity.toJsonLd() as Promise<ActivityJson>)
          : Promise.resolve(null);
        return json;
      };
      entries.push({ actor: INSTANCE_ACTOR, at, json: get });
      if (actor && actor !== INSTANCE_ACTOR) entries.push({ actor, at, json: get });
      schedule();
    },

    readingsSent(activityId, to, readings) {
      if (!activityId) return;
      const at = Date.now();
      // Counted by URL object first: the relay reuses one per output.
      const perUrl = new Map<URL, number>();
      for (const r of readings) perUrl.set(r.variable, (perUrl.get(r.variable) ?? 0) + 1);
      const perActor = new Map<string, number>([[INSTANCE_ACTOR, readings.length]]);
      for (const [url, n] of perUrl) {
        const id = url.pathname.slice(url.pathname.lastIndexOf("/") + 1);
        perActor.set(id, (perActor.get(id) ?? 0) + n);
      }
      for (const [actor, n] of perActor) {
        let s = summaries.get(actor);
        if (!s) {
          s = { lastId: "", to: new Set(), readings: 0, batches: 0, at };
          summaries.set(actor, s);
        }
        s.lastId = activityId.href;
        s.to.add(to);
        s.readings += n;
        s.batches++;
        s.at = at;
      }
      schedule();
    },

    async page(ctx, actor, before, limit) {
      const rows = await db
        .select({ id: federationOutbox.id, activity: federationOutbox.activity })
        .from(federationOutbox)
        .where(
          before == null
            ? eq(federationOutbox.actor, actor)
            : and(eq(federationOutbox.actor, actor), lt(federationOutbox.id, before)),
        )
        .orderBy(desc(federationOutbox.id))
        .limit(limit + 1);
      const items: Activity[] = [];
      for (const r of rows.slice(0, limit)) {
        try {
          items.push(
            await Activity.fromJsonLd(r.activity, {
              documentLoader: ctx.documentLoader,
              contextLoader: ctx.contextLoader,
            }),
          );
        } catch (err) {
          log.warn({ err, row: r.id }, "federation: an outbox row could not be read");
        }
      }
      const last = rows[limit - 1];
      return { items, next: rows.length > limit && last ? last.id : null };
    },

    async count(actor) {
      const [row] = await db
        .select({ n: count() })
        .from(federationOutbox)
        .where(eq(federationOutbox.actor, actor));
      return row?.n ?? 0;
    },

    flush,

    async stop() {
      await flush();
    },
  };
}
