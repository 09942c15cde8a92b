import { randomBytes } from "node:crypto";
import { chmodSync, symlinkSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createArchiveBuilder } from "../../src/firmware/archive-builder.ts";
import { createByteLru } from "../../src/firmware/byte-lru.ts";
import { parseCompression } from "../../src/firmware/compression.ts";
import type { GitStore } from "../../src/git/git-store.ts";
import { HttpError } from "../../src/http/errors.ts";
import { parseTar, pythonRead } from "./archive-readers.ts";
import { createVersionFactory, ENV, SCHEMA, type VersionFactory } from "./firmware-fixtures.ts";

// The archive builder on real git repositories (cloned with the real git store):
// which files reach a device, and the exact bytes they reach it in.

describe("firmware archive builder", () => {
  let factory: VersionFactory;
  let git: GitStore;
  let version: VersionFactory["version"];
  beforeAll(() => {
    factory = createVersionFactory();
    git = factory.git;
    version = factory.version;
  });
  afterAll(() => factory?.cleanup());

  function fileMap(tar: Buffer): Map<string, Buffer> {
    const m = new Map<string, Buffer>();
    for (const h of parseTar(tar).headers) if (h.typeflag === "0") m.set(h.name, h.content);
    return m;
  }

  it("leaves out templates, examples, committed env/schema and .pepeignore; adds generated env.json/schema.json", async () => {
    const src = await version({
      "main.py": "print('hi')\n",
      "env.json": '{"stale": true}',
      "schema.json": '{"stale": true}',
      "example/demo.py": "demo",
      "examples/other/demo.py": "demo",
      "lib/examples/kept.py": "kept",
      "lib/env_example.json": "nested templates are ordinary files",
      ".pepeignore": "*.log\n",
      "debug.log": "x",
      "README.md": "# readme",
    });
    const builder = createArchiveBuilder({ git });
    const files = fileMap(await builder.tar(src));
    expect([...files.keys()].sort()).toEqual(
      [
        "./README.md",
        "./env.json",
        "./lib/env_example.json",
        "./lib/examples/kept.py",
        "./main.py",
        "./schema.json",
      ].sort(),
    );
    expect(files.get("./env.json")?.toString()).toBe(JSON.stringify(ENV, null, 4));
    expect(files.get("./schema.json")?.toString()).toBe(JSON.stringify(SCHEMA, null, 4));
    expect(files.get("./env.json")?.toString()).toContain('\n    "PU_DOMAIN": "localhost:8080"');
  });

  it("applies .pepeignore with gitignore semantics: globs, directories, anchors and negation", async () => {
    const src = await version({
      ".pepeignore": [
        "# comment line",
        "*.md",
        "!KEEP.md",
        "build/",
        "/top_only.txt",
        "**/secret.key",
        "docs/*",
        "!docs/manual.txt",
        "",
      ].join("\n"),
      "README.md": "r",
      "KEEP.md": "k",
      "lib/notes.md": "n",
      "build/out.bin": "b",
      "src/build/deep.bin": "b",
      "top_only.txt": "t",
      "src/top_only.txt": "kept: the pattern is anchored",
      "a/b/secret.key": "s",
      "docs/draft.txt": "d",
      "docs/manual.txt": "m",
      "src/app.py": "app",
      "Case.MD": "kept: matching is case-sensitive like git",
    });
    const files = fileMap(await createArchiveBuilder({ git }).tar(src));
    expect([...files.keys()].sort()).toEqual(
      [
        "./Case.MD",
        "./KEEP.md",
        "./docs/manual.txt",
        "./env.json",
        "./schema.json",
        "./src/app.py",
        "./src/top_only.txt",
      ].sort(),
    );
  });

  it("emits each parent directory once, before its files, with a trailing slash", async () => {
    const src = await version({
      "a/b/c/deep.py": "deep",
      "a/b/other.py": "other",
      "a/top.py": "top",
      "z.py": "z",
    });
    const { headers } = parseTar(await createArchiveBuilder({ git }).tar(src));
    const names = headers.map((h) => h.name);
    const dirs = headers.filter((h) => h.typeflag === "5").map((h) => h.name);
    expect(dirs.sort()).toEqual(["./a/", "./a/b/", "./a/b/c/"]);
    expect(new Set(names).size).toBe(names.length);
    expect(names).not.toContain("./");
    for (const h of headers) {
      const parent = h.name.replace(/\/?[^/]+\/?$/, "/");
      if (parent !== "./") expect(names.indexOf(parent)).toBeLessThan(names.indexOf(h.name));
      expect(h.name.endsWith("/")).toBe(h.typeflag === "5");
    }
    expect(headers.find((h) => h.name === "./a/b/c/deep.py")?.content.toString()).toBe("deep");
  });

  it("keeps binary files byte-exact and the executable bit", async () => {
    const all = Buffer.alloc(256 * 4);
    for (let i = 0; i < all.length; i++) all[i] = i % 256;
    const noise = randomBytes(70_000);
    const src = await version(
      { "bin/all.bin": all, "bin/noise.bin": noise, "run.sh": "#!/bin/sh\n" },
      (f) => chmodSync(path.join(f.dir, "run.sh"), 0o755),
    );
    const builder = createArchiveBuilder({ git });
    const { headers } = parseTar(await builder.tar(src));
    const byName = new Map(headers.map((h) => [h.name, h]));
    expect(byName.get("./bin/all.bin")?.content.equals(all)).toBe(true);
    expect(byName.get("./bin/noise.bin")?.content.equals(noise)).toBe(true);
    expect(byName.get("./run.sh")?.mode).toBe(0o755);
    expect(byName.get("./bin/all.bin")?.mode).toBe(0o644);
    expect(byName.get("./bin/")?.mode).toBe(0o755);
    // The same bytes through Python's tarfile, from the zlib stream.
    const py = pythonRead("tgz", await builder.tgz(src, parseCompression()));
    expect(py.find((e) => e.name === "./bin/noise.bin")?.data.equals(noise)).toBe(true);
    expect(py.find((e) => e.name === "./run.sh")?.mode).toBe(0o755);
  });

  it("leaves symlinks out", async () => {
    const src = await version({ "real.py": "real" }, (f) => {
      symlinkSync("real.py", path.join(f.dir, "link.py"));
      symlinkSync("/etc/passwd", path.join(f.dir, "escape"));
    });
    expect(src.fixture.git("ls-files", "-s", "link.py")).toMatch(/^120000 /);
    const { headers } = parseTar(await createArchiveBuilder({ git }).tar(src));
    const names = headers.map((h) => h.name);
    expect(names).toContain("./real.py");
    expect(names).not.toContain("./link.py");
    expect(names).not.toContain("./escape");
    expect(headers.every((h) => h.typeflag === "0" || h.typeflag === "5")).toBe(true);
  });

  it("refuses a path too long for the device tar format with a 422 naming it", async () => {
    // "./" + 97 bytes = 99: the longest name that still leaves the field NUL-terminated.
    const ok = `${"d".repeat(40)}/${"f".repeat(56)}`;
    expect(ok.length).toBe(97);
    const fine = await version({ [ok]: "ok" });
    const h = parseTar(await createArchiveBuilder({ git }).tar(fine)).headers.find(
      (x) => x.name === `./${ok}`,
    );
    expect(h?.nameTerminated).toBe(true);

    const long = `${"d".repeat(40)}/${"f".repeat(57)}`;
    const bad = await version({ [long]: "too long" });
    const builder = createArchiveBuilder({ git });
    for (const build of [() => builder.tar(bad), () => builder.zip(bad)]) {
      const err = await build().then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(HttpError);
      expect((err as HttpError).status).toBe(422);
      expect((err as HttpError).message).toContain(long);
    }
    // An ignored long path is no problem.
    const ignored = await version({ [long]: "x", ".pepeignore": `${"d".repeat(40)}/\n` });
    expect([...fileMap(await builder.tar(ignored)).keys()].sort()).toEqual([
      "./env.json",
      "./schema.json",
    ]);
  });

  it("builds from the given commit, not the branch head", async () => {
    const src = await version({ "main.py": "v1" });
    const first = src.commit;
    src.fixture.commit("v2", { "main.py": "v2", "added.py": "new" });
    await git.fetch(src.repoUuid, src.fixture.url, undefined, 100 * 1024 * 1024);
    const builder = createArchiveBuilder({ git });
    const files = fileMap(await builder.tar({ ...src, commit: first }));
    expect(files.get("./main.py")?.toString()).toBe("v1");
    expect(files.has("./added.py")).toBe(false);
    const head = fileMap(await builder.tar({ ...src, commit: src.fixture.head() }));
    expect(head.get("./main.py")?.toString()).toBe("v2");
  });

  it("is deterministic: the same inputs give the same bytes, from any builder", async () => {
    const src = await version({ "main.py": "x", "lib/a.py": "a", "bin/b.bin": randomBytes(3000) });
    const one = createArchiveBuilder({ git });
    const two = createArchiveBuilder({ git });
    for (const c of ["9:9", "15:6", "31:9", "-9:1", "9:0", "9:-1"]) {
      const [w, l] = c.split(":").map(Number);
      const comp = parseCompression(w, l);
      const a = await one.tgz(src, comp);
      expect(a.equals(await one.tgz(src, comp))).toBe(true);
      expect(a.equals(await two.tgz(src, comp))).toBe(true);
    }
    expect((await one.tar(src)).equals(await two.tar(src))).toBe(true);
    expect((await one.zip(src)).equals(await two.zip(src))).toBe(true);
    const other = await one.tar({ ...src, env: { ...ENV, PUC_WIFI_SSID: "other" } });
    expect(other.equals(await one.tar(src))).toBe(false);
  });

  it("reads each version from git once and keeps the cache within its byte bound", async () => {
    const src = await version({ "main.py": "x", "big.bin": randomBytes(200_000) });
    let exports = 0;
    const counting = {
      ...git,
      exportTree: (repo: string, commit: string) => {
        exports++;
        return git.exportTree(repo, commit);
      },
    };
    const builder = createArchiveBuilder({ git: counting });
    const archives = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        builder.tgz({ ...src, env: { ...ENV, N: i } }, parseCompression()),
      ),
    );
    expect(exports).toBe(1);
    const env7 = pythonRead("upy", archives[7] as Buffer).find((e) => e.name === "env.json");
    expect(JSON.parse(env7?.data.toString() ?? "{}")).toEqual({ ...ENV, N: 7 });

    // A bound smaller than one version: nothing is kept, every build reads git again.
    const tiny = createArchiveBuilder({ git: counting, maxCacheBytes: 1000 });
    await tiny.tar(src);
    await tiny.tar(src);
    expect(exports).toBe(3);
    expect(tiny.cacheStats()).toEqual({ entries: 0, bytes: 0 });
  });

  it("evicts the least recently used entries first", () => {
    const lru = createByteLru<string>(100);
    lru.set("a", "A", 40);
    lru.set("b", "B", 40);
    expect(lru.get("a")).toBe("A");
    lru.set("c", "C", 40);
    expect(lru.get("b")).toBeUndefined();
    expect(lru.get("a")).toBe("A");
    expect(lru.get("c")).toBe("C");
    expect(lru.stats()).toEqual({ entries: 2, bytes: 80 });
    lru.set("a", "A2", 70);
    expect(lru.stats()).toEqual({ entries: 1, bytes: 70 });
    expect(lru.get("a")).toBe("A2");
  });
});
