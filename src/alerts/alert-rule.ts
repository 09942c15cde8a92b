import type { AlertCondition } from "../db/schema.ts";

// The threshold logic of one rule, without I/O: what a value does to its condition and
// whether a message may go out now. The evaluator (alert-evaluator.ts) holds the rules.

export type Limits = { min: number | null; max: number | null; hysteresis: number };

// A plain decimal number as devices publish it ("21.5", "-3", "1e3"); not "", "0x10",
// "Infinity" or "21.5 C", which Number() would half-accept.
const NUMERIC = /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/;

/** The payload as a finite number, or null when it is not one (never fires, never throws). */
export function numericValue(payload: Buffer): number | null {
  if (payload.length === 0 || payload.length > 64) return null;
  const text = payload.toString("latin1");
  if (!NUMERIC.test(text)) return null;
  const v = Number(text);
  return Number.isFinite(v) ? v : null;
}

export type Crossing = { condition: AlertCondition; limit: "min" | "max" | null };

/**
 * The condition after `value`: a normal rule fires when the value leaves [min, max]; a
 * firing rule is normal again only once the value is back inside by more than the
 * hysteresis (with none, back inside [min, max] is enough).
 */
export function nextCondition(current: AlertCondition, l: Limits, value: number): Crossing {
  if (current === "normal") {
    if (l.min !== null && value < l.min) return { condition: "firing", limit: "min" };
    if (l.max !== null && value > l.max) return { condition: "firing", limit: "max" };
    return { condition: "normal", limit: null };
  }
  const h = l.hysteresis;
  const aboveMin = l.min === null || (h === 0 ? value >= l.min : value > l.min + h);
  const belowMax = l.max === null || (h === 0 ? value <= l.max : value < l.max - h);
  if (aboveMin && belowMax) return { condition: "normal", limit: null };
  return { condition: "firing", limit: l.min !== null && value < l.min + h ? "min" : "max" };
}

/** Why limits are unusable, or null: at least one bound, min ≤ max, room for the hysteresis. */
export function limitsProblem(l: Limits): string | null {
  if (l.min === null && l.max === null) return "give min, max or both";
  if (l.min !== null && l.max !== null) {
    if (l.min > l.max) return "min must not be greater than max";
    if (l.hysteresis > 0 && 2 * l.hysteresis >= l.max - l.min) {
      return "hysteresis must be less than half of max - min (the rule could never be normal again)";
    }
  }
  return null;
}

const fmt = (v: number) => String(Number(v.toPrecision(12)));

/** The message of a condition change: names the unit, the variable, the value and the limit. */
export function conditionMessage(
  where: { unitName: string; topicName: string },
  condition: AlertCondition,
  value: number | null,
  limit: "min" | "max" | null,
  l: Limits,
): string {
  const name = `${where.unitName} / ${where.topicName}`;
  const shown = value === null ? "?" : fmt(value);
  if (condition === "firing") {
    if (limit === "min" && l.min !== null)
      return `${name}: ${shown} is below the minimum ${fmt(l.min)}`;
    if (l.max !== null) return `${name}: ${shown} is above the maximum ${fmt(l.max)}`;
    return `${name}: ${shown} is outside the limits`;
  }
  const range = `${l.min === null ? "-∞" : fmt(l.min)} … ${l.max === null ? "+∞" : fmt(l.max)}`;
  return `${name}: back to normal, ${shown} (limits ${range})`;
}
