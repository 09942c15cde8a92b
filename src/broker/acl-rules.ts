import type { Principal } from "../access/principal.ts";
import { canManage, canSee } from "../access/visibility.ts";
import type { AclIndex, NodeEntry } from "./acl-index.ts";
import { parseTopic } from "./topics.ts";

// Who may subscribe or publish to a topic (device-protocol §4), decided from the
// in-memory index only. Deny by default: a topic that does not parse to a known
// base topic or variable — wildcards, $SYS, other domains — is refused to all
// but the instance's own internal client.

export type BrokerPrincipal =
  | Extract<Principal, { kind: "unit" }>
  | Extract<Principal, { kind: "user" }>
  | { kind: "internal" };

/** The variable a topic names, when the topic is that variable's exact physical topic. */
export function nodeOfTopic(index: AclIndex, domain: string, topic: string): NodeEntry | null {
  const parsed = parseTopic(domain, topic);
  if (parsed?.kind !== "variable") return null;
  const node = index.nodes.get(parsed.nodeUuid);
  // `D/N/pepeunit` only for names ending in /pepeunit, `D/N` otherwise (§3).
  if (!node || node.topicName.endsWith("/pepeunit") !== parsed.suffixed) return null;
  return node;
}

function visibleTo(
  index: AclIndex,
  p: Extract<Principal, { kind: "user" | "unit" }>,
  node: NodeEntry,
): boolean {
  const unit = index.units.get(node.unitUuid);
  if (!unit) return false;
  // Both levels, like REST: the unit's visibility is fresh even before a clamp of its variables lands.
  return (
    canSee(p, unit.visibility, unit.creatorUuid) && canSee(p, node.visibility, unit.creatorUuid)
  );
}

function isInternalTopic(topic: string): boolean {
  return topic.startsWith("$");
}

export function canSubscribe(
  index: AclIndex,
  domain: string,
  p: BrokerPrincipal,
  topic: string,
): boolean {
  if (p.kind === "internal") return !isInternalTopic(topic);
  const parsed = parseTopic(domain, topic);
  if (!parsed) {
    // A remote output's home topic (federation), only through an active remote edge.
    return p.kind === "unit" && (index.remoteTopicAccess?.(p.uuid, topic) ?? false);
  }
  if (p.kind === "unit") {
    if (parsed.kind === "base") {
      if (parsed.section !== "input_base_topic" || parsed.unitUuid !== p.uuid) return false;
      return index.units.get(p.uuid)?.template?.input_base_topic.includes(parsed.name) ?? false;
    }
    const node = nodeOfTopic(index, domain, topic);
    if (!node) return false;
    // Its own input variables, and every output linked into one of them (schema.json input_topic)
    // that it may still read: a link whose output turned Private stops here at once, before
    // the link itself is removed (src/edges/edges.recheck.ts).
    if (node.type === "Input") return node.unitUuid === p.uuid;
    return index.isLinkedInto(node.uuid, p.uuid) && visibleTo(index, p, node);
  }
  // Users (tools, the UI): variables they can see.
  const node = nodeOfTopic(index, domain, topic);
  return node !== null && visibleTo(index, p, node);
}

export function canPublish(
  index: AclIndex,
  domain: string,
  p: BrokerPrincipal,
  topic: string,
): boolean {
  if (p.kind === "internal") return !isInternalTopic(topic);
  const parsed = parseTopic(domain, topic);
  if (!parsed) return false;
  if (p.kind === "unit") {
    if (parsed.kind === "base") {
      if (parsed.section !== "output_base_topic" || parsed.unitUuid !== p.uuid) return false;
      return index.units.get(p.uuid)?.template?.output_base_topic.includes(parsed.name) ?? false;
    }
    const node = nodeOfTopic(index, domain, topic);
    return node !== null && node.type === "Output" && node.unitUuid === p.uuid;
  }
  // Users write inputs as REST edges do: creator/admin, or a visible rewritable input.
  const node = nodeOfTopic(index, domain, topic);
  if (node?.type !== "Input" || !visibleTo(index, p, node)) return false;
  const unit = index.units.get(node.unitUuid);
  return unit !== undefined && (canManage(p, unit.creatorUuid) || node.isRewritableInput);
}
