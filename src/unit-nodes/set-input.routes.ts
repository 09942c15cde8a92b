import { createRoute, z } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import { canManage, canSee } from "../access/visibility.ts";
import { storedValue } from "../broker/ingest-parse.ts";
import { unitNodes } from "../db/schema.ts";
import { requireUser } from "../http/auth.ts";
import { forbidden, HttpError, notFound, unprocessable } from "../http/errors.ts";
import {
  createRouter,
  errorResponses,
  jsonBody,
  jsonResponse,
  UuidParam,
} from "../http/openapi.ts";
import type { AppDeps } from "../http/types.ts";
import { variableTopic } from "../units/unit-schema.ts";
import { toUnitNodeOut, UnitNodeOut } from "./unit-nodes.schemas.ts";
import { findNodeWithUnit } from "./unit-nodes.store.ts";

// Set-input: a user writes a value into an Input variable. The instance publishes it
// on the variable's topic (the device subscribed to it from schema.json) and records it
// as the last value. Writing follows the same rule as linking into the input.

const SetStateBody = z
  .object({ state: z.string().openapi({ description: "the value, published unchanged" }) })
  .openapi("SetStateInput");

export function setInputRoutes(deps: AppDeps) {
  const db = deps.database.db;
  const { domain, mqttMaxPayloadBytes } = deps.config;
  const app = createRouter();

  app.openapi(
    createRoute({
      method: "patch",
      path: "/set_state_input/{uuid}",
      tags: ["unit_nodes"],
      summary: "Publish a value to an Input variable and keep it as its last value",
      description:
        "The unit's creator or an admin, or anyone who sees the input when is_rewritable_input is true.",
      request: { params: UuidParam, body: jsonBody(SetStateBody) },
      responses: {
        200: jsonResponse(UnitNodeOut, "The variable with its new last value"),
        ...errorResponses(401, 403, 404, 422),
        503: { description: "The MQTT broker could not publish" },
      },
    }),
    async (c) => {
      const user = requireUser(c.get("principal"));
      const { state } = c.req.valid("json");
      const found = await findNodeWithUnit(db, c.req.valid("param").uuid);
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
        await deps.broker.publish(variableTopic(domain, node.uuid, node.topicName), state, {
          qos: 1,
        });
      } catch (err) {
        throw new HttpError(
          503,
          `publish failed: ${err instanceof Error ? err.message : String(err)}`,
        );
      }
      // The broker's ingest records it too, batched; written here so the answer already has it.
      const [updated] = await db
        .update(unitNodes)
        .set({ lastValue: storedValue(Buffer.from(state)), lastValueAt: new Date() })
        .where(eq(unitNodes.uuid, node.uuid))
        .returning();
      return c.json(toUnitNodeOut(domain, updated ?? node), 200);
    },
  );

  return app;
}
