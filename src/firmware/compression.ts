import { promisify } from "node:util";
import { constants, crc32, deflateRaw, deflateRawSync, deflateSync, gzipSync } from "node:zlib";
import { unprocessable } from "../http/errors.ts";

// The tgz a device downloads (device-protocol §6): zlib (wbits 9..15), gzip (25..31)
// or raw deflate (-15..-9), as Python's zlib names them. The default wbits 9 (a
// 512-byte window) is what MicroPython's deflate.DeflateIO(f, AUTO, 9) can inflate.
//
// A mass update builds one archive per unit of the same version, and only the last
// two members (env.json, schema.json) differ. So the shared prefix is deflated once
// and cached: it ends with a sync flush (byte-aligned, no final block), after which
// a fresh raw deflate of the per-unit suffix is a valid continuation — the inflater
// sees one stream. The zlib/gzip wrappers are built around it with the header bytes
// taken from node:zlib itself and the Adler-32 / CRC-32 carried over the prefix.

export type CompressionFormat = "zlib" | "gzip" | "raw";
export type Compression = {
  format: CompressionFormat;
  /** The deflate window (9..15), whatever the wrapper. */
  windowBits: number;
  level: number;
  /** Cache key of the compressed prefix. */
  key: string;
};

export const DEFAULT_WBITS = 9;
export const DEFAULT_LEVEL = 9;

export function isValidWbits(wbits: number): boolean {
  return (
    Number.isInteger(wbits) &&
    ((wbits >= 9 && wbits <= 15) || (wbits >= 25 && wbits <= 31) || (wbits >= -15 && wbits <= -9))
  );
}

export function isValidLevel(level: number): boolean {
  return Number.isInteger(level) && level >= -1 && level <= 9;
}

export function parseCompression(wbits = DEFAULT_WBITS, level = DEFAULT_LEVEL): Compression {
  if (!isValidWbits(wbits)) {
    throw unprocessable("wbits must be 9..15 (zlib), 25..31 (gzip) or -15..-9 (raw deflate)");
  }
  if (!isValidLevel(level)) throw unprocessable("level must be -1..9");
  const format: CompressionFormat = wbits < 0 ? "raw" : wbits > 15 ? "gzip" : "zlib";
  const windowBits = format === "raw" ? -wbits : format === "gzip" ? wbits - 16 : wbits;
  return { format, windowBits, level, key: `${wbits}:${level}` };
}

/** A deflated prefix that any suffix can follow, with its running check value. */
export type CompressedPrefix = { body: Buffer; check: number; length: number };

const ADLER_MOD = 65521;
// Largest run of bytes before the sums must be reduced to stay exact in doubles.
const ADLER_NMAX = 5552;

function adler32(data: Buffer, prev = 1): number {
  let a = prev & 0xffff;
  let b = prev >>> 16;
  let i = 0;
  while (i < data.length) {
    const end = Math.min(i + ADLER_NMAX, data.length);
    for (; i < end; i++) {
      a += data[i] as number;
      b += a;
    }
    a %= ADLER_MOD;
    b %= ADLER_MOD;
  }
  return ((b << 16) | a) >>> 0;
}

function checkOf(c: Compression, data: Buffer, prev?: number): number {
  if (c.format === "zlib") return adler32(data, prev);
  if (c.format === "gzip") return crc32(data, prev ?? 0);
  return 0;
}

const deflateRawAsync = promisify(deflateRaw);

/** Deflates the shared prefix off the event loop (it can be megabytes at level 9). */
export async function compressPrefix(c: Compression, prefix: Buffer): Promise<CompressedPrefix> {
  const body = await deflateRawAsync(prefix, {
    windowBits: c.windowBits,
    level: c.level,
    finishFlush: constants.Z_SYNC_FLUSH,
  });
  return { body, check: checkOf(c, prefix), length: prefix.length };
}

const headers = new Map<string, Buffer>();

/** The zlib (2-byte) or gzip (10-byte) header exactly as node:zlib writes it for c. */
function wrapperHeader(c: Compression): Buffer {
  let head = headers.get(c.key);
  if (!head) {
    const opts = { windowBits: c.windowBits, level: c.level };
    head =
      c.format === "zlib"
        ? deflateSync(Buffer.alloc(0), opts).subarray(0, 2)
        : gzipSync(Buffer.alloc(0), opts).subarray(0, 10);
    headers.set(c.key, head);
  }
  return head;
}

/**
 * The whole stream as parts: wrapper header, cached prefix, freshly deflated suffix,
 * trailer. The prefix is the cache's own buffer, not a copy, so a download costs
 * only its small suffix in memory.
 */
export function compressWithPrefix(
  c: Compression,
  prefix: CompressedPrefix,
  suffix: Buffer,
): Buffer[] {
  const tail = deflateRawSync(suffix, { windowBits: c.windowBits, level: c.level });
  const check = checkOf(c, suffix, prefix.check);
  if (c.format === "raw") return [prefix.body, tail];
  if (c.format === "zlib") {
    // CMF/FLG exactly as zlib writes them for this window and level (CINFO = wbits - 8).
    const trailer = Buffer.alloc(4);
    trailer.writeUInt32BE(check);
    return [wrapperHeader(c), prefix.body, tail, trailer];
  }
  // gzip: node's 10-byte header (mtime 0, so deterministic), then CRC-32 and size mod 2^32.
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(check);
  trailer.writeUInt32LE((prefix.length + suffix.length) % 2 ** 32, 4);
  return [wrapperHeader(c), prefix.body, tail, trailer];
}
