import type { MqttClient } from "mqtt";
import { SvelteMap } from "svelte/reactivity";

// Live variable values: the browser subscribes over MQTT-over-WebSocket at
// /mqtt to the topics of the variables it can see, with the user's JWT as the
// MQTT username (empty password). No polling: a value shows as it is published.

export type LiveValue = { value: string; at: string };
export type LiveStatus = "off" | "connecting" | "live" | "unavailable";

const SUBSCRIBE_BATCH = 200;

function decode(payload: Uint8Array): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(payload);
  } catch {
    // Opaque bytes (e.g. a unit's own binary format): show them as hex.
    return Array.from(payload.slice(0, 64), (b) => b.toString(16).padStart(2, "0")).join(" ");
  }
}

export function mqttUrl(loc: Pick<Location, "protocol" | "host">): string {
  return `${loc.protocol === "https:" ? "wss" : "ws"}://${loc.host}/mqtt`;
}

export class LiveValues {
  /** variable uuid → latest value */
  values = new SvelteMap<string, LiveValue>();
  status = $state<LiveStatus>("off");
  #client: MqttClient | null = null;
  #token: string | null = null;
  /** topic → variable uuids (two variables never share a topic, but stay safe) */
  #byTopic = new Map<string, string[]>();
  #subscribed = new Set<string>();

  /** Values the REST API already knows (last_value), unless a newer one arrived live. */
  seed(
    nodes: Array<{ uuid: string; last_value: string | null; last_value_datetime: string | null }>,
  ): void {
    for (const n of nodes) {
      if (n.last_value === null) continue;
      const at = n.last_value_datetime ?? "";
      const known = this.values.get(n.uuid);
      if (!known || known.at < at) this.values.set(n.uuid, { value: n.last_value, at });
    }
  }

  /** An input shows what reaches its device: the newest of its own and its linked outputs' values. */
  seedLinked(links: Array<{ output_uuid: string; input_uuid: string }>): void {
    for (const l of links) {
      const out = this.values.get(l.output_uuid);
      const known = this.values.get(l.input_uuid);
      if (out && (!known || known.at < out.at)) this.values.set(l.input_uuid, out);
    }
  }

  /** A value this browser just set (shown at once; the broker echo confirms it). */
  local(uuid: string, value: string): void {
    this.values.set(uuid, { value, at: new Date().toISOString() });
  }

  /** Follow exactly these variables' topics, connecting with this token (null: disconnect). */
  follow(token: string | null, topics: Array<{ uuid: string; topic: string }>): void {
    if (token !== this.#token) {
      this.stop();
      this.#token = token;
    }
    this.#byTopic = new Map();
    for (const t of topics)
      this.#byTopic.set(t.topic, [...(this.#byTopic.get(t.topic) ?? []), t.uuid]);
    if (!token) return;
    if (!this.#client) this.#start(token);
    else this.#resubscribe();
  }

  stop(): void {
    this.#client?.end(true);
    this.#client = null;
    this.#subscribed = new Set();
    this.status = "off";
  }

  #start(token: string): void {
    this.status = "connecting";
    // MQTT.js is a third of the bundle: loaded after the graph has been drawn.
    const started = import("mqtt").then(({ default: mqtt }) => {
      if (this.#token !== token || this.#client) return;
      this.#connect(mqtt.connect, token);
    });
    started.catch(() => {
      this.status = "unavailable";
    });
  }

  #connect(connect: typeof import("mqtt").connect, token: string): void {
    // The browser build of MQTT.js only has a default export (passed in as `connect`).
    const client = connect(mqttUrl(location), {
      username: token,
      password: "",
      protocolVersion: 4,
      clean: true,
      reconnectPeriod: 5_000,
      connectTimeout: 10_000,
      clientId: `web-${Math.random().toString(36).slice(2, 12)}`,
    });
    this.#client = client;
    client.on("connect", () => {
      this.status = "live";
      this.#subscribed = new Set();
      this.#resubscribe();
    });
    client.on("close", () => {
      if (this.#client === client && this.status === "live") this.status = "connecting";
    });
    client.on("error", () => {
      if (this.#client === client) this.status = "unavailable";
    });
    client.on("message", (topic, payload) => {
      const at = new Date().toISOString();
      const value = decode(payload);
      for (const uuid of this.#byTopic.get(topic) ?? []) this.values.set(uuid, { value, at });
    });
  }

  #resubscribe(): void {
    const client = this.#client;
    if (!client?.connected) return;
    const wanted = new Set(this.#byTopic.keys());
    const gone = [...this.#subscribed].filter((t) => !wanted.has(t));
    const fresh = [...wanted].filter((t) => !this.#subscribed.has(t));
    if (gone.length) client.unsubscribe(gone);
    for (let i = 0; i < fresh.length; i += SUBSCRIBE_BATCH) {
      // A refused topic (SUBACK 0x80) only means this user may not read it.
      client.subscribe(fresh.slice(i, i + SUBSCRIBE_BATCH), { qos: 0 });
    }
    this.#subscribed = wanted;
  }
}

export const live = new LiveValues();
