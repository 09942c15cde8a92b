import { type Edge, type NodeHandle, Position } from "@xyflow/svelte";
import type { InputFlowNode } from "../components/nodes/InputNode.svelte";
import type { OutputFlowNode } from "../components/nodes/OutputNode.svelte";
import type { RepoFlowNode } from "../components/nodes/RepoNode.svelte";
import type { UnitFlowNode } from "../components/nodes/UnitNode.svelte";
import {
  api,
  fetchAll,
  type Repo,
  type Unit,
  type UnitNodeEdge,
  unwrap,
  type VisibleLink,
} from "./api.ts";
import { ApiError } from "./api-errors.ts";
import {
  type Block,
  layoutBlocks,
  type Point,
  REPO_H,
  REPO_W,
  UNIT_H,
  UNIT_W,
  unitBlock,
  VAR_H,
  VAR_W,
} from "./layout.ts";
import { layoutKey, loadPositions, type Positions, savePositions } from "./layout-memory.ts";
import { live } from "./live.svelte.ts";
import { mayRemoveLink } from "./permissions.ts";
import { session } from "./session.svelte.ts";

// The graph: API data (repos, units with their variables, edges) kept as raw
// arrays that are replaced, never mutated, and turned into Svelte Flow nodes
// and edges. Positions come from the remembered layout, else from dagre.

export type FlowNode = RepoFlowNode | UnitFlowNode | InputFlowNode | OutputFlowNode;
export type NodeKind = FlowNode["type"];
export type Filters = {
  search: string;
  mine: boolean;
  visibility: Record<"Public" | "Internal" | "Private", boolean>;
  types: Record<NodeKind, boolean>;
};

export function defaultFilters(): Filters {
  return {
    search: "",
    mine: false,
    visibility: { Public: true, Internal: true, Private: true },
    types: { repo: true, unit: true, input: true, output: true },
  };
}

/** A large graph: render only what is in view, and do not start zoomed out to fit it all. */
export const LARGE_GRAPH = 400;

export type Rect = { x: number; y: number; w: number; h: number };

export class GraphStore {
  repos = $state.raw<Repo[]>([]);
  units = $state.raw<Unit[]>([]);
  links = $state.raw<VisibleLink[]>([]);
  /** Links out of the viewer's own outputs into inputs it may not see: listed on the output, never drawn. */
  hiddenLinks = $state.raw<UnitNodeEdge[]>([]);
  nodes = $state.raw<FlowNode[]>([]);
  edges = $state.raw<Edge[]>([]);
  filters = $state<Filters>(defaultFilters());
  loading = $state(false);
  loaded = $state(false);
  error = $state<string | null>(null);
  /** Input uuid → a refusal to show on that node. */
  nodeErrors = $state.raw<Record<string, string>>({});
  /** Bumped after every load so views can re-focus. */
  generation = $state(0);
  /**
   * Large graphs only: the part of the flow in view (plus a margin). Svelte
   * Flow renders both ends of every edge it draws, so edges with neither end
   * in view are hidden, or a repo's 50 unit edges would render all 50 units.
   */
  cull: Rect | null = null;
  /** Where a large graph opens: its top-left corner at a readable zoom. */
  initialView = $state.raw<{ x: number; y: number; zoom: number } | null>(null);
  #positions: Positions = {};
  #allEdges: Edge[] = [];
  #key = layoutKey(null);
  /** Inside batch(): rebuild once at its end. */
  #batching = 0;
  #dirty = false;
  #loaded: Array<() => void> = [];

  matchCount = $derived(this.nodes.filter((n) => !n.hidden).length);

