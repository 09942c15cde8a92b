// Counters of the device plane, read by the metrics endpoint (src/metrics/) at scrape
// time. The routing hot path only does plain increments on this object: no labels to
// hash, no registry lookups, and nothing at all when no one scrapes.

/** Why a message never reached anyone (bounded: these and nothing else). */
export const DROP_REASONS = [
  /** A publish the ACL refused (re-addressed to the dropped topic). */
  "not_allowed",
  /** The publish check itself failed. */
  "check_failed",
  /** A delivery to a subscriber the ACL no longer allows. */
  "forward_denied",
  /** Over PEPEUNIT_MQTT_MAX_PAYLOAD (the client is disconnected). */
  "payload_too_large",
  /** The frame guard closed the connection: rate, packet size or a malformed header. */
  "rate_limited",
  "packet_too_large",
  "malformed",
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

export type MqttStats = {
  /** PUBLISH packets received from logged-in clients (the internal client included). */
  messagesIn: number;
  /** Messages delivered to subscribers (one per subscriber). */
  messagesOut: number;
  dropped: Record<DropReason, number>;
  /** Bytes read from and written to MQTT connections (TCP, TLS and WebSocket). */
  bytesIn: number;
  bytesOut: number;
};

export function createMqttStats(): MqttStats {
  const dropped = {} as Record<DropReason, number>;
  for (const r of DROP_REASONS) dropped[r] = 0;
  return { messagesIn: 0, messagesOut: 0, dropped, bytesIn: 0, bytesOut: 0 };
}

/** The frame guard's violation text, as a drop reason. */
export function violationReason(problem: string): DropReason {
  if (problem.includes("per second")) return "rate_limited";
  if (problem.includes("exceeds the limit")) return "packet_too_large";
  return "malformed";
}
