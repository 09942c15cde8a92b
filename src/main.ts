import { ConfigError, loadConfig } from "./config.ts";
import { startInstance } from "./instance.ts";
import { restrictNewFiles, tightenPrivateDirs } from "./private-dirs.ts";

// `npm start`: one process, the whole instance. Stops cleanly on SIGINT/SIGTERM.
// Before anything is created (loadConfig writes <data>/.env): private by default.
restrictNewFiles();
try {
  const config = loadConfig();
  // The data dir's walk covers pglite/ and standard-repos/ in it.
  tightenPrivateDirs([config.dataDir, config.repositoriesDir]);
  const instance = await startInstance(config);
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
