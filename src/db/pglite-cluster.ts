import { openPglite } from "./database.ts";

// Run by createDatabase (src/db/database.ts) in a short-lived process of its own:
// creates and migrates a new PGlite cluster in the directory given, then exits, and
// the memory initdb used leaves with it. Arguments: <dir> [shared_buffers MB].
const [dir, sharedBuffers] = process.argv.slice(2);
if (!dir) throw new Error("usage: pglite-cluster.ts <dir> [sharedBuffersMb]");
const database = await openPglite({
  pgliteDir: dir,
  pgliteSharedBuffersMb: sharedBuffers ? Number(sharedBuffers) : undefined,
});
await database.close();
