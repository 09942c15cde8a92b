import v8 from "node:v8";
import { ConfigError, loadConfig } from "./config.ts";
import { restrictNewFiles, tightenPrivateDirs } from "./private-dirs.ts";
import { fullGc, startIdleTrim } from "./process-memory.ts";

// `npm start`: one process, the whole instance. Stops cleanly on SIGINT/SIGTERM.
// Startup (compiling ~1 500 modules, opening the database) keeps most of what it
// allocates, and V8 reads that as a reason to grow its young generation, to 128 MB
// here, and keeps it: half of an idle instance's memory. The young generation stays
// at its initial size until the instance is up, and may grow under real load after.
// The flag is read at each growth decision, so setting it at run time takes effect;
// the modules are imported below it (a static import would be evaluated first).
v8.setFlagsFromString("--semi-space-growth-factor=1");
const { startInstance } = await import("./instance.ts");
// Before anything is created (loadConfig writes <data>/.env): private by default.
restrictNewFiles();
try {
  const config = loadConfig();
  // The data dir's walk covers pglite/ and standard-repos/ in it.
  tightenPrivateDirs([config.dataDir, config.repositoriesDir]);
  const instance = await startInstance(config);
  // V8's default: the young generation doubles when a scavenge finds it too small.
  v8.setFlagsFromString("--semi-space-growth-factor=2");
  // No more Maglev (V8's middle compiler) from here on: it compiles in V8's helper
  // thread, and glibc keeps much of what it frees there (5–9 MB after a thousand devices
  // connected). Hot code is still optimized by TurboFan. Set now, not on the command
  // line: starting without it left PGlite's instance 30 MB larger in two starts of three.
  v8.setFlagsFromString("--no-maglev");
  // The old generation may reach twice its live size before the next full collection.
  // V8 sizes that room from its GC and allocation speeds: on one busy core it left ~1.5×
  // (~25 MB over a 50 MB heap), and the bytes streamed by the database driver and the
  // HTTP answers (outside the heap, but counted against that limit) started a full
  // mark-compact every ~8 reads of 10 000 history records: half of a read's CPU, and its
  // p99 (70 → 30–48 ms, bench history suite). An idle instance keeps its idle size.
  v8.setFlagsFromString("--heap-growing-percent=100");
  // Startup's short-lived objects reached the old generation (the young one was kept
  // small), and V8 would not collect it before the heap doubled, which an idle instance
  // never does: ~30 MB of pages held for nothing. One full collection now.
  const gc = fullGc();
  gc();
  // And the young generation a later burst grows is given back once idle again.
  startIdleTrim(gc);
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    await instance.stop();
    process.exit(0);
  };
  process.on("SIGINT", shutdown);
  process.on("SIGTERM", shutdown);
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(2);
  }
  const e = err as NodeJS.ErrnoException & { port?: number };
  if (e.code === "EADDRINUSE") {
    // The usual case: another MQTT broker (e.g. Mosquitto) already owns 1883.
    console.error(
      `port ${e.port ?? "?"} is already in use by another program; choose another with ` +
        "PEPEUNIT_HTTP_PORT / PEPEUNIT_MQTT_PORT / PEPEUNIT_MQTTS_PORT",
    );
    process.exit(2);
  }
  throw err;
}
