import { describe, expect, it } from "vitest";
import {
  emptyRuleForm,
  fieldOfProblem,
  ruleBody,
  ruleFormOf,
  ruleSummary,
} from "../../web/src/lib/alerts-rules.ts";

// The variable pop-up's alert-rule form: text fields ↔ the API's body, the field a
// server refusal belongs to, and a rule in one line.

const RULE = {
  uuid: "0b4f3c2e-1111-4222-8333-444455556666",
  unit_node_uuid: "0b4f3c2e-1111-4222-8333-444455556667",
  unit_uuid: "0b4f3c2e-1111-4222-8333-444455556668",
  min: -5,
  max: 30.5,
  hysteresis: 0.5,
  min_interval_s: 3600,
  enabled: true,
  state: "normal" as const,
  create_datetime: "2026-01-01T00:00:00.000Z",
  update_datetime: "2026-01-01T00:00:00.000Z",
};

describe("alert rule form", () => {
  it("turns the fields into a body: empty limits are none, a decimal comma is a point", () => {
    expect(ruleBody({ ...emptyRuleForm(), max: " 30,5 " })).toEqual({
      body: { min: null, max: 30.5, hysteresis: 0, min_interval_s: 60 },
    });
    expect(ruleBody(ruleFormOf(RULE))).toEqual({
      body: { min: -5, max: 30.5, hysteresis: 0.5, min_interval_s: 3600 },
    });
  });

  it("names the fields that are not numbers, and leaves the limits to the server", () => {
    expect(ruleBody({ min: "cold", max: "0x10", hysteresis: "1e", min_interval_s: "1.5" })).toEqual(
      {
        errors: {
          min: expect.any(String),
          max: expect.any(String),
          hysteresis: expect.any(String),
          min_interval_s: "Whole seconds.",
        },
      },
    );
    // min > max is a number problem for the server to refuse, with its own words.
    expect(ruleBody({ ...emptyRuleForm(), min: "40", max: "30" })).toHaveProperty("body");
  });

  it("puts the server's limit sentences at the field they start with", () => {
    expect(fieldOfProblem("min must not be greater than max")).toBe("min");
    expect(fieldOfProblem("hysteresis must be less than half of max - min")).toBe("hysteresis");
    expect(fieldOfProblem("give min, max or both")).toBe("min");
    expect(fieldOfProblem("at most 5000 alert rules per user")).toBeNull();
  });

  it("says a rule in one line", () => {
    expect(ruleSummary(RULE)).toBe(
      "Alert below -5 or above 30.5 · hysteresis 0.5 · at most one message per 1 h",
    );
    expect(ruleSummary({ ...RULE, min: null, hysteresis: 0, min_interval_s: 0 })).toBe(
      "Alert above 30.5 · no rate limit",
    );
    expect(ruleSummary({ ...RULE, max: null, hysteresis: 0, min_interval_s: 90 })).toBe(
      "Alert below -5 · at most one message per 90 s",
    );
  });
});
