import { type MessagePort, parentPort, workerData } from "node:worker_threads";
import type { PGlite, Transaction } from "@electric-sql/pglite";
import { fullGc, startIdleTrim } from "../process-memory.ts";
import { openPgliteInstance } from "./pglite-open.ts";
import type {
  ErrorData,
  QueryRequest,
  Ready,
  Request,
  Response,
  ThreadOptions,
} from "./pglite-protocol.ts";
import { pgliteRawRows } from "./pglite-raw-rows.ts";
import { packRawRows } from "./raw-rows-transfer.ts";

// The worker thread that owns PGlite (started by src/db/pglite-worker.ts): its
// WebAssembly runs every statement synchronously, here instead of on the main event
// loop. It answers the main thread's requests (src/db/pglite-protocol.ts) in the order
// PGlite's own locks give: a statement outside a transaction waits while one is open.

if (!parentPort) throw new Error("pglite-thread.ts runs as a worker thread (pglite-worker.ts)");
const port: MessagePort = parentPort;
const opts = workerData as ThreadOptions;

/** An open transaction: PGlite's handle, and how to end it (commit or roll back). */
type OpenTx = { tx: Transaction; end: (commit: boolean) => void };
const open = new Map<number, OpenTx>();

/** What a transaction callback throws to make PGlite roll back (and not an error). */
const ROLLBACK = Symbol("rollback");

function errorData(err: unknown): ErrorData {
  if (!(err instanceof Error)) return { message: String(err), name: "Error", fields: {} };
  const fields: Record<string, string | number> = {};
  for (const [key, value] of Object.entries(err)) {
    // PGlite's DatabaseError: code, constraint, detail, table, severity…; `query` is the
    // statement itself, which the main thread has (and drizzle's error reports).
    if (key === "query") continue;
    if (typeof value === "string" || typeof value === "number") fields[key] = value;
  }
  return { message: err.message, name: err.name, fields };
}

function identityParsers(types: number[]): Record<number, (value: string) => string> {
  const parsers: Record<number, (value: string) => string> = {};
  for (const oid of types) parsers[oid] = (value) => value;
  return parsers;
}

/** Where a statement runs: PGlite itself, or the open transaction it belongs to. */
function txOf(id: number | undefined): Pick<Transaction, "query" | "exec"> {
  if (id === undefined) return pg;
  const t = open.get(id);
  if (!t) throw new Error("Transaction is closed");
  return t.tx;
}

function query(req: QueryRequest): Promise<unknown> {
  return txOf(req.tx).query(req.sql, req.params, {
    rowMode: req.rowMode,
    parsers: identityParsers(req.identityTypes),
  });
}

/** The end request waiting on each transaction's COMMIT or ROLLBACK, by transaction id. */
const ending = new Map<number, number>();

/**
 * Opens a transaction and answers once BEGIN ran; PGlite's transaction() then stays open
 * (holding its transaction lock: statements outside it queue behind) until `end` comes.
 */
function begin(id: number): void {
  let opened = false;
  pg.transaction(async (tx) => {
    const commit = await new Promise<boolean>((resolve) => {
      open.set(id, { tx, end: resolve });
      opened = true;
      reply({ id, ok: true, value: null });
    });
    if (!commit) throw ROLLBACK;
  })
    .then(
      () => null,
      (err: unknown) => (err === ROLLBACK ? null : err),
    )
    .then((err) => {
      open.delete(id);
      const endId = ending.get(id);
      ending.delete(id);
      // BEGIN itself failed (PGlite closing): the begin request gets the error.
      if (!opened) reply({ id, ok: false, error: errorData(err) });
      else if (endId !== undefined)
        reply(
          err
            ? { id: endId, ok: false, error: errorData(err) }
            : { id: endId, ok: true, value: null },
        );
    });
}

/** Ends transaction `tx`; answered when its COMMIT (which may fail) or ROLLBACK ran. */
function end(id: number, tx: number, commit: boolean): void {
  const t = open.get(tx);
  if (!t) {
    reply({ id, ok: false, error: errorData(new Error("Transaction is closed")) });
    return;
  }
  // Statements of it still arriving are refused from here on, as PGlite's own would be.
  open.delete(tx);
  ending.set(tx, id);
  t.end(commit);
}

function reply(res: Response, transfer: ArrayBuffer[] = []): void {
  port.postMessage(res, transfer);
}

async function answer(req: Request): Promise<void> {
  try {
    switch (req.type) {
      case "query":
        reply({ id: req.id, ok: true, value: await query(req) });
        return;
      case "exec":
        reply({ id: req.id, ok: true, value: await txOf(req.tx).exec(req.sql) });
        return;
      case "rawRows": {
        const rows = await pgliteRawRows(pg, protocol.serialize, {
          sql: req.sql,
          params: req.params,
        });
        const raw = packRawRows(rows);
        reply({ id: req.id, ok: true, raw }, [raw.buffer, raw.layout.buffer as ArrayBuffer]);
        return;
      }
      case "begin":
        begin(req.id);
        return;
      case "end":
        end(req.id, req.tx, req.commit);
        return;
      case "close":
        await pg.close();
        reply({ id: req.id, ok: true, value: null });
        // Nothing else keeps this thread alive: it exits, and the main thread sees it.
        port.close();
        return;
    }
  } catch (err) {
    reply({ id: req.id, ok: false, error: errorData(err) });
  }
}

const { protocol } = await import("@electric-sql/pglite");
let pg: PGlite;
try {
  pg = await openPgliteInstance(opts);
  // Opening (the WebAssembly module, its file-system image) leaves tens of MB of this
  // thread's heap garbage that an idle instance would keep.
  const gc = fullGc();
  gc();
  // A burst of statements leaves this thread's garbage behind as well (see there).
  startIdleTrim(gc);
  port.on("message", (req: Request) => {
    void answer(req);
  });
  port.postMessage({ type: "ready" } satisfies Ready);
} catch (err) {
  // The main thread rejects createDatabase with it; with the port closed this thread ends.
  port.postMessage({ type: "failed", error: errorData(err) } satisfies Ready);
  port.close();
}
