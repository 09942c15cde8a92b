import { randomBytes } from "node:crypto";
import { chmodSync } from "node:fs";
import path from "node:path";
import { gunzipSync, inflateRawSync, inflateSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ArchiveBuilder, createArchiveBuilder } from "../../src/firmware/archive-builder.ts";
import { parseCompression } from "../../src/firmware/compression.ts";
import { HttpError } from "../../src/http/errors.ts";
import { parseTar, pythonRead } from "./archive-readers.ts";
import {
  createVersionFactory,
  ENV,
  SCHEMA,
  type TestVersion,
  type VersionFactory,
} from "./firmware-fixtures.ts";

// The exact byte formats devices unpack (device-protocol §6), checked by a strict
// parser of our own and by Python's standard library.

describe("firmware archive byte formats", () => {
  let factory: VersionFactory;
  let builder: ArchiveBuilder;
  let src: TestVersion;
  const repeated = randomBytes(2048);
  // Repeats 2 KB apart: a compressor with a window above 512 bytes would reach back.
  const farRepeats = Buffer.concat([repeated, repeated, repeated, randomBytes(100), repeated]);
  const expected: Record<string, Buffer> = {
    "main.py": Buffer.from("import lib.util\nprint('hi')\n"),
    "lib/util.py": Buffer.from("def f():\n    return 1\n"),
    "lib/drivers/sensor.py": Buffer.from("# sensor\n".repeat(300)),
    "data/far.bin": farRepeats,
    "модуль.py": Buffer.from("x = 'non-ascii name'\n"),
    "run.sh": Buffer.from("#!/bin/sh\necho hi\n"),
  };

  beforeAll(async () => {
    factory = createVersionFactory();
    builder = createArchiveBuilder({ git: factory.git });
    src = await factory.version(expected, (f) => chmodSync(path.join(f.dir, "run.sh"), 0o755));
  });
  afterAll(() => factory?.cleanup());

  function expectedFiles(): Map<string, Buffer> {
    const m = new Map(Object.entries(expected));
    m.set("env.json", Buffer.from(JSON.stringify(ENV, null, 4)));
    m.set("schema.json", Buffer.from(JSON.stringify(SCHEMA, null, 4)));
    return m;
  }

  it("writes plain ustar: valid headers, ./ names under 100 bytes, no pax or GNU records", async () => {
    const tar = await builder.tar(src);
    const { headers, endBlocks } = parseTar(tar);
    expect(endBlocks).toBe(2);
    for (const h of headers) {
      expect(h.magic).toBe("ustar\0");
      expect(h.version).toBe("00");
      expect(h.checksumOk).toBe(true);
      expect(["0", "5"]).toContain(h.typeflag);
      expect(h.name.startsWith("./")).toBe(true);
      expect(h.nameTerminated).toBe(true);
      expect(Buffer.byteLength(h.name)).toBeLessThan(100);
      expect(h.mtime).toBe(0);
      if (h.typeflag === "5") {
        expect(h.name.endsWith("/")).toBe(true);
        expect(h.size).toBe(0);
        expect(h.mode).toBe(0o755);
      }
    }
    const files = new Map(
      headers.filter((h) => h.typeflag === "0").map((h) => [h.name.slice(2), h.content]),
    );
    expect(files).toEqual(expectedFiles());
    expect(headers.find((h) => h.name === "./run.sh")?.mode).toBe(0o755);
    expect(headers.find((h) => h.name === "./main.py")?.mode).toBe(0o644);
    // The UTF-8 name sits in the name field itself, no pax record needed.
    expect(tar.includes(Buffer.from("./модуль.py\0"))).toBe(true);
  });

  it("reads back with Python's tarfile", async () => {
    const py = pythonRead("tar", await builder.tar(src));
    const files = new Map(py.filter((e) => !e.dir).map((e) => [e.name.slice(2), e.data]));
    expect(files).toEqual(expectedFiles());
    expect(py.filter((e) => e.dir).map((e) => e.name)).toEqual(
      expect.arrayContaining(["./lib", "./lib/drivers", "./data"]),
    );
  });

  it("compresses as a zlib stream whose header announces a 512-byte window for wbits 9", async () => {
    const tgz = await builder.tgz(src, parseCompression());
    const [cmf, flg] = [tgz[0] as number, tgz[1] as number];
    expect(cmf & 0x0f).toBe(8); // deflate
    expect(cmf >> 4).toBe(1); // CINFO = log2(window) - 8 = 1 → 512 bytes
    expect((cmf * 256 + flg) % 31).toBe(0);
    expect(flg & 0x20).toBe(0); // no preset dictionary
    expect(flg >> 6).toBe(3); // level 9 = "maximum compression"
    expect(inflateSync(tgz, { windowBits: 9 }).equals(await builder.tar(src))).toBe(true);
    const w15 = await builder.tgz(src, parseCompression(15, 9));
    expect(w15[0]).toBe(0x78);
  });

  it("decompresses with Python's zlib (wbits 9) and tarfile, and as the MicroPython client reads it", async () => {
    const tgz = await builder.tgz(src, parseCompression());
    const py = pythonRead("tgz", tgz, 9);
    expect(new Map(py.filter((e) => !e.dir).map((e) => [e.name.slice(2), e.data]))).toEqual(
      expectedFiles(),
    );
    const upy = pythonRead("upy", tgz, 9);
    expect(new Map(upy.map((e) => [e.name, e.data]))).toEqual(expectedFiles());
  });

  it("honours every accepted wbits and level with the matching wrapper", async () => {
    const tar = await builder.tar(src);
    const cases: Array<[number, number]> = [
      [10, 9],
      [12, 1],
      [15, -1],
      [9, 0],
      [25, 9],
      [31, 6],
      [-9, 9],
      [-15, 3],
    ];
    for (const [wbits, level] of cases) {
      const out = await builder.tgz(src, parseCompression(wbits, level));
      if (wbits > 15) {
        expect(out.subarray(0, 2).toString("hex")).toBe("1f8b");
        expect(gunzipSync(out).equals(tar)).toBe(true);
      } else if (wbits < 0) {
        expect(inflateRawSync(out, { windowBits: -wbits }).equals(tar)).toBe(true);
      } else {
        expect(out[0]).toBe(((wbits - 8) << 4) | 8);
        expect(inflateSync(out).equals(tar)).toBe(true);
      }
      const py = pythonRead("tgz", out, wbits);
      expect(py.find((e) => e.name === "./data/far.bin")?.data.equals(farRepeats)).toBe(true);
    }
    // Level 0 stores: the stream is at least as long as the tar itself.
    expect((await builder.tgz(src, parseCompression(9, 0))).length).toBeGreaterThan(tar.length);
  });

  it("rejects wbits and levels outside the accepted ranges with a 422", () => {
    for (const [wbits, level] of [
      [8, 9],
      [16, 9],
      [24, 9],
      [32, 9],
      [-8, 9],
      [-16, 9],
      [0, 9],
      [9.5, 9],
      [9, 10],
      [9, -2],
      [9, 1.5],
    ] as Array<[number, number]>) {
      let err: unknown = null;
      try {
        parseCompression(wbits, level);
      } catch (e) {
        err = e;
      }
      expect(err, `wbits=${wbits} level=${level}`).toBeInstanceOf(HttpError);
      expect((err as HttpError).status).toBe(422);
    }
    for (const wbits of [9, 15, 25, 31, -9, -15]) {
      for (const level of [-1, 0, 9]) expect(() => parseCompression(wbits, level)).not.toThrow();
    }
  });

  it("writes a zip whose names have no ./ prefix, read back with Python's zipfile", async () => {
    const zip = await builder.zip(src);
    const py = pythonRead("zip", zip);
    expect(py.every((e) => !e.name.startsWith("./") && !e.name.startsWith("/"))).toBe(true);
    expect(new Map(py.filter((e) => !e.dir).map((e) => [e.name, e.data]))).toEqual(expectedFiles());
    expect(py.filter((e) => e.dir).map((e) => e.name)).toEqual(
      expect.arrayContaining(["lib/", "lib/drivers/", "data/"]),
    );
    expect(py.find((e) => e.name === "run.sh")?.mode).toBe(0o755);
  });
});
