import { EventEmitter } from "node:events";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { DeviceLog, type LogEntry, type LogLevel } from "./device-log.ts";
import { createDeviceRest, type DeviceRest } from "./device-rest.ts";
import { type DeviceState, deviceState, freeMemory } from "./device-state.ts";
import { unpackFirmware } from "./firmware-archive.ts";
import { defaultGenerator, type OutputGenerator } from "./output-values.ts";
import {
  type DeviceEnv,
  type DeviceSchema,
  ENV_FILE,
  parseEnv,
  parseSchema,
  readUnitFiles,
  SCHEMA_FILE,
  unitUuidOfToken,
  writeUnitFile,
} from "./unit-files.ts";

// A unit in a Node process that behaves on the wire like the published Pepeunit
// clients (device-protocol.md): MQTT 3.1.1 with the unit JWT as username and an
// empty password, client id = unit uuid, one SUBSCRIBE per topic of input_base_topic
// and input_topic, its state right after connecting and every PU_STATE_SEND_INTERVAL,
// and the four commands. Its working directory plays the device's flash: an update
// unpacks the new firmware over it and the unit restarts from the files, so the
// version it reports afterwards is the one the instance packed into env.json.

export type CommandName = "Update" | "EnvUpdate" | "SchemaUpdate" | "LogSync";

/** The standard command topic names of input_base_topic (device-protocol §1). */
const COMMAND_OF_TOPIC: Record<string, CommandName> = {
  "update/pepeunit": "Update",
  "env_update/pepeunit": "EnvUpdate",
  "schema_update/pepeunit": "SchemaUpdate",
  "log_sync/pepeunit": "LogSync",
};
const STATE_TOPIC = "state/pepeunit";
const LOG_TOPIC = "log/pepeunit";

export type SimulatedUnitOptions = {
  /** The unit's working directory with env.json and schema.json (its "flash"). */
  dir: string;
  /** Broker URL instead of `mqtt://{PU_MQTT_HOST}:{PU_MQTT_PORT}` from env.json. */
  mqttUrl?: string;
  /** Instance origin instead of `{PU_HTTP_TYPE}://{PU_DOMAIN}` from env.json. */
  httpBaseUrl?: string;
  /** State period instead of PU_STATE_SEND_INTERVAL seconds. */
  stateIntervalMs?: number;
  /** Fixed values published on these outputs (once after connecting, or every outputEveryMs). */
  outputs?: Record<string, string>;
  /** Publish every output_topic at connect and each period: fixed values from `outputs`, generated otherwise. */
  outputEveryMs?: number;
  generator?: OutputGenerator;
  /** Log every received input value (default true); benchmarks turn it off. */
  logInputs?: boolean;
  /** Send log entries to log/pepeunit when the schema lists it (default true). */
  publishLogs?: boolean;
  /** Where log lines go besides the log topic (the CLI prints them). */
  console?: (line: string) => void;
  /** QoS of SUBSCRIBE and PUBLISH (default 0, as the MicroPython client). */
  qos?: 0 | 1;
  /** Wait before reconnecting a lost connection, ms (default 2000; 0 = never). */
  reconnectMs?: number;
  /** Extra MQTT.js options (tests). */
  mqttOptions?: IClientOptions;
};

export type InputMessage = { name: string; topic: string; payload: Buffer };

export type SimulatedUnitEvents = {
  /** CONNACK received. */
  connected: [];
  /** Subscribed to every input topic and state sent: the unit is running. */
  ready: [];
  input: [InputMessage];
  command: [{ command: CommandName; payload: Record<string, unknown> }];
  state: [DeviceState];
  log: [LogEntry];
  /** Firmware unpacked and the unit restarted from it. */
  updated: [{ from: string; to: string }];
  "env-updated": [];
  "schema-updated": [{ subscribed: string[]; unsubscribed: string[] }];
  "log-synced": [{ lines: number }];
  "subscribe-refused": [{ topic: string }];
  disconnected: [];
  /** Emitted only while someone listens, so a unit never crashes its host process. */
  error: [Error];
};

export class SimulatedUnit extends EventEmitter<SimulatedUnitEvents> {
  readonly dir: string;
  private readonly opts: SimulatedUnitOptions;
  private envData: DeviceEnv | null = null;
  private schemaData: DeviceSchema | null = null;
  private unitUuid = "";
  private rest: DeviceRest | null = null;
  private client: MqttClient | null = null;
  private timers: NodeJS.Timeout[] = [];
  private readonly logBook = new DeviceLog();
  private readonly generator: OutputGenerator;
  /** Physical topic → template name, for commands and inputs. */
  private baseNames = new Map<string, string>();
  private inputNames = new Map<string, string>();
  private subscribedTopics: string[] = [];
  /** Commands run one at a time, in arrival order, like the device's task. */
  private work: Promise<void> = Promise.resolve();
  private running = false;
  private tick = 0;

