import { createRoute, z } from "@hono/zod-openapi";
import { requireAdmin, requireUser } from "../http/auth.ts";
import { HttpError } from "../http/errors.ts";
import {
  createRouter,
  errorResponses,
  jsonBody,
  jsonResponse,
  UuidParam,
} from "../http/openapi.ts";
import type { AppDeps } from "../http/types.ts";
import {
  GrantBody,
  GrantOut,
  PeerOutSchema,
  PeerPatch,
  RemoteEdgeOut,
  SettingsOut,
  SettingsPatch,
  toGrantOut,
  toRemoteEdgeOut,
} from "./federation.schemas.ts";
import type { FederationService } from "./federation.service.ts";

// Admin control (/admin/federation…) and owners' grants and remote edges (/federation…).

function need(deps: AppDeps): FederationService {
  if (!deps.federation) throw new HttpError(503, "federation is not available");
  return deps.federation;
}

export function federationAdminRoutes(deps: AppDeps) {
  const app = createRouter();
  const tags = ["admin"];

  app.openapi(
    createRoute({
      method: "get",
      path: "/",
      tags,
      summary: "Federation on/off and mode (admin)",
      responses: { 200: jsonResponse(SettingsOut, "Settings"), ...errorResponses(401, 403) },
    }),
    (c) => {
      requireAdmin(c.get("principal"));
      return c.json(need(deps).settings(), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "patch",
      path: "/",
      tags,
      summary: "Turn federation on/off, or switch open / allow-list mode (admin)",
      description:
        "Off: no ActivityPub endpoints, no outbound delivery (queued activities wait), remote " +
        "edges suspended (units get SchemaUpdate); all restored when back on.",
      request: { body: jsonBody(SettingsPatch) },
      responses: { 200: jsonResponse(SettingsOut, "Settings"), ...errorResponses(401, 403, 422) },
    }),
    async (c) => {
      requireAdmin(c.get("principal"));
      const f = need(deps);
      await f.updateSettings(c.req.valid("json"));
      return c.json(f.settings(), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/peers",
      tags,
      summary: "Known instances: lists, last contact, follower counts, delivery errors (admin)",
      responses: {
        200: jsonResponse(z.object({ peers: z.array(PeerOutSchema) }), "Peers"),
        ...errorResponses(401, 403),
      },
    }),
    async (c) => {
      requireAdmin(c.get("principal"));
      return c.json({ peers: await need(deps).peers() }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "put",
      path: "/peers/{domain}",
      tags,
      summary: "Block / unblock an instance, or put it on the allow-list (admin)",
      description:
        "Blocking stops deliveries both ways at once and drops that instance's follows of our outputs.",
      request: { params: z.object({ domain: z.string() }), body: jsonBody(PeerPatch) },
      responses: { 200: jsonResponse(PeerOutSchema, "Peer"), ...errorResponses(401, 403, 422) },
    }),
    async (c) => {
      requireAdmin(c.get("principal"));
      const peer = await need(deps).setPeer(c.req.valid("param").domain, c.req.valid("json"));
      return c.json(peer, 200);
    },
  );

  return app;
}

export function federationRoutes(deps: AppDeps) {
  const app = createRouter();
  const tags = ["federation"];

  app.openapi(
    createRoute({
      method: "get",
      path: "/remote_edges",
      tags,
      summary: "Links from remote outputs into your inputs, with their status",
      request: { query: z.object({ input_uuid: z.uuid().optional() }) },
      responses: {
        200: jsonResponse(z.object({ remote_edges: z.array(RemoteEdgeOut) }), "Remote edges"),
        ...errorResponses(401, 403, 422),
      },
    }),
    (c) => {
      const user = requireUser(c.get("principal"));
      const q = c.req.valid("query");
      const rows = need(deps)
        .remoteEdges()
        .filter((e) => user.role === "Admin" || e.creatorUuid === user.uuid)
        .filter((e) => !q.input_uuid || e.inputUuid === q.input_uuid);
      return c.json({ remote_edges: rows.map(toRemoteEdgeOut) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/grants",
      tags,
      summary: "Grants of one of your Private outputs",
      request: { query: z.object({ node_uuid: z.uuid() }) },
      responses: {
        200: jsonResponse(z.object({ grants: z.array(GrantOut) }), "Grants"),
        ...errorResponses(401, 403, 404, 422),
      },
    }),
    async (c) => {
      const user = requireUser(c.get("principal"));
      const grants = await need(deps).grants(user, c.req.valid("query").node_uuid);
      return c.json({ grants: grants.map(toGrantOut) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/grants",
      tags,
      summary: "Open a Private output to a remote instance or to one remote unit",
      request: { body: jsonBody(GrantBody) },
      responses: { 201: jsonResponse(GrantOut, "Granted"), ...errorResponses(401, 403, 404, 422) },
    }),
    async (c) => {
      const user = requireUser(c.get("principal"));
      const body = c.req.valid("json");
      const g = await need(deps).grant(user, body.node_uuid, body.grantee);
      return c.json(toGrantOut(g), 201);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/grants/{uuid}",
      tags,
      summary: "Revoke a grant (followers that lose access are rejected)",
      request: { params: UuidParam },
      responses: { 204: { description: "Revoked" }, ...errorResponses(401, 403, 404, 422) },
    }),
    async (c) => {
      const user = requireUser(c.get("principal"));
      await need(deps).revokeGrant(user, c.req.valid("param").uuid);
      return c.body(null, 204);
    },
  );

  return app;
}
