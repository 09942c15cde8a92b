import { GitError, type GitStore } from "../git/git-store.ts";
import { unprocessable } from "../http/errors.ts";
import { createByteLru } from "./byte-lru.ts";
import {
  type CompressedPrefix,
  type Compression,
  compressPrefix,
  compressWithPrefix,
} from "./compression.ts";
import { checkFirmwareSize } from "./firmware-size.ts";
import { type FirmwareFile, generatedFiles, trimFirmwareTree } from "./firmware-tree.ts";
import { TAR_END, tarMembers } from "./ustar.ts";
import { writeZip } from "./zip.ts";

// Builds the firmware archives of device-protocol §6. Everything that depends only on
// the version — the trimmed tree, its tar members and their deflated form per
// (wbits, level) — is cached per (repo, commit), so the archives of a mass update
// differ only by the env.json and schema.json appended for each unit.

/** What one unit's archive is made of: the version and the unit's generated files. */
export type FirmwareSource = {
  repoUuid: string;
  commit: string;
  env: unknown;
  schema: unknown;
};

export type ArchiveBuilderOptions = {
  git: Pick<GitStore, "exportTree" | "listTree" | "readFile">;
  /**
   * Largest unpacked firmware a build starts on: checked before the tree is read,
   * so one build holds a small multiple of this in memory, never the repo's worth.
   * 10 MB by default, as PEPEUNIT_MAX_FIRMWARE_SIZE_MB.
   */
  maxFirmwareBytes?: number;
  /** Bound of the version cache; 64 MB by default. */
  maxCacheBytes?: number;
};

type VersionEntry = {
  /** The trimmed tree; contents are views into `tarBody`. */
  files: FirmwareFile[];
  /** Tar members of `files`, without the end marker. */
  tarBody: Buffer;
  /** Deflated `tarBody` per (wbits, level); a promise so concurrent requests share one. */
  prefixes: Map<string, Promise<CompressedPrefix>>;
  bytes: number;
};

export type ArchiveBuilder = ReturnType<typeof createArchiveBuilder>;

export function createArchiveBuilder(opts: ArchiveBuilderOptions) {
  const cache = createByteLru<VersionEntry>(opts.maxCacheBytes ?? 64 * 1024 * 1024);
  const maxFirmwareBytes = opts.maxFirmwareBytes ?? 10 * 1024 * 1024;
  // Concurrent requests for one version (a mass update) share one export.
  const pending = new Map<string, Promise<VersionEntry>>();

  async function load(repoUuid: string, commit: string): Promise<VersionEntry> {
    let tree: Awaited<ReturnType<GitStore["exportTree"]>>;
    try {
      // Only the files that go to the device are read, and only when they fit.
      const keep = await checkFirmwareSize(opts.git, repoUuid, commit, maxFirmwareBytes);
      tree = await opts.git.exportTree(repoUuid, commit, keep);
    } catch (err) {
      if (err instanceof GitError) {
        throw unprocessable(`version ${commit.slice(0, 8)} cannot be read: ${err.message}`);
      }
      throw err;
    }
    const { body, files } = tarMembers(trimFirmwareTree(tree));
    // The files are views into the tar body: the entry's size is the body's.
    return { files, tarBody: body, prefixes: new Map(), bytes: body.length };
  }

  async function version(repoUuid: string, commit: string): Promise<[string, VersionEntry]> {
    const key = `${repoUuid}:${commit}`;
    const hit = cache.get(key);
    if (hit) return [key, hit];
    let p = pending.get(key);
    if (!p) {
      p = load(repoUuid, commit)
        .then((entry) => {
          cache.set(key, entry, entry.bytes);
          return entry;
        })
        .finally(() => pending.delete(key));
      pending.set(key, p);
    }
    return [key, await p];
  }

  function unitTarMembers(src: FirmwareSource): Buffer {
    return Buffer.concat([tarMembers(generatedFiles(src.env, src.schema)).body, TAR_END]);
  }

  // Archives come out as parts: the version's cached buffers themselves plus the
  // unit's small ones, so a download never copies the firmware (see firmware.routes).
  const builder = {
    async tarParts(src: FirmwareSource): Promise<Buffer[]> {
      const [, v] = await version(src.repoUuid, src.commit);
      return [v.tarBody, unitTarMembers(src)];
    },

    async tgzParts(src: FirmwareSource, c: Compression): Promise<Buffer[]> {
      const [key, v] = await version(src.repoUuid, src.commit);
      let prefix = v.prefixes.get(c.key);
      if (!prefix) {
        prefix = compressPrefix(c, v.tarBody);
        v.prefixes.set(c.key, prefix);
        const done = await prefix.catch((err: unknown) => {
          v.prefixes.delete(c.key);
          throw err;
        });
        v.bytes += done.body.length;
        cache.set(key, v, v.bytes);
      }
      return compressWithPrefix(c, await prefix, unitTarMembers(src));
    },

    /** A whole new buffer per download (zip entries are compressed one by one). */
    async zip(src: FirmwareSource): Promise<Buffer> {
      const [, v] = await version(src.repoUuid, src.commit);
      return writeZip([...v.files, ...generatedFiles(src.env, src.schema)]);
    },

    cacheStats: () => cache.stats(),
  };
  return {
    ...builder,
    tar: async (src: FirmwareSource) => Buffer.concat(await builder.tarParts(src)),
    tgz: async (src: FirmwareSource, c: Compression) =>
      Buffer.concat(await builder.tgzParts(src, c)),
  };
}