  constructor(opts: SimulatedUnitOptions) {
    super();
    this.opts = opts;
    this.dir = opts.dir;
    this.generator = opts.generator ?? defaultGenerator();
  }

  get uuid(): string {
    return this.unitUuid;
  }
  get env(): DeviceEnv {
    if (!this.envData) throw new Error("the unit has not been started");
    return this.envData;
  }
  get schema(): DeviceSchema {
    if (!this.schemaData) throw new Error("the unit has not been started");
    return this.schemaData;
  }
  /** The version the unit runs (env.json's PU_COMMIT_VERSION), as it reports it. */
  get commit(): string {
    return this.env.PU_COMMIT_VERSION;
  }
  get connected(): boolean {
    return this.client?.connected ?? false;
  }
  get subscriptions(): readonly string[] {
    return this.subscribedTopics;
  }

  /** Reads the files and connects; resolves once subscribed and the first state is out. */
  async start(): Promise<void> {
    if (this.running) return;
    await this.load();
    this.running = true;
    try {
      await this.connect();
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    this.clearTimers();
    await this.disconnect();
    await this.work.catch(() => {});
  }

  /** Publishes a value on an output (or output base) topic name; resolves when written. */
  async publishOutput(name: string, value: string | Buffer): Promise<void> {
    const topics = this.schema.output_topic[name] ?? this.schema.output_base_topic[name];
    if (!topics) throw new Error(`no output topic named ${name}`);
    // Between a command's disconnect and the new connection (EnvUpdate, Update), wait.
    if (!this.client && this.running) await this.nextReady(10_000);
    const client = this.client;
    if (!client) throw new Error("the unit is not connected");
    for (const topic of topics) await client.publishAsync(topic, value, { qos: this.qos });
  }

  async publishState(): Promise<void> {
    const topic = this.schemaData?.output_base_topic[STATE_TOPIC]?.[0];
    const client = this.client;
    if (!topic || !client) return;
    const state = deviceState(this.dir, this.commit);
    await client.publishAsync(topic, JSON.stringify(state), { qos: this.qos });
    this.emit("state", state);
  }

  /** Logs like the device: console sink, the LogSync buffer, and log/pepeunit when listed. */
  log(level: LogLevel, text: string): void {
    const added = this.logBook.add(level, text, freeMemory());
    if (!added) return;
    this.opts.console?.(added.line);
    this.emit("log", added.entry);
    const topic = this.schemaData?.output_base_topic[LOG_TOPIC]?.[0];
    if (topic && this.opts.publishLogs !== false && this.client?.connected) {
      this.client.publish(topic, added.line, { qos: 0 }, () => {});
    }
  }

  recentLogs(): string[] {
    return this.logBook.recent();
  }

  private nextReady(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off("ready", onReady);
        reject(new Error("the unit did not reconnect in time"));
      }, timeoutMs);
      const onReady = () => {
        clearTimeout(timer);
        resolve();
      };
      this.once("ready", onReady);
    });
  }

  private get qos(): 0 | 1 {
    return this.opts.qos ?? 0;
  }

  private fail(err: Error): void {
    if (this.listenerCount("error") > 0) this.emit("error", err);
  }

  private async load(): Promise<void> {
    const { env, schema } = await readUnitFiles(this.dir);
    this.applyEnv(env);
    this.applySchema(schema);
  }

  private applyEnv(env: DeviceEnv): void {
    this.envData = env;
    this.unitUuid = unitUuidOfToken(env.PU_AUTH_TOKEN);
    this.rest = createDeviceRest(env, this.unitUuid, this.opts.httpBaseUrl);
    this.logBook.minLevel = env.PU_MIN_LOG_LEVEL;
    this.logBook.maxLines = env.PU_MAX_LOG_LENGTH;
  }

  private applySchema(schema: DeviceSchema): void {
    this.schemaData = schema;
    this.baseNames = new Map();
    this.inputNames = new Map();
    for (const [name, topics] of Object.entries(schema.input_base_topic)) {
      for (const t of topics) this.baseNames.set(t, name);
    }
    for (const [name, topics] of Object.entries(schema.input_topic)) {
      for (const t of topics) this.inputNames.set(t, name);
    }
  }

  /** Every topic of input_base_topic and input_topic, in schema order, once each. */
  private wantedTopics(): string[] {
    const all = [
      ...Object.values(this.schema.input_base_topic).flat(),
      ...Object.values(this.schema.input_topic).flat(),
    ];
    return [...new Set(all)];
  }

  /** Connects with the current env; resolves at the first ready or the first failure. */
  private connect(): Promise<void> {
    const env = this.env;
    const url = this.opts.mqttUrl ?? `mqtt://${env.PU_MQTT_HOST}:${env.PU_MQTT_PORT}`;
    const client = mqtt.connect(url, {
      clientId: this.unitUuid,
      username: env.PU_AUTH_TOKEN,
      // Empty, with the password flag set, as the device clients send it (§4).
      password: "",
      protocolVersion: 4,
      clean: true,
      keepalive: env.PU_MQTT_KEEPALIVE,
      reconnectPeriod: this.opts.reconnectMs ?? 2000,
      connectTimeout: 5000,
      // The unit subscribes itself after every CONNACK, one topic per SUBSCRIBE.
      resubscribe: false,
      ...this.opts.mqttOptions,
    });
    this.client = client;
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (err?: Error) => {
        if (settled) return;
        settled = true;
        if (err) reject(err);
        else resolve();
      };
      client.on("connect", () => {
        if (this.client !== client) return;
        this.emit("connected");
        this.onConnected(client).then(
          () => settle(),
          (err: Error) => {
            this.fail(err);
            settle(err);
          },
        );
      });
      client.on("message", (topic, payload) => this.onMessage(topic, payload));
      client.on("close", () => {
        if (this.client === client) this.emit("disconnected");
        if (!this.running || client.options.reconnectPeriod === 0) {
          settle(new Error("the MQTT connection closed before the unit was ready"));
        }
      });
      client.on("error", (err) => {
        this.fail(err);
        // A refused CONNACK or an unreachable broker at the first connect fails start().
        settle(err);
      });
    });
  }

  private async onConnected(client: MqttClient): Promise<void> {
    this.log("Info", `MQTT connected as ${this.unitUuid}`);
    const granted: string[] = [];
    for (const topic of this.wantedTopics()) {
      if (await this.subscribeOne(client, topic)) granted.push(topic);
    }
    this.subscribedTopics = granted;
    await this.publishState();
    this.startTimers();
    // Periodic values start at once: the first is there as soon as the unit is.
    if (this.opts.outputEveryMs) this.publishOutputs();
    if (this.opts.outputs && !this.opts.outputEveryMs) {
      for (const [name, value] of Object.entries(this.opts.outputs)) {
        await this.publishOutput(name, value).catch((err: Error) => this.log("Error", err.message));
      }
    }
    this.emit("ready");
  }

  /** One SUBSCRIBE; a refusal (SUBACK 0x80) is logged and reported, the unit keeps running. */
  private async subscribeOne(client: MqttClient, topic: string): Promise<boolean> {
    try {
      const granted = await client.subscribeAsync(topic, { qos: this.qos });
      const code = granted[0]?.qos;
      if (code === undefined || code === 0x80) throw new Error("refused");
      return true;
    } catch (err) {
      if (!client.connected) throw err;
      this.log("Error", `Subscription refused: ${topic}`);
      this.emit("subscribe-refused", { topic });
      return false;
    }
  }

  private startTimers(): void {
    this.clearTimers();
    const stateMs = this.opts.stateIntervalMs ?? this.env.PU_STATE_SEND_INTERVAL * 1000;
    if (stateMs > 0) {
      this.timers.push(
        setInterval(() => {
          if (this.client?.connected) this.publishState().catch(() => {});
        }, stateMs),
      );
    }
    const every = this.opts.outputEveryMs;
    if (every && every > 0) {
      this.timers.push(setInterval(() => this.publishOutputs(), every));
    }
  }

  private publishOutputs(): void {
    if (!this.client?.connected) return;
    this.tick++;
    const fixed = this.opts.outputs ?? {};
    for (const name of Object.keys(this.schema.output_topic)) {
      const value = fixed[name] ?? this.generator(name, this.tick);
      this.publishOutput(name, value).catch(() => {});
    }
  }

  private clearTimers(): void {
    for (const t of this.timers.splice(0)) clearInterval(t);
  }

  private async disconnect(): Promise<void> {
    const client = this.client;
    this.client = null;
    if (!client) return;
    await new Promise<void>((resolve) => {
      // A graceful DISCONNECT; a dead connection is not waited for.
      const timer = setTimeout(() => client.end(true, {}, () => resolve()), 2000);
      client.end(false, {}, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private onMessage(topic: string, payload: Buffer): void {
    const base = this.baseNames.get(topic);
    if (base !== undefined) {
      this.onCommand(base, payload);
      return;
    }
    const name = this.inputNames.get(topic);
    if (name === undefined) return;
    this.emit("input", { name, topic, payload });
    if (this.opts.logInputs !== false) {
      const text = payload.toString("utf8");
      this.log("Info", `Input ${name}: ${text.length > 64 ? `${text.slice(0, 64)}...` : text}`);
    }
  }

  private onCommand(topicName: string, raw: Buffer): void {
    let payload: Record<string, unknown> = {};
    try {
      const parsed: unknown = raw.length ? JSON.parse(raw.toString("utf8")) : {};
      if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) {
        payload = parsed as Record<string, unknown>;
      }
    } catch {
      this.log("Warning", `Command on ${topicName} is not JSON`);
    }
    // The clients dispatch on the topic; the COMMAND key covers non-standard topic names.
    const command =
      COMMAND_OF_TOPIC[topicName] ??
      (["Update", "EnvUpdate", "SchemaUpdate", "LogSync"].includes(String(payload.COMMAND))
        ? (payload.COMMAND as CommandName)
        : undefined);
    if (!command) {
      this.log("Warning", `Unknown command on ${topicName}`);
      return;
    }
    this.log("Info", `Get base MQTT command: ${topicName}`);
    this.emit("command", { command, payload });
    this.work = this.work
      .then(() => this.runCommand(command, payload))
      .catch((err: Error) => {
        this.log("Error", `Error in base MQTT command: ${err.message}`);
        this.fail(err);
      });
  }

  private async runCommand(command: CommandName, payload: Record<string, unknown>): Promise<void> {
    if (!this.running) return;
    if (command === "Update") return this.update(payload);
    if (command === "EnvUpdate") return this.envUpdate();
    if (command === "SchemaUpdate") return this.schemaUpdate();
    return this.logSync();
  }

  /**
   * Like the clients' RESTART_EXEC mode: drop the MQTT connection, download, unpack over
   * the working directory, restart from the new files. A failed download reconnects as is.
   */
  private async update(payload: Record<string, unknown>): Promise<void> {
    const from = this.commit;
    const target = typeof payload.PU_COMMIT_VERSION === "string" ? payload.PU_COMMIT_VERSION : "";
    if (target === from) {
      this.log("Info", "No update needed: current version = target version");
      return;
    }
    this.clearTimers();
    await this.disconnect();
    let archive: Buffer;
    try {
      archive = await (this.rest as DeviceRest).firmwareTgz();
      await unpackFirmware(archive, this.dir);
    } catch (err) {
      this.log("Error", `Update failed: ${(err as Error).message}`);
      if (this.running) await this.connect();
      return;
    }
    this.log("Info", "Success extract archive");
    await this.restart();
    if (target && this.commit !== target) {
      this.log("Warning", `Updated to ${this.commit}, but the command named ${target}`);
    }
    this.emit("updated", { from, to: this.commit });
  }

  /** The device resets and boots from its files: a new connection, new env, new schema. */
  private async restart(): Promise<void> {
    this.clearTimers();
    await this.disconnect();
    await this.load();
    if (this.running) await this.connect();
  }

  private async envUpdate(): Promise<void> {
    const body = await (this.rest as DeviceRest).env();
    const env = parseEnv(body);
    await writeUnitFile(this.dir, ENV_FILE, body);
    this.log("Info", "Success update env");
    this.clearTimers();
    await this.disconnect();
    this.applyEnv(env);
    if (this.running) await this.connect();
    this.emit("env-updated");
  }

  private async schemaUpdate(): Promise<void> {
    const body = await (this.rest as DeviceRest).schema();
    const schema = parseSchema(body);
    await writeUnitFile(this.dir, SCHEMA_FILE, body);
    const before = new Set(this.subscribedTopics);
    this.applySchema(schema);
    const wanted = this.wantedTopics();
    const client = this.client;
    const subscribed: string[] = [];
    if (client?.connected) {
      // Like the clients: subscribe to every topic again, one per SUBSCRIBE.
      for (const t of wanted) if (await this.subscribeOne(client, t)) subscribed.push(t);
      const gone = [...before].filter((t) => !wanted.includes(t));
      if (gone.length) await client.unsubscribeAsync(gone);
      this.subscribedTopics = subscribed;
      this.log("Info", "Success update schema");
      this.emit("schema-updated", {
        subscribed: subscribed.filter((t) => !before.has(t)),
        unsubscribed: gone,
      });
    }
  }

  private async logSync(): Promise<void> {
    const topic = this.schema.output_base_topic[LOG_TOPIC]?.[0];
    const client = this.client;
    if (!topic || !client) return;
    const lines = this.logBook.recent();
    for (const line of lines) await client.publishAsync(topic, line, { qos: this.qos });
    this.emit("log-synced", { lines: lines.length });
  }
}

export function createSimulatedUnit(opts: SimulatedUnitOptions): SimulatedUnit {
  return new SimulatedUnit(opts);
}
