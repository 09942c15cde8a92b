import type { UnitNodeType } from "../db/schema.ts";
import { SCHEMA_SECTIONS, type SchemaTemplate } from "../repos/unit-template.ts";

// The unit's schema.json (device-protocol §3): every template name mapped to the
// physical MQTT topics the device subscribes or publishes to.

export type UnitSchema = Record<string, Record<string, string[]>>;

export type SchemaNode = { uuid: string; type: UnitNodeType; topicName: string };
/** An edge into one of the unit's inputs, with the output's topic name (for the suffix). */
export type SchemaEdge = {
  inputUuid: string;
  outputUuid: string;
  outputTopicName: string;
  /**
   * Federation: a remote output keeps its home topic `REMOTE_D/N[/pepeunit]` (§3),
   * given here whole; outputUuid/outputTopicName are then unused.
   */
  remoteTopic?: string;
};

/** `D/N/pepeunit` when the name ends in `/pepeunit`, else `D/N`. */
export function variableTopic(domain: string, nodeUuid: string, topicName: string): string {
  return topicName.endsWith("/pepeunit")
    ? `${domain}/${nodeUuid}/pepeunit`
    : `${domain}/${nodeUuid}`;
}

/**
 * Builds schema.json in the template's section and name order. `edges` must already be
 * in creation order: an input lists its own topic first, then one topic per linked output.
 */
export function buildUnitSchema(
  domain: string,
  unitUuid: string,
  template: SchemaTemplate,
  nodes: SchemaNode[],
  edges: SchemaEdge[],
): UnitSchema {
  const nodeOf = (type: UnitNodeType, name: string) =>
    nodes.find((n) => n.type === type && n.topicName === name);
  const schema: UnitSchema = {};
  for (const section of SCHEMA_SECTIONS) {
    const out: Record<string, string[]> = {};
    for (const name of template[section]) {
      if (section === "input_base_topic" || section === "output_base_topic") {
        out[name] = [`${domain}/${section}/${unitUuid}/${name}`];
        continue;
      }
      const node = nodeOf(section === "input_topic" ? "Input" : "Output", name);
      // Variables are re-synced with every version change, so a missing node only
      // happens mid-change; the device then simply gets no topic for that name.
      if (!node) continue;
      const topics = [variableTopic(domain, node.uuid, name)];
      if (section === "input_topic") {
        for (const e of edges) {
          if (e.inputUuid === node.uuid) {
            topics.push(e.remoteTopic ?? variableTopic(domain, e.outputUuid, e.outputTopicName));
          }
        }
      }
      out[name] = topics;
    }
    schema[section] = out;
  }
  return schema;
}
