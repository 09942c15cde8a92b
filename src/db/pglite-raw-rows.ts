import type { PGlite } from "@electric-sql/pglite";
import { paramText } from "./param-text.ts";

/** PGlite's wire-protocol serializer (its `protocol.serialize`), passed in so this module loads nothing. */
type Serialize = {
  parse(opts: { text: string }): Uint8Array;
  bind(opts: { values: (string | null)[] }): Uint8Array;
  execute(opts: Record<string, never>): Uint8Array;
  sync(): Uint8Array;
};

/**
 * Runs one query on PGlite and answers its rows as each column's bytes, undecoded: the
 * embedded twin of postgres.js's raw mode (Database.rawRows). PGlite's own query path
 * copies every output chunk, decodes each text column to a string and keeps both: for a
 * page of history (~850 kB of JSON) that is ~2 MB on the JS heap per read, enough to start
 * a full mark-compact every few reads in a server's heap (the reads' tail latency). Here
 * the protocol bytes are collected as they come and only sliced.
 */
export async function pgliteRawRows(
  client: PGlite,
  serialize: Serialize,
  query: { sql: string; params: unknown[] },
): Promise<(Buffer | null)[][]> {
  const message = Buffer.concat([
    serialize.parse({ text: query.sql }),
    serialize.bind({ values: query.params.map(paramText) }),
    serialize.execute({}),
    serialize.sync(),
  ]);
  const chunks: Buffer[] = [];
  // PGlite's transaction lock, then its query lock (runExclusive holds only the latter):
  // the read waits for an open transaction to end instead of running inside it, and no
  // other statement interleaves with its messages.
  await client._runExclusiveTransaction(() =>
    client.runExclusive(() =>
      client.execProtocolRawStream(message, {
        syncToFs: false,
        // The chunk is a view of the WebAssembly memory, reused after this call: copy it.
        onRawData: (chunk) => {
          chunks.push(Buffer.from(chunk));
        },
      }),
    ),
  );
  return dataRows(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks));
}

const DATA_ROW = 0x44; // 'D'
const ERROR_RESPONSE = 0x45; // 'E'

/** The DataRow messages of a backend reply; an ErrorResponse becomes a thrown error. */
function dataRows(reply: Buffer): (Buffer | null)[][] {
  const rows: (Buffer | null)[][] = [];
  let at = 0;
  while (at + 5 <= reply.length) {
    const type = reply[at];
    const end = at + 1 + reply.readInt32BE(at + 1);
    if (type === DATA_ROW) {
      const fields = reply.readInt16BE(at + 5);
      const row: (Buffer | null)[] = [];
      let f = at + 7;
      for (let i = 0; i < fields; i++) {
        const len = reply.readInt32BE(f);
        f += 4;
        if (len < 0) row.push(null);
        else {
          row.push(reply.subarray(f, f + len));
          f += len;
        }
      }
      rows.push(row);
    } else if (type === ERROR_RESPONSE) {
      throw new Error(`PGlite: ${errorMessage(reply.subarray(at + 5, end))}`);
    }
    at = end;
  }
  return rows;
}

/** The 'M' (message) field of an ErrorResponse body: type byte, text, NUL, …, NUL. */
function errorMessage(body: Buffer): string {
  let at = 0;
  while (at < body.length && body[at] !== 0) {
    const end = body.indexOf(0, at + 1);
    if (body[at] === 0x4d) return body.toString("utf8", at + 1, end);
    at = end + 1;
  }
  return "query failed";
}
