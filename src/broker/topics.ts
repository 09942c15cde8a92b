// Physical topics of device-protocol §3, read back: which unit base topic or which
// variable a concrete topic string names. Anything else (wildcards, $SYS, other
// domains, stray levels) parses to null and is therefore denied by the rules.

export type BaseSection = "input_base_topic" | "output_base_topic";

export type ParsedTopic =
  | { kind: "base"; section: BaseSection; unitUuid: string; name: string }
  /** `D/N` (suffixed false) or `D/N/pepeunit` (suffixed true). */
  | { kind: "variable"; nodeUuid: string; suffixed: boolean };

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const UUID_LEN = 36;
const SECTIONS: BaseSection[] = ["input_base_topic", "output_base_topic"];

export function parseTopic(domain: string, topic: string): ParsedTopic | null {
  if (!topic.startsWith(`${domain}/`)) return null;
  const rest = topic.slice(domain.length + 1);
  for (const section of SECTIONS) {
    if (!rest.startsWith(`${section}/`)) continue;
    const tail = rest.slice(section.length + 1);
    const unitUuid = tail.slice(0, UUID_LEN);
    if (!UUID_RE.test(unitUuid) || tail[UUID_LEN] !== "/") return null;
    const name = tail.slice(UUID_LEN + 1);
    return name ? { kind: "base", section, unitUuid, name } : null;
  }
  const nodeUuid = rest.slice(0, UUID_LEN);
  if (!UUID_RE.test(nodeUuid)) return null;
  const suffix = rest.slice(UUID_LEN);
  if (suffix === "") return { kind: "variable", nodeUuid, suffixed: false };
  if (suffix === "/pepeunit") return { kind: "variable", nodeUuid, suffixed: true };
  return null;
}

/** A unit's base topic, `D/<section>/U/<name>` (device-protocol §3). */
export function baseTopic(domain: string, section: BaseSection, unitUuid: string, name: string) {
  return `${domain}/${section}/${unitUuid}/${name}`;
}
