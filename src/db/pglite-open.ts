import type { PGlite } from "@electric-sql/pglite";
import { tightenPrivateDirs } from "../private-dirs.ts";

// Opening PGlite, apart from the drizzle side (src/db/database.ts): the PGlite thread
// (src/db/pglite-thread.ts) loads only this, and its heap holds no ORM, schema or
// migrator (~3 MB); migrations reach the thread as statements from the main thread.

/** shared_buffers (MB) unless configured (PEPEUNIT_PGLITE_SHARED_BUFFERS_MB). */
export const DEFAULT_SHARED_BUFFERS_MB = 8;

/**
 * PGlite's startup settings for a small instance. Its shared memory lives in a
 * WebAssembly heap that never shrinks and is written through when it is set up, so every
 * MB of it is resident for good. shared_buffers (PostgreSQL's default 128 MB): a page
 * outside it costs a read from the OS's file cache, not the disk. The slots PostgreSQL
 * sizes for 100 connections, 10 WAL senders and 16 autovacuum workers (its lock and
 * process tables, 8 MB) serve PGlite's single backend as well at 16, 0 and 1: 4 MB less,
 * and 16 × 64 lock slots still hold the migrations' one transaction. The rest is PGlite's.
 */
export function pgliteStartParams(
  defaults: readonly string[],
  sharedBuffersMb = DEFAULT_SHARED_BUFFERS_MB,
): string[] {
  return [
    ...defaults,
    ...["-c", `shared_buffers=${sharedBuffersMb}MB`],
    ...["-c", "max_connections=16", "-c", "max_wal_senders=0"],
    ...["-c", "autovacuum_worker_slots=1", "-c", "autovacuum_max_workers=1"],
  ];
}

/** Opens PGlite in this thread: in memory, or the cluster in `pgliteDir`. */
export async function openPgliteInstance(opts: {
  pgliteDir?: string | undefined;
  pgliteSharedBuffersMb?: number | undefined;
}): Promise<PGlite> {
  const { PGlite } = await import("@electric-sql/pglite");
  const options = {
    startParams: pgliteStartParams(PGlite.defaultStartParams, opts.pgliteSharedBuffersMb),
  };
  const client = opts.pgliteDir ? new PGlite(opts.pgliteDir, options) : new PGlite(options);
  await client.waitReady;
  // PGlite unpacks its initial cluster with explicit modes (0644/0755), whatever the
  // umask: take group/other off once it is there. Files it creates later get 0600.
  if (opts.pgliteDir) tightenPrivateDirs([opts.pgliteDir]);
  return client;
}
