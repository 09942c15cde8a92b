import { eq } from "drizzle-orm";
import type { Principal } from "../access/principal.ts";
import { canManage, canSee } from "../access/visibility.ts";
import { storedValue } from "../broker/ingest-parse.ts";
import { unitNodes } from "../db/schema.ts";
import { forbidden, HttpError, notFound, unprocessable } from "../http/errors.ts";
import type { AppDeps } from "../http/types.ts";
import { variableTopic } from "../units/unit-schema.ts";
import { findNodeWithUnit, type UnitNodeRow } from "./unit-nodes.store.ts";

// Set-input: a user writes a value into an Input variable. The instance publishes it
// on the variable's topic (the device subscribed to it from schema.json) and records it
// as the last value. Writing follows the same rule as linking into the input.
// Shared by PATCH /unit_nodes/set_state_input/{uuid} and the Telegram boards' buttons.

export async function setStateInput(
  deps: Pick<AppDeps, "database" | "config" | "broker" | "events">,
  user: Extract<Principal, { kind: "user" }>,
  uuid: string,
  state: string,
): Promise<UnitNodeRow> {
  const db = deps.database.db;
  const { domain, mqttMaxPayloadBytes } = deps.config;
  const found = await findNodeWithUnit(db, uuid);
  if (
    !found ||
    !canSee(user, found.unit.visibility, found.unit.creatorUuid) ||
    !canSee(user, found.node.visibility, found.unit.creatorUuid)
  ) {
    throw notFound("unit node");
  }
  const { node, unit } = found;
  if (node.type !== "Input") {
    throw unprocessable("only Input variables can be set; an Output is written by its unit");
  }
  if (!canManage(user, unit.creatorUuid) && !node.isRewritableInput) {
    throw forbidden(
      "this input is not rewritable: only its unit's creator (or an admin) may set it",
    );
  }
  if (Buffer.byteLength(state) > mqttMaxPayloadBytes) {
    throw unprocessable(
      `state is larger than the MQTT payload limit (${mqttMaxPayloadBytes} bytes)`,
    );
  }
  try {
    await deps.broker.publish(variableTopic(domain, node.uuid, node.topicName), state, { qos: 1 });
  } catch (err) {
    throw new HttpError(503, `publish failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  // The broker's ingest records it too, batched; written here so the answer already has it.
  const [updated] = await db
    .update(unitNodes)
    .set({ lastValue: storedValue(Buffer.from(state)), lastValueAt: new Date() })
    .where(eq(unitNodes.uuid, node.uuid))
    .returning();
  // The ingest records the same publish and may flush it around this write: the read
  // model reads the row back rather than trusting the order the two announcements arrive in.
  deps.events.emit("device-data.written", { seen: [], values: [], reload: [found.unit.uuid] });
  return updated ?? node;
}
