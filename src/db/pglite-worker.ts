import path from "node:path";
import { Worker } from "node:worker_threads";
import type { PGlite } from "@electric-sql/pglite";
import { drizzle } from "drizzle-orm/pglite";
import {
  type Database,
  type DatabaseOptions,
  type Db,
  databaseOf,
  migratePglite,
} from "./database.ts";
import { paramText } from "./param-text.ts";
import type { ErrorData, Ready, Request, Response, ThreadOptions } from "./pglite-protocol.ts";
import { unpackRawRows } from "./raw-rows-transfer.ts";
import * as schema from "./schema.ts";

// The main thread's side of PGlite in a worker thread (src/db/pglite-thread.ts): every
// statement is a message to the thread and its rows a message back, so PGlite's
// WebAssembly never runs on this event loop. drizzle-orm/pglite drives it unchanged
// through ThreadClient, which offers the part of PGlite's API drizzle calls.

// .ts when the server runs from src/ (type stripping), .js when from its build.
const threadScript = new URL(`./pglite-thread${path.extname(import.meta.url)}`, import.meta.url);

/** A PostgreSQL error from the thread, with DatabaseError's fields (code, constraint…). */
function threadError(data: ErrorData): Error {
  const err = new Error(data.message);
  Object.assign(err, data.fields);
  err.name = data.name;
  return err;
}

/** One worker thread and its requests awaiting an answer, by id. */
class ThreadConnection {
  readonly ready: Promise<void>;
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  readonly #exited: Promise<void>;
  #lastId = 0;
  /** Why requests fail from now on: the thread closed or died. */
  #gone: Error | null = null;
  #closing = false;
  /** The thread opened PGlite: an exit before that is a failed start, reported by `ready`. */
  #opened = false;

  constructor(worker: Worker) {
    this.#worker = worker;
    let opened: (ok: Ready) => void = () => {};
    const ready = new Promise<Ready>((resolve) => {
      opened = resolve;
    });
    this.ready = ready.then((r) => {
      if (r.type === "failed") throw threadError(r.error);
      this.#opened = true;
      this.#idle();
    });
    worker.on("message", (msg: Response | Ready) => {
      if ("type" in msg) opened(msg);
      else this.#settle(msg);
    });
    worker.on("error", (err) => {
      this.#fail(err);
    });
    this.#exited = new Promise((resolve) => {
      worker.once("exit", (code) => {
        const err = new Error(`the PGlite thread exited (code ${code})`);
        opened({ type: "failed", error: { message: err.message, name: "Error", fields: {} } });
        this.#fail(err);
        resolve();
        // The database is gone while the instance runs: every later write would fail.
        // Stop the process (as a lost database connection would) so its supervisor
        // restarts it on the files PGlite synced, rather than serve errors for ever.
        if (this.#opened && !this.#closing) {
          const why = this.#gone ?? err;
          queueMicrotask(() => {
            throw why;
          });
        }
      });
    });
  }

  nextId(): number {
    return ++this.#lastId;
  }

  request(req: Request): Promise<unknown> {
    if (this.#gone) return Promise.reject(this.#gone);
    return new Promise((resolve, reject) => {
      // While an answer is due the thread keeps the process alive; idle, it does not
      // (an instance is kept alive by its servers, a CLI by its own awaiting).
      if (this.#pending.size === 0) this.#worker.ref();
      this.#pending.set(req.id, { resolve, reject });
      try {
        this.#worker.postMessage(req);
      } catch (err) {
        // A parameter that cannot be cloned (DataCloneError): nothing was sent.
        this.#pending.delete(req.id);
        this.#idle();
        reject(err);
      }
    });
  }

  /** Closes PGlite and waits for the thread to end. */
  async close(): Promise<void> {
    this.#closing = true;
    if (!this.#gone) {
      await this.request({ type: "close", id: this.nextId() });
      this.#worker.ref(); // until the thread has exited
    }
    await this.#exited;
  }

  #settle(res: Response): void {
    const p = this.#pending.get(res.id);
    if (!p) return;
    this.#pending.delete(res.id);
    this.#idle();
    if (!res.ok) p.reject(threadError(res.error));
    else if ("raw" in res) p.resolve(unpackRawRows(res.raw));
    else p.resolve(res.value);
  }

  #fail(err: Error): void {
    this.#gone ??= err;
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
  }

  #idle(): void {
    if (this.#pending.size === 0) this.#worker.unref();
  }
}