  /**
   * Fetches everything the caller may see. `sessionReady` lets the first load
   * run in parallel with checking the stored token (the layout key needs the user).
   */
  async load(
    sessionReady: Promise<void> = Promise.resolve(),
    opts: { quiet?: boolean } = {},
  ): Promise<void> {
    this.loading = true;
    if (!opts.quiet) this.error = null;
    try {
      const [repos, units, links] = await Promise.all([
        fetchAll(async (limit, offset) => {
          const r = await unwrap(api.GET("/repos", { params: { query: { limit, offset } } }));
          return { count: r.count, items: r.repos };
        }),
        fetchAll(async (limit, offset) => {
          const r = await unwrap(api.GET("/units", { params: { query: { limit, offset } } }));
          return { count: r.count, items: r.units };
        }),
        fetchAll(async (limit, offset) => {
          const r = await unwrap(
            api.GET("/unit_node_edges", { params: { query: { limit, offset } } }),
          );
          return { count: r.count, items: r.unit_node_edges };
        }),
      ]);
      // The layout is per user: wait until the stored token has been checked.
      await sessionReady;
      this.#key = layoutKey(session.user?.uuid ?? null);
      this.#positions = loadPositions(localStorage, this.#key);
      this.repos = repos;
      this.units = units;
      this.links = links.filter((l): l is VisibleLink => l.input_uuid !== null);
      this.hiddenLinks = links.filter((l) => l.input_uuid === null);
      this.rebuild(true);
      // A quiet re-read (the live channel reconnected) keeps the view where it is.
      if (!opts.quiet || !this.loaded) this.generation++;
      this.loaded = true;
    } catch (err) {
      await sessionReady;
      // A stored token that turned out expired: the session is anonymous now, load again.
      if (err instanceof ApiError && err.status === 401 && !session.token) return this.load();
      if (!opts.quiet) this.error = err instanceof Error ? err.message : String(err);
    } finally {
      this.loading = false;
      for (const f of this.#loaded.splice(0)) f();
    }
  }

  /** Runs `f` now, or after the load in flight (live changes wait for the graph they patch). */
  whenLoaded(f: () => void): void {
    if (this.loading) this.#loaded.push(f);
    else f();
  }

  /** Several changes, one rebuild. */
  batch(f: () => void): void {
    this.#batching++;
    try {
      f();
    } finally {
      this.#batching--;
      if (this.#batching === 0 && this.#dirty) this.rebuild();
    }
  }

  /** New field values of a unit the graph shows (online, last seen, update status); false if unknown. */
  patchUnit(uuid: string, patch: Partial<Unit>): boolean {
    const i = this.units.findIndex((u) => u.uuid === uuid);
    const unit = this.units[i];
    if (!unit) return false;
    this.units = this.units.with(i, { ...unit, ...patch });
    this.rebuild();
    return true;
  }

  /**
   * What the live subscription follows: every variable's own topic, and for an
   * input also the topics of the outputs linked into it (what its device receives).
   */
  topics(): Array<{ uuid: string; topic: string }> {
    const own = this.units.flatMap((u) =>
      u.unit_nodes.map((n) => ({ uuid: n.uuid, topic: n.topic })),
    );
    const topicOf = new Map(own.map((t) => [t.uuid, t.topic]));
    const linked = this.links.flatMap((l) => {
      const topic = topicOf.get(l.output_uuid);
      return topic ? [{ uuid: l.input_uuid, topic }] : [];
    });
    return [...own, ...linked];
  }

  unit(uuid: string): Unit | undefined {
    return this.units.find((u) => u.uuid === uuid);
  }
  repo(uuid: string): Repo | undefined {
    return this.repos.find((r) => r.uuid === uuid);
  }
  variable(uuid: string) {
    for (const u of this.units) {
      const n = u.unit_nodes.find((v) => v.uuid === uuid);
      if (n) return { variable: n, unit: u };
    }
    return undefined;
  }
  /** What a search finds first: a unit or variable before a repository. */
  firstMatch(): FlowNode | undefined {
    return (
      this.nodes.find((n) => !n.hidden && n.type !== "repo") ?? this.nodes.find((n) => !n.hidden)
    );
  }
  link(uuid: string): VisibleLink | undefined {
    return this.links.find((l) => l.uuid === uuid);
  }

  upsertRepo(repo: Repo, at?: Point): void {
    const exists = this.repos.some((r) => r.uuid === repo.uuid);
    this.repos = exists
      ? this.repos.map((r) => (r.uuid === repo.uuid ? repo : r))
      : [...this.repos, repo];
    if (!exists)
      this.#place(repo.uuid, at ?? this.#freeSpot({ x: 0, y: -REPO_H - 120 }, REPO_W, REPO_H));
    this.rebuild();
  }

  removeRepo(uuid: string): void {
    this.repos = this.repos.filter((r) => r.uuid !== uuid);
    this.rebuild();
  }

  upsertUnit(unit: Unit, at?: Point | null): void {
    const exists = this.units.some((u) => u.uuid === unit.uuid);
    this.units = exists
      ? this.units.map((u) => (u.uuid === unit.uuid ? unit : u))
      : [...this.units, unit];
    if (!exists) {
      const inputs = unit.unit_nodes.filter((n) => n.type === "Input").length;
      const outputs = unit.unit_nodes.length - inputs;
      const block = unitBlock(inputs, outputs);
      if (at) {
        // Dropped by the person (Shift-drag): centred on the drop point, even over
        // another block, rather than moved to a free spot out of sight.
        this.#place(unit.uuid, { x: at.x - UNIT_W / 2, y: at.y - UNIT_H / 2 });
      } else {
        const repoPos = this.#positions[unit.repo_uuid] ?? { x: 0, y: 0 };
        const wanted = { x: repoPos.x, y: repoPos.y + REPO_H + 120 };
        const spot = this.#freeSpot(
          { x: wanted.x - block.unitOffset.x, y: wanted.y - block.unitOffset.y },
          block.width,
          block.height,
        );
        this.#place(unit.uuid, { x: spot.x + block.unitOffset.x, y: spot.y + block.unitOffset.y });
      }
    }
    live.seed(unit.unit_nodes);
    this.rebuild();
  }

  removeUnit(uuid: string): void {
    const unit = this.unit(uuid);
    const vars = new Set(unit?.unit_nodes.map((n) => n.uuid) ?? []);
    this.units = this.units.filter((u) => u.uuid !== uuid);
    this.links = this.links.filter((l) => !vars.has(l.input_uuid) && !vars.has(l.output_uuid));
    this.hiddenLinks = this.hiddenLinks.filter((l) => !vars.has(l.output_uuid));
    this.rebuild();
  }

  addLink(link: UnitNodeEdge | object): void {
    // A link to a remote instance's output (federation) has no local output node: reload.
    if (!("output_uuid" in link)) {
      void this.load();
      return;
    }
    const edge = link as UnitNodeEdge;
    if (edge.input_uuid === null) {
      // Out of the viewer's output into an input it may not see: listed, never drawn.
      if (!this.hiddenLinks.some((l) => l.uuid === edge.uuid))
        this.hiddenLinks = [...this.hiddenLinks, edge];
    } else if (!this.links.some((l) => l.uuid === edge.uuid)) {
      // A link just drawn (or announced live) joins two variables the viewer sees.
      this.links = [...this.links, edge as VisibleLink];
    }
    this.rebuild();
  }

  removeLinks(uuids: string[]): void {
    const gone = new Set(uuids);
    this.links = this.links.filter((l) => !gone.has(l.uuid));
    this.hiddenLinks = this.hiddenLinks.filter((l) => !gone.has(l.uuid));
    this.rebuild();
  }

  /** Show a refusal on an input node for a while (errors explained in place). */
  flagInput(uuid: string, message: string | null): void {
    const next = { ...this.nodeErrors };
    if (message) next[uuid] = message;
    else delete next[uuid];
    this.nodeErrors = next;
    this.rebuild();
    if (message)
      setTimeout(() => this.nodeErrors[uuid] === message && this.flagInput(uuid, null), 10_000);
  }

  /** Remember where nodes are now (after a drag). */
  rememberPositions(): void {
    for (const n of this.nodes) this.#positions[n.id] = { x: n.position.x, y: n.position.y };
    savePositions(localStorage, this.#key, this.#positions);
  }

  /** Forget the remembered layout and place everything automatically again. */
  resetLayout(): void {
    this.#positions = {};
    savePositions(localStorage, this.#key, {});
    this.rebuild(true);
    this.generation++;
  }

  applyFilters(): void {
    const visible = this.#visibleIds();
    this.nodes = this.nodes.map((n) =>
      n.hidden === !visible.has(n.id) ? n : { ...n, hidden: !visible.has(n.id) },
    );
    this.#showEdges(visible);
  }

  /**
   * Edges are left out (not just hidden) when filtered: Svelte Flow renders
   * both ends of every edge in its list, hidden or not.
   */
  #showEdges(visible: Set<string>): void {
    const shown = this.#edgeFilter(visible);
    const selected = new Set(this.edges.filter((e) => e.selected).map((e) => e.id));
    this.edges = this.#allEdges
      .filter(shown)
      .map((e) => (selected.has(e.id) ? { ...e, selected: true } : e));
  }

  /** Large graphs: keep only edges with an end inside `rect` (flow coordinates). */
  cullTo(rect: Rect | null): void {
    this.cull = rect;
    if (this.nodes.length > LARGE_GRAPH) this.applyFilters();
  }

  #edgeFilter(visible: Set<string>): (e: Edge) => boolean {
    const rect = this.nodes.length > LARGE_GRAPH ? this.cull : null;
    if (!rect) return (e) => visible.has(e.source) && visible.has(e.target);
    const abs = new Map<string, Point>();
    for (const n of this.nodes) {
      const parent = n.parentId ? this.#positions[n.parentId] : undefined;
      abs.set(n.id, { x: n.position.x + (parent?.x ?? 0), y: n.position.y + (parent?.y ?? 0) });
    }
    const inside = (id: string) => {
      const p = abs.get(id);
      return (
        !!p &&
        p.x > rect.x - 250 &&
        p.x < rect.x + rect.w &&
        p.y > rect.y - 150 &&
        p.y < rect.y + rect.h
      );
    };
    // A repo has many units: its edges show only for the units in view.
    return (e) =>
      visible.has(e.source) &&
      visible.has(e.target) &&
      (inside(e.target) || (e.targetHandle !== "repo" && inside(e.source)));
  }

  /** Rebuild nodes and edges from the API data; `relayout` places unplaced nodes with dagre. */
  rebuild(relayout = false): void {
    if (this.#batching > 0 && !relayout) {
      this.#dirty = true;
      return;
    }
    this.#dirty = false;
    if (relayout) this.#autoLayout();
    const canEdit = session.user !== null;
    const repoNames = new Map(this.repos.map((r) => [r.uuid, r.name]));
    const selected = new Set(this.nodes.filter((n) => n.selected).map((n) => n.id));
    // Known sizes up front: fitView and viewport culling work before (or without)
    // a node being rendered; rendered nodes keep what the DOM measured.
    const measured = new Map(this.nodes.map((n) => [n.id, n.measured]));
    const size = (id: string, width: number, height: number) =>
      measured.get(id) ?? { width, height };
    // Svelte Flow renders every node once to measure its handles. For a large
    // graph their places are given instead, so only the nodes in view render.
    const large =
      this.repos.length + this.units.reduce((n, u) => n + 1 + u.unit_nodes.length, 0) > LARGE_GRAPH;
    const handle = (
      id: string,
      type: "source" | "target",
      position: Position,
      x: number,
      y: number,
    ): NodeHandle[] | undefined =>
      large ? [{ id, type, position, x: x - 5.5, y: y - 5.5, width: 11, height: 11 }] : undefined;
    const nodes: FlowNode[] = [];
    const edges: Edge[] = [];
    for (const repo of this.repos) {
      nodes.push({
        id: repo.uuid,
        type: "repo",
        position: this.#positions[repo.uuid] ?? { x: 0, y: 0 },
        data: { repo, canAddUnit: canEdit && repo.default_branch !== null },
        deletable: false,
        selected: selected.has(repo.uuid),
        measured: size(repo.uuid, REPO_W, REPO_H),
        handles: handle("units", "source", Position.Right, REPO_W, REPO_H / 2),
      });
    }
    for (const unit of this.units) {
      const inputs = unit.unit_nodes.filter((n) => n.type === "Input");
      const outputs = unit.unit_nodes.filter((n) => n.type === "Output");
      const block = unitBlock(inputs.length, outputs.length);
      nodes.push({
        id: unit.uuid,
        type: "unit",
        position: this.#positions[unit.uuid] ?? { x: 0, y: 0 },
        data: { unit, repoName: repoNames.get(unit.repo_uuid) ?? "" },
        deletable: false,
        selected: selected.has(unit.uuid),
        measured: size(unit.uuid, UNIT_W, UNIT_H),
        handles: handle("repo", "target", Position.Top, UNIT_W / 2, 0),
      });
      inputs.forEach((variable, i) => {
        nodes.push({
          id: variable.uuid,
          type: "input",
          parentId: unit.uuid,
          position: this.#positions[variable.uuid] ?? block.input(i),
          data: {
            variable,
            unitName: unit.name,
            // Always droppable for a signed-in user: a refusal (not rewritable, no access)
            // comes back from the server and is explained on the node itself.
            connectable: canEdit,
            error: this.nodeErrors[variable.uuid] ?? null,
          },
          deletable: false,
          selected: selected.has(variable.uuid),
          measured: size(variable.uuid, VAR_W, VAR_H),
          handles: handle("in", "target", Position.Left, 0, VAR_H / 2),
        });
      });
      outputs.forEach((variable, i) => {
        nodes.push({
          id: variable.uuid,
          type: "output",
          parentId: unit.uuid,
          position: this.#positions[variable.uuid] ?? block.output(i),
          data: { variable, unitName: unit.name, connectable: canEdit },
          deletable: false,
          selected: selected.has(variable.uuid),
          measured: size(variable.uuid, VAR_W, VAR_H),
          handles: handle("out", "source", Position.Right, VAR_W, VAR_H / 2),
        });
      });
      if (repoNames.has(unit.repo_uuid)) {
        edges.push({
          id: `repo-${unit.uuid}`,
          source: unit.repo_uuid,
          sourceHandle: "units",
          target: unit.uuid,
          targetHandle: "repo",
          type: "smoothstep",
          class: "repo-edge",
          selectable: false,
          deletable: false,
          focusable: false,
        });
      }
    }
    const visible = this.#visibleIds();
    for (const n of nodes) n.hidden = !visible.has(n.id);
    const known = new Set(nodes.map((n) => n.id));
    const unitOf = new Map(
      this.units.flatMap((u) => u.unit_nodes.map((v) => [v.uuid, u] as const)),
    );
    for (const link of this.links) {
      if (!known.has(link.output_uuid) || !known.has(link.input_uuid)) continue;
      edges.push({
        id: link.uuid,
        source: link.output_uuid,
        sourceHandle: "out",
        target: link.input_uuid,
        targetHandle: "in",
        class: "data-edge",
        deletable: mayRemoveLink(session.user, link, (v) => unitOf.get(v)?.creator_uuid),
        ariaLabel: "data link",
      });
    }
    this.nodes = nodes;
    if (relayout) this.#initialView();
    this.#allEdges = edges;
    this.#showEdges(visible);
  }

  #visibleIds(): Set<string> {
    const f = this.filters;
    const q = f.search.trim().toLowerCase();
    const me = session.user?.uuid;
    const out = new Set<string>();
    const hit = (...texts: string[]) => q === "" || texts.some((t) => t.toLowerCase().includes(q));
    const passes = (type: NodeKind, visibility: keyof Filters["visibility"], creator: string) =>
      f.types[type] && f.visibility[visibility] && (!f.mine || creator === me);
    for (const r of this.repos) {
      if (passes("repo", r.visibility, r.creator_uuid) && hit(r.name, r.url, r.uuid))
        out.add(r.uuid);
    }
    for (const u of this.units) {
      const unitHit = hit(u.name, u.uuid);
      let childHit = false;
      for (const v of u.unit_nodes) {
        const type = v.type === "Input" ? "input" : "output";
        if (!passes(type, v.visibility, u.creator_uuid)) continue;
        if (unitHit || hit(v.topic_name, v.uuid)) {
          out.add(v.uuid);
          childHit = true;
        }
      }
      if (passes("unit", u.visibility, u.creator_uuid) && (unitHit || childHit)) out.add(u.uuid);
    }
    return out;
  }

