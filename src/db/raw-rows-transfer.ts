import type { PackedRawRows } from "./pglite-protocol.ts";

// Database.rawRows across the PGlite thread: the column bytes cross as one ArrayBuffer
// moved (transferred) to the main thread, not copied, and not decoded into strings; the
// rows become Buffer views of it again on arrival.

/**
 * The rows of pgliteRawRows (views of one reply buffer) as one buffer to transfer and
 * their layout. The reply's own ArrayBuffer is moved when the result has it to itself;
 * a small reply may sit in Node's shared Buffer pool (Buffer.poolSize), which must not
 * be moved away from the thread's other Buffers: its bytes are copied instead.
 */
export function packRawRows(rows: (Buffer | null)[][]): PackedRawRows {
  let cells = 0;
  let source: ArrayBufferLike | undefined;
  let shared = true;
  for (const row of rows) {
    cells += row.length;
    for (const cell of row) {
      if (!cell) continue;
      source ??= cell.buffer;
      if (cell.buffer !== source) shared = false;
    }
  }
  const layout = new Int32Array(rows.length + cells * 2);
  const own =
    shared && source instanceof ArrayBuffer && source.byteLength > Buffer.poolSize ? source : null;
  let buffer: ArrayBuffer;
  if (own) buffer = own;
  else {
    let total = 0;
    for (const row of rows) for (const cell of row) total += cell?.length ?? 0;
    buffer = new ArrayBuffer(total);
  }
  const into = new Uint8Array(buffer);
  let at = 0;
  let copied = 0;
  for (const row of rows) {
    layout[at++] = row.length;
    for (const cell of row) {
      if (!cell) {
        layout[at++] = 0;
        layout[at++] = -1;
      } else if (own) {
        layout[at++] = cell.byteOffset;
        layout[at++] = cell.length;
      } else {
        into.set(cell, copied);
        layout[at++] = copied;
        layout[at++] = cell.length;
        copied += cell.length;
      }
    }
  }
  return { buffer, layout };
}

/** The rows again, each column a Buffer view of the transferred buffer (null for NULL). */
export function unpackRawRows({ buffer, layout }: PackedRawRows): (Buffer | null)[][] {
  const rows: (Buffer | null)[][] = [];
  let at = 0;
  while (at < layout.length) {
    const columns = layout[at++] as number;
    const row: (Buffer | null)[] = [];
    for (let i = 0; i < columns; i++) {
      const offset = layout[at++] as number;
      const length = layout[at++] as number;
      row.push(length < 0 ? null : Buffer.from(buffer, offset, length));
    }
    rows.push(row);
  }
  return rows;
}