type QueryOptions = { rowMode?: "array" | "object"; parsers?: Record<number, unknown> };

/**
 * What drizzle-orm/pglite calls on a PGlite client, answered by the thread: query and
 * exec, and transaction(). `tx` set: the client of that open transaction (PGlite's
 * Transaction), whose statements the thread runs inside it.
 */
class ThreadClient {
  readonly #conn: ThreadConnection;
  readonly #tx: number | undefined;

  constructor(conn: ThreadConnection, tx: number | undefined) {
    this.#conn = conn;
    this.#tx = tx;
  }

  query(text: string, params: unknown[] = [], options: QueryOptions = {}): Promise<unknown> {
    const id = this.#conn.nextId();
    return this.#conn.request({
      type: "query",
      id,
      tx: this.#tx,
      sql: text,
      params,
      rowMode: options.rowMode ?? "object",
      // drizzle's parsers all return the text as is (see QueryRequest.identityTypes).
      identityTypes: Object.keys(options.parsers ?? {}).map(Number),
    });
  }

  exec(text: string): Promise<unknown> {
    return this.#conn.request({ type: "exec", id: this.#conn.nextId(), tx: this.#tx, sql: text });
  }

  /**
   * One PGlite transaction in the thread for the whole callback: its statements run in
   * it, in order; statements from outside wait in the thread until COMMIT or ROLLBACK
   * (PGlite's transaction lock), never run inside it. drizzle makes a nested transaction
   * a savepoint through this client's query(), so this is never called on a tx client.
   */
  async transaction<T>(callback: (tx: ThreadClient) => Promise<T>): Promise<T> {
    const tx = this.#conn.nextId();
    await this.#conn.request({ type: "begin", id: tx });
    let result: T;
    try {
      result = await callback(new ThreadClient(this.#conn, tx));
    } catch (err) {
      await this.#conn
        .request({ type: "end", id: this.#conn.nextId(), tx, commit: false })
        .catch(() => {}); // the callback's error is the one to report
      throw err;
    }
    await this.#conn.request({ type: "end", id: this.#conn.nextId(), tx, commit: true });
    return result;
  }
}

const YOUNG_GENERATION_MB = 4;

/** Opens PGlite in a worker thread of its own, drives it from here, and migrates it. */
export async function openPgliteWorker(opts: DatabaseOptions): Promise<Database> {
  const workerData: ThreadOptions = {
    pgliteDir: opts.pgliteDir,
    pgliteSharedBuffersMb: opts.pgliteSharedBuffersMb,
  };
  const conn = new ThreadConnection(
    new Worker(threadScript, {
      workerData,
      name: "pglite",
      // The thread's JS garbage is short-lived protocol messages: a small young
      // generation collects it as well, where V8 grew it to its 48 MB default under
      // a steady write load and kept it (RSS with 1 000 busy pipes, bench history).
      resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB },
    }),
  );
  await conn.ready;
  // drizzle types its client as PGlite; ThreadClient has the members it uses.
  const client = new ThreadClient(conn, undefined) as unknown as PGlite;
  // Here, not in the thread: the thread then never loads drizzle, the schema or the
  // migrator (src/db/pglite-open.ts), and the statements are the same either way.
  if (opts.migrate !== false) await migratePglite(client);
  return databaseOf({
    db: drizzle({ client, schema }) as unknown as Db,
    kind: "pglite",
    rawRows: async (q) =>
      (await conn.request({
        type: "rawRows",
        id: conn.nextId(),
        sql: q.sql,
        // As text here: the thread's pgliteRawRows binds them as they are.
        params: q.params.map(paramText),
      })) as (Buffer | null)[][],
    close: () => conn.close(),
  });
}
