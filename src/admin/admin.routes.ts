import { createRoute, z } from "@hono/zod-openapi";
import { requireAdmin } from "../http/auth.ts";
import { HttpError, unprocessable } from "../http/errors.ts";
import { createRouter, errorResponses, jsonBody, jsonResponse } from "../http/openapi.ts";
import type { AppDeps } from "../http/types.ts";
import { getRegistrationMode, setRegistrationMode } from "../users/users.store.ts";

const RegistrationModeSchema = z.enum(["Open", "EmailVerification", "ManualApproval", "Closed"]);
const SettingsOut = z
  .object({ registration_mode: RegistrationModeSchema, mail_configured: z.boolean() })
  .openapi("InstanceSettings");
const SettingsPatch = z
  .object({ registration_mode: RegistrationModeSchema.optional() })
  .openapi("InstanceSettingsPatch");
const ClusterMemberOut = z
  .object({
    node: z.string(),
    roles: z.array(z.string()),
    last_seen: z.string().openapi({ format: "date-time" }),
  })
  .openapi("ClusterMember");
const ClusterOut = z
  .object({
    /** This process (the one that answered). */
    node: z.string(),
    cluster_mode: z.boolean(),
    roles: z.array(z.string()),
    cluster: z.array(ClusterMemberOut),
  })
  .openapi("ClusterStatus");
const tags = ["admin"];

export function adminRoutes(deps: AppDeps) {
  const db = deps.database.db;
  const app = createRouter();
  const current = async () => ({
    registration_mode: await getRegistrationMode(db),
    mail_configured: deps.mailer.configured,
  });

  app.openapi(
    createRoute({
      method: "get",
      path: "/settings",
      tags,
      summary: "Instance settings (admin)",
      responses: { 200: jsonResponse(SettingsOut, "Settings"), ...errorResponses(401, 403) },
    }),
    async (c) => {
      requireAdmin(c.get("principal"));
      return c.json(await current(), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "patch",
      path: "/settings",
      tags,
      summary: "Change instance settings (admin)",
      request: { body: jsonBody(SettingsPatch) },
      responses: { 200: jsonResponse(SettingsOut, "Settings"), ...errorResponses(401, 403, 422) },
    }),
    async (c) => {
      requireAdmin(c.get("principal"));
      const body = c.req.valid("json");
      if (body.registration_mode) {
        if (body.registration_mode === "EmailVerification" && !deps.mailer.configured) {
          throw unprocessable("e-mail verification needs an SMTP server (PEPEUNIT_SMTP_URL)");
        }
        await setRegistrationMode(db, body.registration_mode);
      }
      return c.json(await current(), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/cluster",
      tags,
      summary: "The instance's processes and the once-only roles each holds (admin)",
      responses: {
        200: jsonResponse(ClusterOut, "Processes"),
        ...errorResponses(401, 403, 503),
      },
    }),
    async (c) => {
      requireAdmin(c.get("principal"));
      const cluster = deps.cluster;
      let members: z.infer<typeof ClusterMemberOut>[];
      try {
        members = (await cluster?.members()) ?? [];
      } catch {
        throw new HttpError(503, "cluster presence (Redis) unreachable");
      }
      return c.json(
        {
          node: cluster?.nodeName ?? deps.config.nodeName,
          cluster_mode: cluster?.enabled ?? false,
          roles: cluster?.roles() ?? [],
          cluster: members,
        },
        200,
      );
    },
  );

  return app;
}
