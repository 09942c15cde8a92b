import { unprocessable } from "../http/errors.ts";
import type { FirmwareFile } from "./firmware-tree.ts";

// The firmware tar is written here, header by header, rather than with tar-stream's
// pack(): pack() switches to pax headers (typeflag 'x') or the ustar prefix field on
// its own for long or non-ASCII names, and MicroPython's tarfile reads neither — it
// takes the name field as is and drops its first two characters ("./"). Writing the
// 512-byte ustar header ourselves makes every byte a known, deterministic value.

const BLOCK = 512;
/** Names fill the 100-byte name field with at least one NUL left (device-protocol §6). */
export const MAX_NAME_BYTES = 99;
/** The end-of-archive marker: two zero blocks. */
export const TAR_END = Buffer.alloc(2 * BLOCK);

function octal(value: number, width: number): string {
  // width-1 octal digits and a NUL, as GNU tar and Python's tarfile write them.
  return `${value.toString(8).padStart(width - 1, "0")}\0`;
}

/** The `./`-prefixed member name; a path the device format cannot carry is a 422. */
export function memberName(path: string, isDir: boolean): Buffer {
  const name = Buffer.from(`./${path}${isDir ? "/" : ""}`, "utf8");
  if (name.length > MAX_NAME_BYTES) {
    throw unprocessable(
      `firmware path "${path}" is too long for the device tar format: ${name.length} bytes with "./", at most ${MAX_NAME_BYTES} allowed`,
    );
  }
  return name;
}

function header(name: Buffer, mode: number, size: number, type: "0" | "5"): Buffer {
  const h = Buffer.alloc(BLOCK);
  name.copy(h, 0);
  h.write(octal(mode, 8), 100, "ascii");
  h.write(octal(0, 8), 108, "ascii"); // uid
  h.write(octal(0, 8), 116, "ascii"); // gid
  h.write(octal(size, 12), 124, "ascii");
  h.write(octal(0, 12), 136, "ascii"); // mtime 0: the same inputs give the same bytes
  h.write(type, 156, "ascii");
  h.write("ustar\0", 257, "ascii");
  h.write("00", 263, "ascii");
  h.write(octal(0, 8), 329, "ascii"); // devmajor
  h.write(octal(0, 8), 337, "ascii"); // devminor
  // The checksum is computed with its own field read as eight spaces.
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "ascii");
  return h;
}

function padding(size: number): Buffer {
  const rest = size % BLOCK;
  return Buffer.alloc(rest === 0 ? 0 : BLOCK - rest);
}

/**
 * Members for the files (sorted by path), each parent directory emitted once before
 * its first file; no end marker, so cached bodies can be followed by more members.
 * The root `./` itself is not a member: every client creates the target folder.
 * Also returns the files re-pointed into the tar body, so a cache holds each byte once.
 */
export function tarMembers(files: readonly FirmwareFile[]): {
  body: Buffer;
  files: FirmwareFile[];
} {
  const emittedDirs = new Set<string>();
  const parts: Buffer[] = [];
  const offsets: number[] = [];
  let length = 0;
  const push = (b: Buffer) => {
    parts.push(b);
    length += b.length;
  };
  for (const f of files) {
    const segments = f.path.split("/");
    for (let i = 1; i < segments.length; i++) {
      const dir = segments.slice(0, i).join("/");
      if (emittedDirs.has(dir)) continue;
      emittedDirs.add(dir);
      push(header(memberName(dir, true), 0o755, 0, "5"));
    }
    push(header(memberName(f.path, false), f.mode, f.content.length, "0"));
    offsets.push(length);
    push(f.content);
    push(padding(f.content.length));
  }
  const body = Buffer.concat(parts, length);
  return {
    body,
    files: files.map((f, i) => {
      const start = offsets[i] as number;
      return { ...f, content: body.subarray(start, start + f.content.length) };
    }),
  };
}
