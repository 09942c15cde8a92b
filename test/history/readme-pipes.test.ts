import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseDataPipeConfig } from "../../src/history/data-pipe-config.ts";

// The README's data pipe examples (```yaml data-pipe blocks) are configs a user pastes:
// each must be valid as written, and together they show every policy.
const readme = readFileSync(path.join(import.meta.dirname, "../../README.md"), "utf8");
const examples = [...readme.matchAll(/```yaml data-pipe\n([\s\S]*?)```/g)].map((m) => m[1] ?? "");

describe("README data pipe examples", () => {
  it("are valid configs, one per policy", () => {
    const policies = examples.map((yaml) => {
      const parsed = parseDataPipeConfig(yaml, 65536);
      if (!parsed.ok) throw new Error(`${yaml}\n${JSON.stringify(parsed)}`);
      return parsed.config.policy.type;
    });
    expect(policies.sort()).toEqual(["Aggregation", "LastValue", "NRecords", "TimeWindow"]);
  });
});
