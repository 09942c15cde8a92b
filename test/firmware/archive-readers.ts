import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

// Independent readers of the firmware archives: a strict ustar parser written from
// the format, and Python's standard library (what the CPython client and most tools
// use), plus a Python copy of how the MicroPython client reads the tar.

export type TarHeader = {
  name: string;
  mode: number;
  size: number;
  mtime: number;
  typeflag: string;
  magic: string;
  version: string;
  checksumOk: boolean;
  /** The name field has a NUL left after the name. */
  nameTerminated: boolean;
  content: Buffer;
};

function octalField(block: Buffer, start: number, length: number): number {
  const text = block
    .subarray(start, start + length)
    .toString("ascii")
    .replace(/[\0 ]+$/, "");
  return text === "" ? 0 : Number.parseInt(text, 8);
}

/** Parses a tar, header by header; throws on anything that is not a plain ustar stream. */
export function parseTar(tar: Buffer): { headers: TarHeader[]; endBlocks: number } {
  if (tar.length % 512 !== 0) throw new Error(`tar length ${tar.length} is not whole blocks`);
  const headers: TarHeader[] = [];
  let off = 0;
  while (off < tar.length) {
    const block = tar.subarray(off, off + 512);
    if (block.every((b) => b === 0)) break;
    const nameEnd = block.indexOf(0);
    const name = block.subarray(0, nameEnd >= 0 && nameEnd < 100 ? nameEnd : 100).toString("utf8");
    const stored = octalField(block, 148, 8);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : (block[i] as number);
    const size = octalField(block, 124, 12);
    const content = Buffer.from(tar.subarray(off + 512, off + 512 + size));
    headers.push({
      name,
      mode: octalField(block, 100, 8),
      size,
      mtime: octalField(block, 136, 12),
      typeflag: String.fromCharCode(block[156] as number),
      magic: block.subarray(257, 263).toString("latin1"),
      version: block.subarray(263, 265).toString("latin1"),
      checksumOk: stored === sum,
      nameTerminated: nameEnd >= 0 && nameEnd < 100,
      content,
    });
    off += 512 + Math.ceil(size / 512) * 512;
  }
  const rest = tar.subarray(off);
  if (!rest.every((b) => b === 0)) throw new Error("data after the end marker");
  return { headers, endBlocks: rest.length / 512 };
}

export type PythonEntry = { name: string; dir: boolean; mode: number; data: Buffer };

const PY_READER = String.raw`
import base64, io, json, sys, tarfile, zipfile, zlib
kind, file, wbits = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = open(file, "rb").read()
out = []
if kind == "zip":
    z = zipfile.ZipFile(io.BytesIO(data))
    assert z.testzip() is None
    for i in z.infolist():
        body = b"" if i.is_dir() else z.read(i)
        out.append({"name": i.filename, "dir": i.is_dir(), "mode": (i.external_attr >> 16) & 0o7777, "data": base64.b64encode(body).decode()})
elif kind == "upy":
    # How the MicroPython client reads the tgz: deflate with the given window, its
    # tarfile takes the raw name field and an 11-digit size, a trailing "/" means a
    # directory (skipped), and the first two characters of a name are dropped.
    d = zlib.decompressobj(wbits=wbits)
    tar = d.decompress(data) + d.flush()
    assert d.eof and not d.unused_data
    off = 0
    while off + 512 <= len(tar):
        h = tar[off:off + 512]
        if h[0] == 0:
            break
        name = h[0:100].decode("utf-8").rstrip("\0")
        size = int(h[124:135], 8)
        body = tar[off + 512:off + 512 + size]
        off += 512 + (size + 511) // 512 * 512
        if name.endswith("/"):
            continue
        out.append({"name": name[2:], "dir": False, "mode": 0, "data": base64.b64encode(body).decode()})
else:
    if kind == "tgz":
        d = zlib.decompressobj(wbits=wbits)
        data = d.decompress(data) + d.flush()
        assert d.eof and not d.unused_data
    t = tarfile.open(fileobj=io.BytesIO(data), mode="r:")
    for m in t.getmembers():
        assert m.isfile() or m.isdir(), m.name
        assert not m.pax_headers, m.pax_headers
        body = t.extractfile(m).read() if m.isfile() else b""
        out.append({"name": m.name, "dir": m.isdir(), "mode": m.mode, "data": base64.b64encode(body).decode()})
print(json.dumps(out))
`;

/** Reads an archive with Python's standard library only (zlib, tarfile, zipfile). */
export function pythonRead(
  kind: "tar" | "tgz" | "zip" | "upy",
  archive: Buffer,
  wbits = 9,
): PythonEntry[] {
  const dir = mkdtempSync(path.join(tmpdir(), "pepeunit-archive-"));
  try {
    const file = path.join(dir, "archive.bin");
    writeFileSync(file, archive);
    const out = execFileSync("python3", ["-c", PY_READER, kind, file, String(wbits)], {
      encoding: "utf8",
      maxBuffer: 256 * 1024 * 1024,
    });
    return (JSON.parse(out) as Array<Omit<PythonEntry, "data"> & { data: string }>).map((e) => ({
      ...e,
      data: Buffer.from(e.data, "base64"),
    }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
