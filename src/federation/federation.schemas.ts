import { z } from "@hono/zod-openapi";
import type { GrantRow } from "./federation.store.ts";
import type { RemoteEdge } from "./links.ts";

export const RemoteEdgeOut = z
  .object({
    uuid: z.uuid(),
    output: z.string().openapi({ description: "the remote output's actor URL" }),
    input_uuid: z.uuid(),
    creator_uuid: z.uuid(),
    domain: z.string(),
    status: z.enum(["Pending", "Active", "Rejected"]),
    reason: z.string().nullable().openapi({ description: "why the remote instance rejected it" }),
    remote_topic: z.string().nullable(),
    create_datetime: z.string(),
  })
  .openapi("RemoteUnitNodeEdge");

export function toRemoteEdgeOut(e: RemoteEdge): z.infer<typeof RemoteEdgeOut> {
  return {
    uuid: e.uuid,
    output: e.remoteActor,
    input_uuid: e.inputUuid,
    creator_uuid: e.creatorUuid,
    domain: e.domain,
    status: e.status,
    reason: e.reason,
    remote_topic: e.remoteTopic,
    create_datetime: e.createdAt.toISOString(),
  };
}

export const SettingsOut = z
  .object({ enabled: z.boolean(), mode: z.enum(["Open", "AllowList"]) })
  .openapi("FederationSettings");

export const SettingsPatch = z
  .object({ enabled: z.boolean().optional(), mode: z.enum(["Open", "AllowList"]).optional() })
  .openapi("FederationSettingsPatch");

export const PeerOutSchema = z
  .object({
    domain: z.string(),
    blocked: z.boolean(),
    allowed: z.boolean(),
    last_contact_datetime: z.string().nullable(),
    followers: z.number().openapi({ description: "its follows of our outputs" }),
    following: z.number().openapi({ description: "our remote edges from its outputs" }),
    delivery_errors: z.number(),
    last_error: z.string().nullable(),
    last_error_datetime: z.string().nullable(),
  })
  .openapi("FederationPeer");

export const PeerPatch = z
  .object({ blocked: z.boolean().optional(), allowed: z.boolean().optional() })
  .openapi("FederationPeerPatch");

export const GrantOut = z
  .object({
    uuid: z.uuid(),
    node_uuid: z.uuid(),
    domain: z.string(),
    actor: z.string().nullable(),
    create_datetime: z.string(),
  })
  .openapi("FederationGrant");

export const GrantBody = z
  .object({
    node_uuid: z.uuid().openapi({ description: "a Private Output variable you own" }),
    grantee: z.string().min(1).max(500).openapi({
      description:
        "a remote instance domain, a remote unit as <unit-uuid>@<domain>, or its actor URL",
    }),
  })
  .openapi("FederationGrantCreate");

export function toGrantOut(g: GrantRow): z.infer<typeof GrantOut> {
  return {
    uuid: g.uuid,
    node_uuid: g.nodeUuid,
    domain: g.domain,
    actor: g.actor,
    create_datetime: g.createdAt.toISOString(),
  };
}
