import { describe, expect, it } from "vitest";
import { createMessageEmitter, ExactTopicMatcher } from "../../src/broker/message-emitter.ts";

// The single-process broker's message fabric: exact topics in one Map, wildcards in the
// trie, and together the same answers as the trie alone.

/** A stand-in for the trie: records what reached it, matches `a/#` style filters. */
function recordingTrie() {
  const added: string[] = [];
  const filters = new Map<string, string[]>();
  return {
    added,
    add(topic: string, value: string) {
      added.push(topic);
      filters.set(topic, [...(filters.get(topic) ?? []), value]);
    },
    remove(topic: string, value?: string) {
      const vals = filters.get(topic) ?? [];
      const rest = value === undefined ? [] : vals.filter((v) => v !== value);
      if (rest.length) filters.set(topic, rest);
      else filters.delete(topic);
    },
    match(topic: string) {
      const out: string[] = [];
      for (const [filter, vals] of filters) {
        const prefix = filter.replace(/#$/, "");
        if (filter.endsWith("#") && `${topic}/`.startsWith(prefix)) out.push(...vals);
      }
      return out;
    },
  };
}

describe("exact topic matcher", () => {
  it("keeps exact topics out of the trie and matches both kinds", () => {
    const trie = recordingTrie();
    const m = new ExactTopicMatcher<string>(trie);
    m.add("d/input_base_topic/u1/update/pepeunit", "unit");
    m.add("d/#", "watcher");
    expect(trie.added).toEqual(["d/#"]);
    expect(m.exactTopics).toBe(1);
    expect(m.match("d/input_base_topic/u1/update/pepeunit").sort()).toEqual(["unit", "watcher"]);
    expect(m.match("d/input_base_topic/u2/update/pepeunit")).toEqual(["watcher"]);
    expect(m.match("e/x")).toEqual([]);
  });

  it("undoes each add with one remove, and removes every value without one", () => {
    const m = new ExactTopicMatcher<string>(recordingTrie());
    m.add("a/b", "x");
    m.add("a/b", "x");
    m.add("a/b", "y");
    m.remove("a/b", "x");
    expect(m.match("a/b")).toEqual(["x", "y"]);
    m.remove("a/b", "z");
    expect(m.match("a/b")).toEqual(["x", "y"]);
    m.remove("a/b");
    expect(m.match("a/b")).toEqual([]);
    expect(m.exactTopics).toBe(0);
  });

  it("answers a fresh array: a listener removed while delivering does not change it", () => {
    const m = new ExactTopicMatcher<string>(recordingTrie());
    m.add("a/b", "x");
    const first = m.match("a/b");
    m.remove("a/b", "x");
    expect(first).toEqual(["x"]);
  });
});

describe("the broker's emitter", () => {
  const deliver = (mq: ReturnType<typeof createMessageEmitter>, topic: string) =>
    new Promise<void>((resolve) => mq.emit({ topic, payload: "p" }, () => resolve()));

  it("delivers to exact and wildcard subscribers, and stops after removeListener", async () => {
    const mq = createMessageEmitter();
    // The matcher really is swapped in (otherwise the trie would hold every topic again).
    expect((mq as unknown as { _matcher: unknown })._matcher).toBeInstanceOf(ExactTopicMatcher);
    const got: string[] = [];
    const exact = (msg: { topic: string }, done: () => void) => {
      got.push(`exact ${msg.topic}`);
      done();
    };
    const some = (msg: { topic: string }, done: () => void) => {
      got.push(`some ${msg.topic}`);
      done();
    };
    const one = (msg: { topic: string }, done: () => void) => {
      got.push(`one ${msg.topic}`);
      done();
    };
    await new Promise<void>((r) => mq.on("d/u1/pepeunit", exact, r));
    await new Promise<void>((r) => mq.on("d/#", some, r));
    await new Promise<void>((r) => mq.on("d/+/pepeunit", one, r));
    await deliver(mq, "d/u1/pepeunit");
    // [MQTT-4.7.1-3]: `d/#` also matches its parent level.
    await deliver(mq, "d");
    expect(got.sort()).toEqual([
      "exact d/u1/pepeunit",
      "one d/u1/pepeunit",
      "some d",
      "some d/u1/pepeunit",
    ]);
    got.length = 0;
    await new Promise<void>((r) => mq.removeListener("d/u1/pepeunit", exact, r));
    await deliver(mq, "d/u1/pepeunit");
    expect(got.sort()).toEqual(["one d/u1/pepeunit", "some d/u1/pepeunit"]);
    await new Promise<void>((r) => mq.close(r));
  });
});
