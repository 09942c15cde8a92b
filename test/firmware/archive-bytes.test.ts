import { createHash } from "node:crypto";
import { chmodSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createArchiveBuilder } from "../../src/firmware/archive-builder.ts";
import { parseCompression } from "../../src/firmware/compression.ts";
import { createVersionFactory, type VersionFactory } from "./firmware-fixtures.ts";

// The archives' exact bytes, pinned: devices and their update checks depend on them.
// These digests were taken from the builder as it was before the firmware size limit
// (when the tree came from `git archive`); reading the blobs directly must not change a byte.

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

describe("firmware archive bytes", () => {
  let factory: VersionFactory;
  beforeAll(() => {
    factory = createVersionFactory();
  });
  afterAll(() => factory?.cleanup());

  it("are the same as before for tar, every tgz flavour and zip", async () => {
    const src = await factory.version(
      {
        "main.py": "print('hi')\n",
        "lib/util.py": "X = 1\n",
        "lib/deep/ünïcode.py": "# utf-8 name\n",
        "bin/tool.sh": "#!/bin/sh\necho hi\n",
        "data/blob.bin": Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 7) % 251)),
        "examples/demo.py": "left out",
        ".pepeignore": "*.log\n",
        "debug.log": "left out",
      },
      (fixture) => chmodSync(path.join(fixture.dir, "bin/tool.sh"), 0o755),
    );
    const builder = createArchiveBuilder({ git: factory.git });
    const digests = {
      tar: sha256(await builder.tar(src)),
      zip: sha256(await builder.zip(src)),
      tgz: sha256(await builder.tgz(src, parseCompression())),
      gzip: sha256(await builder.tgz(src, parseCompression(31, 6))),
      raw: sha256(await builder.tgz(src, parseCompression(-15, 1))),
    };
    expect(digests).toEqual({
      tar: "e7233c024f4ed8241261593eddf0270a3041fff99b950b9913dd78b0bb0f0558",
      zip: "6a833eec282d1fc63f19c5e3c545502fa471ec443d034cf457c2c6522fe9435b",
      tgz: "3b550d38bfa273459b17ea31eaf9e85c402950cec86717d6b27cd068825b47c8",
      gzip: "60f7f58286f7d9c870fc798cdbb847edbf1cc6eb87ffe486869644f13f85cb5c",
      raw: "8888dd592cd75da65e0a7eeb430747598f747dce037fd0b3ab7c0c1b2a2cea91",
    });
  });
});
