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
  const columnTop = (n: number) => (height - (n * VAR_H + Math.max(n - 1, 0) * VAR_GAP)) / 2 - unitTop;
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

/** Top-left corner of every block. Links to unknown blocks and self-links are ignored. */
export function layoutBlocks(blocks: Block[], links: Link[]): Map<string, Point> {
  const g = new dagre.graphlib.Graph({ multigraph: false });
  g.setGraph({ rankdir: "LR", nodesep: 36, ranksep: 110, marginx: 20, marginy: 20 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const b of blocks) g.setNode(b.id, { width: b.width, height: b.height });
  for (const l of links) if (l.from !== l.to && g.hasNode(l.from) && g.hasNode(l.to)) g.setEdge(l.from, l.to);
  dagre.layout(g);
  const out = new Map<string, Point>();
  for (const b of blocks) {
    const n = g.node(b.id) as { x: number; y: number } | undefined;
    if (n) out.set(b.id, { x: Math.round(n.x - b.width / 2), y: Math.round(n.y - b.height / 2) });
  }
  return out;
}
