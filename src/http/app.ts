import { OpenAPIHono } from "@hono/zod-openapi";
import { accessTokensRoutes } from "../access-tokens/access-tokens.routes.ts";
import { adminRoutes } from "../admin/admin.routes.ts";
import { alertsRoutes, notificationsRoutes } from "../alerts/alerts.routes.ts";
import { backupRoutes } from "../backup/backup.routes.ts";
import { boardsRoutes } from "../boards/boards.routes.ts";
import { commandsRoutes } from "../commands/commands.routes.ts";
import { edgesRoutes } from "../edges/edges.routes.ts";
import { federationAdminRoutes, federationRoutes } from "../federation/federation.routes.ts";
import { federationMiddleware } from "../federation/hono.ts";
import { firmwareRoutes } from "../firmware/firmware.routes.ts";
import { historyRoutes } from "../history/history.routes.ts";
import { liveRoutes } from "../live/live.routes.ts";
import { metricsRoutes } from "../metrics/metrics.routes.ts";
import { repoUpdateRoutes, unitUpdateRoutes } from "../ota/ota.routes.ts";
import { reposRoutes } from "../repos/repos.routes.ts";
import { standardReposRoutes } from "../standard-repos/standard-repos.routes.ts";
import { telegramRoutes, telegramUserRoutes } from "../telegram/telegram.routes.ts";
import { unitLogsRoutes } from "../unit-logs/unit-logs.routes.ts";
import { setInputRoutes } from "../unit-nodes/set-input.routes.ts";
import { unitNodesRoutes } from "../unit-nodes/unit-nodes.routes.ts";
import { deviceRoutes } from "../units/device.routes.ts";
import { unitsRoutes } from "../units/units.routes.ts";
import { usersRoutes } from "../users/users.routes.ts";
import { spaRoutes } from "../web/spa.routes.ts";
import { principalMiddleware } from "./auth.ts";
import { LARGER_BODY_ROUTES, requestBodyLimit } from "./body-limit.ts";
import { docsRoutes } from "./docs.routes.ts";
import { errorHandler } from "./errors.ts";
import { withSharedResponses } from "./openapi.ts";
import { securityHeaders } from "./security-headers.ts";
import type { AppDeps, AppEnv } from "./types.ts";

export const API_PREFIX = "/pepeunit/api/v1";

/** The whole HTTP surface: REST API, its OpenAPI document and docs, health check. */
export function createHttpApp(deps: AppDeps): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>();
  app.onError(errorHandler(deps.log));
  app.notFound((c) => c.json({ detail: "not found" }, 404));

  // First: it times everything below (src/metrics/); absent when metrics are off.
  if (deps.metrics) app.use("*", deps.metrics.http);

  app.use("*", securityHeaders());
  // Bodies are capped before anything reads them (federation, authentication, validation).
  // The inboxes have their own limit, which may be larger than the global one.
  app.use(
    "*",
    requestBodyLimit(deps.config.maxBodyBytes, [
      ...LARGER_BODY_ROUTES,
      { method: "POST", path: /^\/ap\//, maxBytes: deps.config.federationMaxInboxBytes },
    ]),
  );

  // Federation first: /ap/*, /.well-known/webfinger|nodeinfo, /nodeinfo/*; the rest falls through.
  if (deps.federation) app.use("*", federationMiddleware(deps.federation));

  app.get("/healthz", async (c) => {
    try {
      await deps.database.ping();
    } catch {
      return c.json({ detail: "database unreachable" }, 503);
    }
    const cluster = deps.cluster;
    let members: Awaited<ReturnType<NonNullable<typeof cluster>["members"]>> = [];
    try {
      members = (await cluster?.members()) ?? [];
    } catch {
      // Redis unreachable: this process still serves; the list is what it cannot know.
      return c.json({ detail: "cluster presence (Redis) unreachable" }, 503);
    }
    return c.json({
      status: "ok",
      database: deps.database.kind,
      node: cluster?.nodeName ?? deps.config.nodeName,
      roles: cluster?.roles() ?? [],
      cluster: members,
    });
  });

  // Registered on or off: off, it answers 404 instead of the SPA taking the path.
  app.route("/", metricsRoutes(deps.metrics, deps.config.metricsToken));

  const api = new OpenAPIHono<AppEnv>();
  api.use("*", principalMiddleware(deps.resolvePrincipal));
  api.route("/users", accessTokensRoutes(deps)); // before /users/{uuid}
  api.route("/users", notificationsRoutes(deps));
  api.route("/users", usersRoutes(deps));
  api.route("/admin/federation", federationAdminRoutes(deps));
  api.route("/admin/standard_repos", standardReposRoutes(deps));
  api.route("/admin/backups", backupRoutes(deps));
  api.route("/admin", adminRoutes(deps));
  api.route("/federation", federationRoutes(deps));
  api.route("/repos", reposRoutes(deps));
  api.route("/repos", repoUpdateRoutes(deps));
  api.route("/units", deviceRoutes(deps));
  api.route("/units", commandsRoutes(deps));
  api.route("/units", firmwareRoutes(deps));
  api.route("/units", unitLogsRoutes(deps));
  api.route("/units", unitUpdateRoutes(deps));
  api.route("/units", unitsRoutes(deps));
  api.route("/unit_nodes", historyRoutes(deps)); // before /unit_nodes/{uuid}
  api.route("/unit_nodes", setInputRoutes(deps));
  api.route("/unit_nodes", unitNodesRoutes(deps));
  api.route("/unit_node_edges", edgesRoutes(deps));
  api.route("/alerts", alertsRoutes(deps));
  if (deps.live) api.route("/live", liveRoutes({ live: deps.live }));
  // Added last: the OpenAPI document keeps its older operations first (the REST fuzz
  // test seeds each operation by its place).
  api.route("/users", telegramUserRoutes(deps));
  api.route("/boards", boardsRoutes(deps));
  api.route("/telegram", telegramRoutes(deps));
  api.openAPIRegistry.registerComponent("securitySchemes", "token", {
    type: "apiKey",
    in: "header",
    name: "x-auth-token",
  });
  // Built once, on first request (every route is registered by then).
  let doc: object | undefined;
  api.get("/openapi.json", (c) => {
    doc ??= withSharedResponses(
      api.getOpenAPI31Document({
        openapi: "3.1.0",
        info: { title: "Pepeunit API", version: "1" },
        servers: [{ url: API_PREFIX }],
      }),
    );
    return c.json(doc);
  });
  app.route(API_PREFIX, api);
  app.route("/", docsRoutes("/pepeunit/docs", `${API_PREFIX}/openapi.json`));
  app.route("/", spaRoutes()); // last: the graph UI answers only what nothing above did
  return app;
}
