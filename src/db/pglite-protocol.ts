// The messages between the main thread (src/db/pglite-worker.ts) and the thread that
// runs PGlite (src/db/pglite-thread.ts). Everything here crosses by structured clone:
// plain data only, no functions (so no parsers: see QueryRequest.identityTypes).

/** What the thread opens, as createDatabase was given it (workerData). */
export type ThreadOptions = {
  pgliteDir: string | undefined;
  pgliteSharedBuffersMb: number | undefined;
};

/**
 * One statement through PGlite's query(). `tx`: the id of the open transaction it belongs
 * to (the id of that transaction's begin request); absent, it runs outside any.
 */
export type QueryRequest = {
  type: "query";
  id: number;
  tx?: number | undefined;
  sql: string;
  params: unknown[];
  rowMode: "array" | "object";
  /**
   * The type OIDs whose values come back as PostgreSQL's text: drizzle-orm/pglite gives
   * PGlite identity parsers for timestamps, dates, intervals and their arrays (it maps them
   * itself), and functions cannot cross threads, so the thread rebuilds them from this list.
   */
  identityTypes: number[];
};

/** Statements without parameters through PGlite's exec() (several, separated by `;`). */
export type ExecRequest = { type: "exec"; id: number; tx?: number | undefined; sql: string };

/** A query's rows as the protocol's bytes (Database.rawRows), outside any transaction. */
export type RawRowsRequest = { type: "rawRows"; id: number; sql: string; params: unknown[] };

/** Opens a transaction; answered once BEGIN ran, and its id is this request's id. */
export type BeginRequest = { type: "begin"; id: number };

/** Ends the transaction `tx`: COMMIT, or ROLLBACK; answered once that ran. */
export type EndRequest = { type: "end"; id: number; tx: number; commit: boolean };

/** Closes PGlite (its files synced); the thread exits after answering. */
export type CloseRequest = { type: "close"; id: number };

export type Request =
  | QueryRequest
  | ExecRequest
  | RawRowsRequest
  | BeginRequest
  | EndRequest
  | CloseRequest;

/**
 * A PostgreSQL error as the thread caught it: its message, its name, and the fields of
 * PGlite's DatabaseError (code, constraint, detail, table…) that src/db/pg-errors.ts and
 * callers read. Only strings and numbers are kept (the error also holds the query options).
 */
export type ErrorData = { message: string; name: string; fields: Record<string, string | number> };

/**
 * Rows of bytes in one buffer: `layout` holds, per row, its column count then each
 * column's offset and length in `buffer` (length -1: NULL). See src/db/raw-rows-transfer.ts.
 */
export type PackedRawRows = { buffer: ArrayBuffer; layout: Int32Array };

export type Response =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: true; raw: PackedRawRows }
  | { id: number; ok: false; error: ErrorData };

/** The first message from the thread: PGlite is open and migrated, or it failed to. */
export type Ready = { type: "ready" } | { type: "failed"; error: ErrorData };
