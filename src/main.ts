import { ConfigError, loadConfig } from "./config.ts";
import { startInstance } from "./instance.ts";

// `npm start`: one process, the whole instance. Stops cleanly on SIGINT/SIGTERM.
try {
  const instance = await startInstance(loadConfig());
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
  throw err;
}
