import { createRoute, z } from "@hono/zod-openapi";
import { requireUser } from "../http/auth.ts";
import {
  createRouter,
  errorResponses,
  jsonBody,
  jsonResponse,
  UuidParam,
} from "../http/openapi.ts";
import type { AppDeps } from "../http/types.ts";
import { setStateInput } from "./set-input.ts";
import { toUnitNodeOut, UnitNodeOut } from "./unit-nodes.schemas.ts";

// Set-input over REST; the rules and the publish are in set-input.ts.

const SetStateBody = z
  .object({ state: z.string().openapi({ description: "the value, published unchanged" }) })
  .openapi("SetStateInput");

export function setInputRoutes(deps: AppDeps) {
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
      const updated = await setStateInput(
        deps,
        user,
        c.req.valid("param").uuid,
        c.req.valid("json").state,
      );
      return c.json(toUnitNodeOut(deps.config.domain, updated), 200);
    },
  );

  return app;
}
