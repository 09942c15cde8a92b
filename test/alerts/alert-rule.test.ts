import { describe, expect, it } from "vitest";
import {
  conditionMessage,
  limitsProblem,
  nextCondition,
  numericValue,
} from "../../src/alerts/alert-rule.ts";

// The threshold logic without a server: which payloads are numbers, how a value moves a
// rule's condition on either side of its limits, and which limits are refused.

describe("alert rule logic", () => {
  it("reads plain decimal numbers only", () => {
    for (const [text, v] of [
      ["21.5", 21.5],
      ["-3", -3],
      [" 7 ", 7],
      ["1e3", 1000],
      [".5", 0.5],
      ["+2.", 2],
    ] as const) {
      expect(numericValue(Buffer.from(text)), text).toBe(v);
    }
    for (const text of [
      "",
      " ",
      "abc",
      "NaN",
      "Infinity",
      "1e999",
      "21.5 C",
      "0x10",
      "1,5",
      "--1",
    ]) {
      expect(numericValue(Buffer.from(text)), text).toBeNull();
    }
    expect(numericValue(Buffer.from([0xff, 0xfe, 0x31]))).toBeNull();
    expect(numericValue(Buffer.alloc(100, "1"))).toBeNull();
  });

  it("fires outside [min, max] and is normal again only past the hysteresis, on both sides", () => {
    const l = { min: 10, max: 20, hysteresis: 1 };
    expect(nextCondition("normal", l, 10)).toEqual({ condition: "normal", limit: null });
    expect(nextCondition("normal", l, 20)).toEqual({ condition: "normal", limit: null });
    expect(nextCondition("normal", l, 9.9)).toEqual({ condition: "firing", limit: "min" });
    expect(nextCondition("normal", l, 20.1)).toEqual({ condition: "firing", limit: "max" });
    expect(nextCondition("firing", l, 11).condition).toBe("firing");
    expect(nextCondition("firing", l, 11.01).condition).toBe("normal");
    expect(nextCondition("firing", l, 19).condition).toBe("firing");
    expect(nextCondition("firing", l, 18.99).condition).toBe("normal");
    // Without a hysteresis, back inside the closed range is enough.
    const open = { min: null, max: 20, hysteresis: 0 };
    expect(nextCondition("firing", open, 20).condition).toBe("normal");
    expect(nextCondition("normal", open, -1e12).condition).toBe("normal");
  });

  it("refuses limits a rule could not work with", () => {
    expect(limitsProblem({ min: null, max: null, hysteresis: 0 })).toMatch(/min, max or both/);
    expect(limitsProblem({ min: 5, max: 4, hysteresis: 0 })).toMatch(/greater than max/);
    expect(limitsProblem({ min: 0, max: 10, hysteresis: 5 })).toMatch(/hysteresis/);
    expect(limitsProblem({ min: 0, max: 10, hysteresis: 4.9 })).toBeNull();
    expect(limitsProblem({ min: 3, max: 3, hysteresis: 0 })).toBeNull();
    expect(limitsProblem({ min: null, max: 3, hysteresis: 100 })).toBeNull();
  });

  it("names the unit, the variable, the value and the limit", () => {
    const where = { unitName: "tank", topicName: "level" };
    const l = { min: 0.1, max: null, hysteresis: 0 };
    expect(conditionMessage(where, "firing", -0.25, "min", l)).toBe(
      "tank / level: -0.25 is below the minimum 0.1",
    );
    expect(conditionMessage(where, "normal", 0.3, null, l)).toBe(
      "tank / level: back to normal, 0.3 (limits 0.1 … +∞)",
    );
  });
});
