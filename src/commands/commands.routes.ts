import { createRoute, z } from "@hono/zod-openapi";
import { createRouter, errorResponses, UuidParam } from "../http/openapi.ts";
import type { AppDeps } from "../http/types.ts";
import { COMMAND_NAMES, type CommandName } from "./commands.service.ts";
import { runCommand } from "./run-command.ts";

// POST /units/send_command_to_input_base_topic/{U}?command=... (device-protocol §5):
// the unit itself (its token), its creator or an admin asks the instance to publish
// a command to the unit. Update goes through the OTA flow, so it is tracked too.

const CommandQuery = z.object({
  command: z
    .enum(COMMAND_NAMES as [CommandName, ...CommandName[]])
    .openapi({ param: { name: "command", in: "query" }, example: "SchemaUpdate" }),
});

export function commandsRoutes(deps: AppDeps) {
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
      await runCommand(
        deps,
        c.get("principal"),
        c.req.valid("param").uuid,
        c.req.valid("query").command,
      );
      return c.body(null, 204);
    },
  );

  return app;
}