  #place(id: string, p: Point): void {
    this.#positions[id] = p;
    savePositions(localStorage, this.#key, this.#positions);
  }

  /** Top-left of a w×h rectangle near `p` that overlaps no repo or unit block. */
  #freeSpot(p: Point, w: number, h: number): Point {
    const rects = this.#occupied();
    const free = (x: number, y: number) =>
      rects.every(
        (r) => x + w + 24 <= r.x || x >= r.x + r.w + 24 || y + h + 24 <= r.y || y >= r.y + r.h + 24,
      );
    for (let k = 0; k < 400; k++) {
      const x = p.x + (k % 20) * (w + 48);
      const y = p.y + Math.floor(k / 20) * (h + 48);
      if (free(x, y)) return { x, y };
    }
    return p;
  }

  #occupied(): Rect[] {
    const rects: Rect[] = [];
    for (const r of this.repos) {
      const p = this.#positions[r.uuid];
      if (p) rects.push({ x: p.x, y: p.y, w: REPO_W, h: REPO_H });
    }
    for (const u of this.units) {
      const p = this.#positions[u.uuid];
      if (!p) continue;
      const inputs = u.unit_nodes.filter((n) => n.type === "Input").length;
      const b = unitBlock(inputs, u.unit_nodes.length - inputs);
      rects.push({ x: p.x - b.unitOffset.x, y: p.y - b.unitOffset.y, w: b.width, h: b.height });
    }
    return rects;
  }

  /** A large graph opens at its top-left corner; only that part is rendered at first. */
  #initialView(): void {
    if (this.nodes.length <= LARGE_GRAPH) {
      this.initialView = null;
      return;
    }
    const tops = this.nodes.filter((n) => !n.parentId);
    const minX = Math.min(...tops.map((n) => n.position.x));
    const minY = Math.min(...tops.map((n) => n.position.y));
    const zoom = 0.8;
    const view = { x: -minX * zoom + 260, y: -minY * zoom + 40, zoom };
    this.initialView = view;
    const w = typeof innerWidth === "number" ? innerWidth : 1600;
    const h = typeof innerHeight === "number" ? innerHeight : 1000;
    this.cull = { x: -view.x / zoom, y: -view.y / zoom, w: w / zoom, h: h / zoom };
  }

  /** dagre places every repo and unit block that has no remembered position. */
  #autoLayout(): void {
    const unplaced = [...this.repos.map((r) => r.uuid), ...this.units.map((u) => u.uuid)].filter(
      (id) => !this.#positions[id],
    );
    if (unplaced.length === 0) return;
    const blocks: Block[] = this.repos.map((r) => ({ id: r.uuid, width: REPO_W, height: REPO_H }));
    const offsets = new Map<string, Point>();
    for (const u of this.units) {
      const inputs = u.unit_nodes.filter((n) => n.type === "Input").length;
      const b = unitBlock(inputs, u.unit_nodes.length - inputs);
      blocks.push({ id: u.uuid, width: b.width, height: b.height });
      offsets.set(u.uuid, b.unitOffset);
    }
    const unitOf = new Map<string, string>();
    for (const u of this.units) for (const n of u.unit_nodes) unitOf.set(n.uuid, u.uuid);
    const links = [
      ...this.units.map((u) => ({ from: u.repo_uuid, to: u.uuid })),
      ...this.links.map((l) => ({
        from: unitOf.get(l.output_uuid) ?? "",
        to: unitOf.get(l.input_uuid) ?? "",
      })),
    ];
    const placed = layoutBlocks(blocks, links);
    // Keep what the person placed; shift the automatic layout below it.
    const rememberedBottom = Math.max(-Infinity, ...this.#occupied().map((r) => r.y + r.h));
    const dy = Number.isFinite(rememberedBottom) ? rememberedBottom + 120 : 0;
    for (const id of unplaced) {
      const p = placed.get(id);
      if (!p) continue;
      const off = offsets.get(id) ?? { x: 0, y: 0 };
      this.#positions[id] = { x: p.x + off.x, y: p.y + off.y + dy };
    }
  }
}

export const graph = new GraphStore();
