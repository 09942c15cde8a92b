import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { gunzipSync, inflateRawSync, inflateSync } from "node:zlib";

// Unpacking a firmware tgz the way the device clients do (device-protocol §6): a zlib
// stream (any window, the instance sends wbits 9) around a ustar archive whose member
// names start with "./" — MicroPython drops the first two characters of every name,
// so a name without that prefix would lose real characters there; we refuse it instead.

const BLOCK = 512;

export type TarMember = { name: string; type: "file" | "dir"; mode: number; content: Buffer };

/** zlib (RFC 1950) as the instance sends it; gzip and raw deflate too, for hand-made archives. */
export function decompressFirmware(archive: Buffer): Buffer {
  if (archive[0] === 0x1f && archive[1] === 0x8b) return gunzipSync(archive);
  // A zlib header: CM 8, and the 16-bit header is a multiple of 31 (RFC 1950 §2.2).
  const cmf = archive[0] ?? 0;
  const flg = archive[1] ?? 0;
  if ((cmf & 0x0f) === 8 && ((cmf << 8) | flg) % 31 === 0) return inflateSync(archive);
  return inflateRawSync(archive);
}

function field(block: Buffer, start: number, length: number): string {
  const raw = block.subarray(start, start + length);
  const nul = raw.indexOf(0);
  return raw.subarray(0, nul === -1 ? raw.length : nul).toString("utf8");
}

function octal(block: Buffer, start: number, length: number): number {
  const text = field(block, start, length).trim();
  return text ? Number.parseInt(text, 8) : 0;
}

/** The members of a ustar archive (regular files and directories; other kinds are skipped). */
export function readTar(tar: Buffer): TarMember[] {
  const members: TarMember[] = [];
  let offset = 0;
  while (offset + BLOCK <= tar.length) {
    const header = tar.subarray(offset, offset + BLOCK);
    if (header.every((b) => b === 0)) break; // end-of-archive marker
    const prefix = field(header, 345, 155);
    const rawName = field(header, 0, 100);
    const name = prefix ? `${prefix}/${rawName}` : rawName;
    const size = octal(header, 124, 12);
    const typeflag = String.fromCharCode(header[156] ?? 0);
    const mode = octal(header, 100, 8);
    const start = offset + BLOCK;
    if (start + size > tar.length) throw new Error(`truncated tar member ${name}`);
    if (typeflag === "0" || typeflag === "\0") {
      members.push({ name, type: "file", mode, content: tar.subarray(start, start + size) });
    } else if (typeflag === "5") {
      members.push({ name, type: "dir", mode, content: Buffer.alloc(0) });
    }
    offset = start + Math.ceil(size / BLOCK) * BLOCK;
  }
  return members;
}

/** Where a member lands under `dir`, or an error for names a device would mangle or escape with. */
function targetPath(dir: string, name: string): string {
  if (!name.startsWith("./")) throw new Error(`tar member ${JSON.stringify(name)} lacks "./"`);
  const relative = name.slice(2).replace(/\/$/, "");
  const target = path.resolve(dir, relative);
  if (target !== path.resolve(dir) && !target.startsWith(`${path.resolve(dir)}${path.sep}`)) {
    throw new Error(`tar member ${JSON.stringify(name)} points outside the unit's directory`);
  }
  return target;
}

/** Unpacks a firmware archive over `dir` (files are overwritten, others kept). Returns the paths written. */
export async function unpackFirmware(archive: Buffer, dir: string): Promise<string[]> {
  const members = readTar(decompressFirmware(archive));
  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  for (const m of members) {
    const target = targetPath(dir, m.name);
    if (m.type === "dir") {
      await mkdir(target, { recursive: true });
      continue;
    }
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, m.content, { mode: m.mode & 0o777 || 0o644 });
    written.push(path.relative(dir, target));
  }
  return written;
}
