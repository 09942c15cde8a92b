import dagre from "@dagrejs/dagre";

// Automatic placement. Each unit is laid out as one block (the unit with its
// inputs stacked on the left and its outputs on the right), repos as blocks of
// their own; dagre ranks them left to right along repo→unit and data links, so
// data flows from outputs (right of a unit) into inputs (left of the next).
// Laying out blocks instead of every variable keeps a 500-unit graph fast.

export type Block = { id: string; width: number; height: number };
export type Link = { from: string; to: string };
export type Point = { x: number; y: number };

export const VAR_W = 176;
export const VAR_H = 52;
export const VAR_GAP = 10;
export const UNIT_W = 200;
export const UNIT_H = 96;
export const SIDE_GAP = 48;
export const REPO_W = 220;
export const REPO_H = 92;

/** Size of a unit block and where its variables sit relative to the unit node's top-left. */
export function unitBlock(inputs: number, outputs: number) {
  const rows = Math.max(inputs, outputs, 1);
  const columnH = rows * VAR_H + (rows - 1) * VAR_GAP;
  const height = Math.max(UNIT_H, columnH);
  const unitTop = (height - UNIT_H) / 2;
  const columnTop = (n: number) =>
    (height - (n * VAR_H + Math.max(n - 1, 0) * VAR_GAP)) / 2 - unitTop;
  return {
    width: VAR_W + SIDE_GAP + UNIT_W + SIDE_GAP + VAR_W,
    height,
    /** Offset of the unit node inside its block. */
    unitOffset: { x: VAR_W + SIDE_GAP, y: unitTop },
    input: (i: number): Point => ({
      x: -(SIDE_GAP + VAR_W),
      y: columnTop(inputs) + i * (VAR_H + VAR_GAP),
    }),
    output: (i: number): Point => ({
      x: UNIT_W + SIDE_GAP,
      y: columnTop(outputs) + i * (VAR_H + VAR_GAP),
    }),
  };
}

/** Above this many blocks dagre takes seconds in a browser: a grid is used instead. */
export const DAGRE_MAX_BLOCKS = 150;

/**
 * Top-left corner of every block. Links to unknown blocks and self-links are
 * ignored. Small graphs are ranked by dagre; large ones get a grid (O(n)).
 */
export function layoutBlocks(blocks: Block[], links: Link[]): Map<string, Point> {
  return blocks.length > DAGRE_MAX_BLOCKS ? gridLayout(blocks, links) : dagreLayout(blocks, links);
}

/**
 * Large graphs: each root block (a repo) starts a row, and the blocks linked
 * from it (its units) follow in rows of up to eight to its right; blocks no
 * root reaches go in rows at the end.
 */
export function gridLayout(blocks: Block[], links: Link[], perRow = 8): Map<string, Point> {
  const byId = new Map(blocks.map((b) => [b.id, b]));
  const hasParent = new Set<string>();
  const children = new Map<string, string[]>();
  for (const l of links) {
    if (l.from === l.to || !byId.has(l.from) || !byId.has(l.to)) continue;
    hasParent.add(l.to);
    children.set(l.from, [...(children.get(l.from) ?? []), l.to]);
  }
  const out = new Map<string, Point>();
  const gap = 40;
  let y = 20;
  const placeRows = (ids: string[], x0: number) => {
    let x = x0;
    let rowH = 0;
    ids.forEach((id, i) => {
      const b = byId.get(id);
      if (!b || out.has(id)) return;
      if (i > 0 && i % perRow === 0) {
        y += rowH + gap;
        x = x0;
        rowH = 0;
      }
      out.set(id, { x, y });
      x += b.width + gap;
      rowH = Math.max(rowH, b.height);
    });
    y += rowH + gap * 2;
  };
  for (const b of blocks) {
    if (hasParent.has(b.id) || out.has(b.id)) continue;
    out.set(b.id, { x: 20, y });
    const kids = (children.get(b.id) ?? []).filter((id) => !out.has(id));
    if (kids.length) placeRows(kids, 20 + b.width + gap * 2);
    else y += b.height + gap * 2;
  }
  placeRows(
    blocks.filter((b) => !out.has(b.id)).map((b) => b.id),
    20,
  );
  return out;
}

function dagreLayout(blocks: Block[], links: Link[]): Map<string, Point> {
  const g = new dagre.graphlib.Graph({ multigraph: false });
  g.setGraph({ rankdir: "LR", nodesep: 36, ranksep: 110, marginx: 20, marginy: 20 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const b of blocks) g.setNode(b.id, { width: b.width, height: b.height });
  for (const l of links)
    if (l.from !== l.to && g.hasNode(l.from) && g.hasNode(l.to)) g.setEdge(l.from, l.to);
  dagre.layout(g);
  const out = new Map<string, Point>();
  for (const b of blocks) {
    const n = g.node(b.id) as { x: number; y: number } | undefined;
    if (n) out.set(b.id, { x: Math.round(n.x - b.width / 2), y: Math.round(n.y - b.height / 2) });
  }
  return out;
}
