import { copyFile, mkdir, mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { unpackFirmware } from "./firmware-archive.ts";
import { parseOutputPairs } from "./output-values.ts";
import { createSimulatedUnit } from "./simulated-unit.ts";
import { ENV_FILE, SCHEMA_FILE } from "./unit-files.ts";

// `npm run unit -- --archive unit.tgz` runs one simulated unit until Ctrl-C.

const DEFAULT_OUTPUT_EVERY_MS = 5000;

const USAGE = `Usage: npm run unit -- (--archive <file.tgz> | --env env.json --schema schema.json | --dir <dir>) [options]

  --archive <file>       firmware archive as downloaded from the instance: the devices' tgz
                         (zlib) or the tar.gz (unpacked into the work dir)
  --env, --schema <file> env.json and schema.json (copied into the work dir)
  --dir <dir>            an unpacked unit directory, used in place (updates write into it)
  --work-dir <dir>       where --archive/--env are unpacked (default: a new temp dir)
  --mqtt-url <url>       broker instead of mqtt://PU_MQTT_HOST:PU_MQTT_PORT
  --http-url <url>       instance origin instead of PU_HTTP_TYPE://PU_DOMAIN
  --output name=value    publish this fixed value on an output (repeatable)
  --output-every <ms>    publish every output at connect, then each period (default 5000;
                         generated values unless fixed; 0 publishes nothing)
  --state-every <s>      state period instead of PU_STATE_SEND_INTERVAL
  --qos 0|1              QoS of subscriptions and publishes (default 0)
  --quiet                do not print log lines`;

async function prepareDir(values: {
  archive?: string;
  env?: string;
  schema?: string;
  dir?: string;
  "work-dir"?: string;
}): Promise<string> {
  if (values.dir) return path.resolve(values.dir);
  const workDir = values["work-dir"]
    ? path.resolve(values["work-dir"])
    : await mkdtemp(path.join(tmpdir(), "pepeunit-unit-"));
  await mkdir(workDir, { recursive: true });
  if (values.archive) {
    await unpackFirmware(await readFile(values.archive), workDir);
  } else if (values.env && values.schema) {
    await copyFile(values.env, path.join(workDir, ENV_FILE));
    await copyFile(values.schema, path.join(workDir, SCHEMA_FILE));
  } else {
    throw new Error("give --archive, --env with --schema, or --dir");
  }
  return workDir;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      archive: { type: "string" },
      env: { type: "string" },
      schema: { type: "string" },
      dir: { type: "string" },
      "work-dir": { type: "string" },
      "mqtt-url": { type: "string" },
      "http-url": { type: "string" },
      output: { type: "string", multiple: true },
      "output-every": { type: "string" },
      "state-every": { type: "string" },
      qos: { type: "string" },
      quiet: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const dir = await prepareDir(values);
  // Values by default: a new user's unit should show something at once, not "—".
  const outputEvery = Number(values["output-every"] ?? DEFAULT_OUTPUT_EVERY_MS);
  if (!Number.isFinite(outputEvery) || outputEvery < 0)
    throw new Error("--output-every expects milliseconds (0 publishes nothing)");
  const stateEvery = values["state-every"] ? Number(values["state-every"]) : undefined;
  const unit = createSimulatedUnit({
    dir,
    mqttUrl: values["mqtt-url"],
    httpBaseUrl: values["http-url"],
    outputs: parseOutputPairs(values.output ?? []),
    outputEveryMs: outputEvery || undefined,
    stateIntervalMs: stateEvery === undefined ? undefined : stateEvery * 1000,
    qos: values.qos === "1" ? 1 : 0,
    console: values.quiet ? undefined : (line) => console.log(line),
  });
  unit.on("error", (err) => console.error(`error: ${err.message}`));
  unit.on("updated", ({ from, to }) => console.error(`updated ${from} -> ${to}`));
  console.error(`unit working directory: ${dir}`);
  await unit.start();
  console.error(`unit ${unit.uuid} running version ${unit.commit}; Ctrl-C stops it`);
  const stop = () => {
    unit.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

main().catch((err: Error) => {
  console.error(err.message);
  console.error(USAGE);
  process.exit(2);
});
