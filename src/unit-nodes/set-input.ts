import { eq } from "drizzle-orm";
import type { Principal } from "../access/principal.ts";
import { canManage, canSee } from "../access/visibility.ts";
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
  // The broker's ingest recorded the publish with its own stamp (broker.publish hands it
  // over before sending); flushing now puts it in the database, and through the ingest's
  // announcement in the read model, before the answer. One writer for the row: a second
  // write here with its own stamp raced the ingest's and left memory and database apart.
  await deps.broker.flush();
  const [stored] = await db.select().from(unitNodes).where(eq(unitNodes.uuid, node.uuid));
  return stored ?? node;
}
