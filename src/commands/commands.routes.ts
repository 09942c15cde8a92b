import { createRoute, z } from "@hono/zod-openapi";
import { HttpError, unprocessable } from "../http/errors.ts";
import { createRouter, errorResponses, UuidParam } from "../http/openapi.ts";
import type { AppDeps } from "../http/types.ts";
import { otaOf } from "../ota/ota.service.ts";
import { loadUnitForDevice } from "../units/units.access.ts";
import {
  COMMAND_NAMES,
  COMMANDS,
  type CommandName,
  commandListed,
  sendCommand,
} from "./commands.service.ts";

// POST /units/send_command_to_input_base_topic/{U}?command=... (device-protocol §5):
// the unit itself (its token), its creator or an admin asks the instance to publish
// a command to the unit. Update goes through the OTA flow, so it is tracked too.

const CommandQuery = z.object({
  command: z
    .enum(COMMAND_NAMES as [CommandName, ...CommandName[]])
    .openapi({ param: { name: "command", in: "query" }, example: "SchemaUpdate" }),
});

export function commandsRoutes(deps: AppDeps) {
  const db = deps.database.db;
  const app = createRouter();

  app.openapi(
    createRoute({
      method: "post",
      path: "/send_command_to_input_base_topic/{uuid}",
      tags: ["device"],
      security: [{ token: [] }],
      summary:
        "Publish a command on the unit's input base topic (the unit, its creator or an admin)",
      description:
        'Payloads: {"COMMAND":"Update","PU_COMMIT_VERSION":"<target sha>"} (the unit is then ' +
        'RequestSent until it reports that sha), {"COMMAND":"EnvUpdate"}, {"COMMAND":"SchemaUpdate"}, ' +
        '{"COMMAND":"LogSync"}. 422 when the unit\'s schema template does not list the command\'s topic.',
      request: { params: UuidParam, query: CommandQuery },
      responses: {
        204: { description: "Published" },
        ...errorResponses(401, 404, 422),
        503: { description: "The MQTT broker could not publish" },
      },
    }),
    async (c) => {
      const unit = await loadUnitForDevice(db, c.get("principal"), c.req.valid("param").uuid);
      const { command } = c.req.valid("query");
      // Checked before anything is sent or recorded: an unlisted command changes nothing.
      if (!(await commandListed(deps, unit, command))) {
        throw unprocessable(
          `the unit's schema does not list ${COMMANDS[command]} in input_base_topic`,
        );
      }
      if (command === "Update") {
        const result = await otaOf(deps).requestUpdate(unit.uuid);
        if (result.status === "Error") throw new HttpError(503, result.error);
        return c.body(null, 204);
      }
      try {
        await sendCommand(deps, unit, command);
      } catch (err) {
        throw new HttpError(
          503,
          `publish failed: ${err instanceof Error ? err.message : String(err)}`,
        );
      }
      return c.body(null, 204);
    },
  );

  return app;
}
