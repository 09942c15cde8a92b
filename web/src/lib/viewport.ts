import { getViewportForBounds, type Rect, type useSvelteFlow, type Viewport } from "@xyflow/svelte";
import type { FlowNode } from "./graph.svelte.ts";

// Moving the graph's view without losing the person: selecting something
// keeps the zoom and pans only when the thing is hidden (off screen, under the
// minimap, the controls or the open pop-up); fitting never zooms out below a
// scale where names can still be read.

/** Phones get a higher floor: a 390 px screen fitting a wide graph shows specks. */
export function readableMinZoom(width = innerWidth): number {
  return width < 600 ? 0.45 : 0.05;
}

export type Box = { left: number; top: number; right: number; bottom: number };

/** The canvas area (screen coordinates) a node may occupy without being covered. */
export function clearArea(canvas: Element): { area: Box; covers: Box[] } {
  const c = canvas.getBoundingClientRect();
  const area = { left: c.left, top: c.top, right: c.right, bottom: c.bottom };
  const panel = document.querySelector(".panel[role=dialog]")?.getBoundingClientRect();
  // A side pop-up narrows the clear area; a full-screen one (phone) covers everything anyway.
  if (panel && panel.left > c.left + c.width / 3) area.right = Math.min(area.right, panel.left - 8);
  const covers = [".svelte-flow__minimap", ".svelte-flow__controls"].flatMap((sel) => {
    const r = canvas.querySelector(sel)?.getBoundingClientRect();
    return r && r.width > 0 ? [{ left: r.left, top: r.top, right: r.right, bottom: r.bottom }] : [];
  });
  return { area, covers };
}

const overlaps = (a: Box, b: Box) =>
  a.left < b.right && a.right > b.left && a.top < b.bottom && a.bottom > b.top;

/**
 * The viewport that shows `rect` (flow coordinates) uncovered, at the same zoom:
 * null when it already is; else it is centred in the clear area.
 */
export function revealViewport(
  vp: Viewport,
  rect: Rect,
  canvas: Element,
): { x: number; y: number; zoom: number } | null {
  const c = canvas.getBoundingClientRect();
  const { area, covers } = clearArea(canvas);
  const left = c.left + vp.x + rect.x * vp.zoom;
  const top = c.top + vp.y + rect.y * vp.zoom;
  const box = {
    left,
    top,
    right: left + rect.width * vp.zoom,
    bottom: top + rect.height * vp.zoom,
  };
  const inside =
    box.left >= area.left &&
    box.top >= area.top &&
    box.right <= area.right &&
    box.bottom <= area.bottom;
  if (inside && !covers.some((r) => overlaps(r, box))) return null;
  const dx = (area.left + area.right) / 2 - (box.left + box.right) / 2;
  const dy = (area.top + area.bottom) / 2 - (box.top + box.bottom) / 2;
  return { x: vp.x + dx, y: vp.y + dy, zoom: vp.zoom };
}

/**
 * Fits `bounds` into a w×h canvas, but never below the readable zoom: then
 * the top-left region of the graph is shown at that zoom (pan for the rest).
 */
export function readableFit(bounds: Rect, w: number, h: number, maxZoom: number): Viewport {
  const min = readableMinZoom(w);
  const fit = getViewportForBounds(bounds, w, h, 0.01, maxZoom, 0.15);
  if (fit.zoom >= min) return fit;
  const pad = 16;
  return { x: -bounds.x * min + pad, y: -bounds.y * min + pad, zoom: min };
}

type Flow = ReturnType<typeof useSvelteFlow<FlowNode>>;

/** "Zoom to fit" for every visible node, within the readable zoom floor. */
export function fitReadable(flow: Flow, duration = 0, maxZoom = 1.1): void {
  const canvas = document.querySelector('[data-testid="graph-canvas"]');
  if (!canvas) return;
  const nodes = flow.getNodes().filter((n) => !n.hidden);
  if (!nodes.length) return;
  const bounds = flow.getNodesBounds(nodes);
  const vp = readableFit(bounds, canvas.clientWidth, canvas.clientHeight, maxZoom);
  flow.setViewport(vp, { duration });
}
