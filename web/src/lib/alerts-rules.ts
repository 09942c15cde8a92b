import type { components } from "./api-types.ts";

// The alert-rule form of the variable pop-up, without runes (testable in Node): text
// fields ↔ the API's body, a rule in one line, and where a refusal's detail belongs.

export type AlertRule = components["schemas"]["AlertRule"];
export type RuleField = "min" | "max" | "hysteresis" | "min_interval_s";
export type RuleForm = Record<RuleField, string>;
export type RuleBody = {
  min: number | null;
  max: number | null;
  hysteresis: number;
  min_interval_s: number;
};

export const RULE_FIELDS: readonly RuleField[] = ["min", "max", "hysteresis", "min_interval_s"];

/** A new rule's form: the API's defaults (no hysteresis, one message a minute at most). */
export function emptyRuleForm(): RuleForm {
  return { min: "", max: "", hysteresis: "0", min_interval_s: "60" };
}

export function ruleFormOf(rule: AlertRule): RuleForm {
  return {
    min: rule.min === null ? "" : String(rule.min),
    max: rule.max === null ? "" : String(rule.max),
    hysteresis: String(rule.hysteresis),
    min_interval_s: String(rule.min_interval_s),
  };
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function parse(text: string): number | null | undefined {
  const t = text.trim().replace(",", ".");
  if (t === "") return null;
  return NUMBER.test(t) ? Number(t) : undefined;
}

/**
 * The body of a create or an edit, or the fields that are not numbers. Only the form of
 * the numbers is checked here: the limits themselves (min ≤ max, room for the
 * hysteresis) are the server's to judge, and its detail is shown at the field.
 */
export function ruleBody(
  form: RuleForm,
): { body: RuleBody } | { errors: Partial<Record<RuleField, string>> } {
  const errors: Partial<Record<RuleField, string>> = {};
  const min = parse(form.min);
  const max = parse(form.max);
  const hysteresis = parse(form.hysteresis);
  const interval = parse(form.min_interval_s);
  if (min === undefined) errors.min = "A number, or empty for no lower limit.";
  if (max === undefined) errors.max = "A number, or empty for no upper limit.";
  if (hysteresis === undefined) errors.hysteresis = "A number (0 for none).";
  if (interval === undefined || (interval !== null && !Number.isInteger(interval)))
    errors.min_interval_s = "Whole seconds.";
  if (Object.keys(errors).length) return { errors };
  return {
    body: {
      min: min ?? null,
      max: max ?? null,
      hysteresis: hysteresis ?? 0,
      min_interval_s: interval ?? 60,
    },
  };
}

/**
 * The field a refusal's sentence is about (the server's limit checks name it first:
 * "hysteresis must …", "min must not …", "give min, max or both"), else null.
 */
export function fieldOfProblem(detail: string): RuleField | null {
  const first = /^\s*(?:give\s+)?(min_interval_s|hysteresis|min|max)\b/i.exec(detail)?.[1];
  return first ? (first.toLowerCase() as RuleField) : null;
}

const fmt = (v: number) => String(Number(v.toPrecision(12)));

/** "below 10 or above 30 · hysteresis 1 · at most one message per 60 s" */
export function ruleSummary(rule: Pick<AlertRule, RuleField>): string {
  const limits = [
    rule.min === null ? "" : `below ${fmt(rule.min)}`,
    rule.max === null ? "" : `above ${fmt(rule.max)}`,
  ]
    .filter(Boolean)
    .join(" or ");
  const parts = [`Alert ${limits}`];
  if (rule.hysteresis > 0) parts.push(`hysteresis ${fmt(rule.hysteresis)}`);
  parts.push(
    rule.min_interval_s === 0
      ? "no rate limit"
      : `at most one message per ${intervalText(rule.min_interval_s)}`,
  );
  return parts.join(" · ");
}

function intervalText(s: number): string {
  if (s % 3600 === 0) return `${s / 3600} h`;
  if (s % 60 === 0) return `${s / 60} min`;
  return `${s} s`;
}
