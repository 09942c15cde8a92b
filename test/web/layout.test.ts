import { describe, expect, it } from "vitest";
import {
  layoutBlocks,
  SIDE_GAP,
  UNIT_W,
  unitBlock,
  VAR_H,
  VAR_W,
} from "../../web/src/lib/layout.ts";
import { layoutKey, loadPositions, savePositions } from "../../web/src/lib/layout-memory.ts";

// Automatic placement and the remembered layout.

describe("layout", () => {
  it("puts inputs left and outputs right of their unit, stacked without overlap", () => {
    const b = unitBlock(3, 1);
    const inputs = [0, 1, 2].map((i) => b.input(i));
    for (const p of inputs) expect(p.x + VAR_W).toBeLessThanOrEqual(-SIDE_GAP + 0.01);
    expect(b.output(0).x).toBeGreaterThanOrEqual(UNIT_W);
    for (let i = 1; i < inputs.length; i++)
      expect((inputs[i]?.y ?? 0) - (inputs[i - 1]?.y ?? 0)).toBeGreaterThanOrEqual(VAR_H);
    expect(b.width).toBe(VAR_W * 2 + UNIT_W + SIDE_GAP * 2);
  });

  it("ranks repo → unit → fed unit from left to right, blocks apart", () => {
    const blocks = [
      { id: "repo", width: 220, height: 92 },
      { id: "a", width: 600, height: 120 },
      { id: "b", width: 600, height: 120 },
    ];
    const pos = layoutBlocks(blocks, [
      { from: "repo", to: "a" },
      { from: "repo", to: "b" },
      { from: "a", to: "b" },
      { from: "a", to: "ghost" },
    ]);
    const repo = pos.get("repo");
    const a = pos.get("a");
    const b = pos.get("b");
    expect(repo && a && b).toBeTruthy();
    expect((repo?.x ?? 0) + 220).toBeLessThanOrEqual(a?.x ?? 0);
    expect((a?.x ?? 0) + 600).toBeLessThanOrEqual(b?.x ?? 0);
  });

  it("lays out 500 blocks", () => {
    const blocks = Array.from({ length: 500 }, (_, i) => ({
      id: `u${i}`,
      width: 600,
      height: 120,
    }));
    const links = blocks.slice(1).map((b, i) => ({ from: `u${i % 50}`, to: b.id }));
    expect(layoutBlocks(blocks, links).size).toBe(500);
  });

  it("remembers positions per user and survives garbage", () => {
    const store = new Map<string, string>();
    const storage = {
      getItem: (k: string) => store.get(k) ?? null,
      setItem: (k: string, v: string) => void store.set(k, v),
    };
    savePositions(storage, layoutKey("u1"), { n1: { x: 1, y: 2 } });
    expect(loadPositions(storage, layoutKey("u1"))).toEqual({ n1: { x: 1, y: 2 } });
    expect(loadPositions(storage, layoutKey("u2"))).toEqual({});
    expect(layoutKey(null)).toBe("pepeunit.layout.v1.anonymous");
    store.set(layoutKey("u3"), "{not json");
    expect(loadPositions(storage, layoutKey("u3"))).toEqual({});
    store.set(
      layoutKey("u4"),
      JSON.stringify({ ok: { x: 3, y: 4 }, bad: { x: "a" }, worse: null }),
    );
    expect(loadPositions(storage, layoutKey("u4"))).toEqual({ ok: { x: 3, y: 4 } });
  });
});
