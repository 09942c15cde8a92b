import type { UnitNodeType, Visibility } from "../db/schema.ts";
import type { SchemaTemplate } from "../repos/unit-template.ts";

// The broker's in-memory picture of who may use which topic: units (with their
// template's base topic names), variables and edges. Authorization reads only
// this, so no publish or subscribe costs a database query. acl-sync.ts keeps it
// in step with the domain events.

export type UnitEntry = {
  uuid: string;
  creatorUuid: string;
  visibility: Visibility;
  repoUuid: string;
  commit: string;
  /** null when the template of the unit's commit could not be read: no base topic is allowed then. */
  template: SchemaTemplate | null;
};

export type NodeEntry = {
  uuid: string;
  unitUuid: string;
  type: UnitNodeType;
  topicName: string;
  visibility: Visibility;
  isRewritableInput: boolean;
};

export type EdgeEntry = { uuid: string; outputUuid: string; inputUuid: string };

export type AclSnapshot = { units: UnitEntry[]; nodes: NodeEntry[]; edges: EdgeEntry[] };

export class AclIndex {
  /** Federation (set by it): may a unit subscribe to this topic of another instance's domain? */
  remoteTopicAccess: ((unitUuid: string, topic: string) => boolean) | null = null;
  readonly units = new Map<string, UnitEntry>();
  readonly nodes = new Map<string, NodeEntry>();
  readonly edges = new Map<string, EdgeEntry>();
  private readonly nodesByUnit = new Map<string, Set<string>>();
  private readonly edgesByNode = new Map<string, Set<string>>();

  replaceAll(snapshot: AclSnapshot): void {
    this.units.clear();
    this.nodes.clear();
    this.edges.clear();
    this.nodesByUnit.clear();
    this.edgesByNode.clear();
    for (const u of snapshot.units) this.units.set(u.uuid, u);
    for (const n of snapshot.nodes) this.putNode(n);
    for (const e of snapshot.edges) this.addEdge(e);
  }

  /** Replaces a unit and its whole variable set; edges of variables that are gone go too. */
  putUnit(unit: UnitEntry, nodes: NodeEntry[]): void {
    this.units.set(unit.uuid, unit);
    const keep = new Set(nodes.map((n) => n.uuid));
    const gone = [...(this.nodesByUnit.get(unit.uuid) ?? [])].filter((uuid) => !keep.has(uuid));
    this.removeNodes(gone);
    for (const n of nodes) this.putNode(n);
  }

  removeUnit(unitUuid: string): void {
    this.removeNodes([...(this.nodesByUnit.get(unitUuid) ?? [])]);
    this.nodesByUnit.delete(unitUuid);
    this.units.delete(unitUuid);
  }

  removeNodes(nodeUuids: Iterable<string>): void {
    for (const uuid of nodeUuids) {
      const node = this.nodes.get(uuid);
      for (const edgeUuid of [...(this.edgesByNode.get(uuid) ?? [])]) this.removeEdge(edgeUuid);
      this.edgesByNode.delete(uuid);
      this.nodes.delete(uuid);
      if (node) this.nodesByUnit.get(node.unitUuid)?.delete(uuid);
    }
  }

  addEdge(edge: EdgeEntry): void {
    this.edges.set(edge.uuid, edge);
    for (const end of [edge.outputUuid, edge.inputUuid]) {
      let set = this.edgesByNode.get(end);
      if (!set) {
        set = new Set();
        this.edgesByNode.set(end, set);
      }
      set.add(edge.uuid);
    }
  }

  removeEdge(edgeUuid: string): void {
    const edge = this.edges.get(edgeUuid);
    if (!edge) return;
    this.edges.delete(edgeUuid);
    this.edgesByNode.get(edge.outputUuid)?.delete(edgeUuid);
    this.edgesByNode.get(edge.inputUuid)?.delete(edgeUuid);
  }

  /** Whether an edge links output `outputUuid` into any input variable of unit `unitUuid`. */
  isLinkedInto(outputUuid: string, unitUuid: string): boolean {
    for (const edgeUuid of this.edgesByNode.get(outputUuid) ?? []) {
      const edge = this.edges.get(edgeUuid);
      if (edge?.outputUuid !== outputUuid) continue;
      if (this.nodes.get(edge.inputUuid)?.unitUuid === unitUuid) return true;
    }
    return false;
  }

  private putNode(node: NodeEntry): void {
    this.nodes.set(node.uuid, node);
    let set = this.nodesByUnit.get(node.unitUuid);
    if (!set) {
      set = new Set();
      this.nodesByUnit.set(node.unitUuid, set);
    }
    set.add(node.uuid);
  }
}
