import mqemitter from "mqemitter";
import { describe, expect, it } from "vitest";
import { EMITTER_CONCURRENCY } from "../../src/broker/emitter-concurrency.ts";
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

  // mqemitter's `length` (publishes waiting) is not in its typings.
  const queueLength = (mq: object) => (mq as { length: number }).length;

  /**
   * Overload: every slot held by a slow subscriber, then `queued` publishes that finish at
   * once (no subscriber) waiting behind them. Releasing the slots drains the queue.
   */
  async function drainAfterOverload(mq: ReturnType<typeof createMessageEmitter>, queued: number) {
    const held: Array<() => void> = [];
    await new Promise<void>((r) =>
      mq.on("slow", (_m: unknown, done: () => void) => void held.push(done), r),
    );
    const finished: number[] = [];
    for (let i = 0; i < EMITTER_CONCURRENCY; i++) mq.emit({ topic: "slow", payload: "" });
    for (let i = 0; i < queued; i++)
      mq.emit({ topic: "nobody", payload: String(i) }, () => finished.push(i));
    expect(held).toHaveLength(EMITTER_CONCURRENCY);
    expect(queueLength(mq)).toBe(queued);
    for (const done of held.splice(0)) done();
    return finished;
  }

  it("drains a long queue without overflowing the stack, in order", async () => {
    const queued = 200_000;
    // The emitter as mqemitter builds it overflows (the bug this guards against).
    const plain = mqemitter({ concurrency: EMITTER_CONCURRENCY });
    await expect(
      (async () => drainAfterOverload(plain as ReturnType<typeof createMessageEmitter>, queued))(),
    ).rejects.toThrow(RangeError);
    const mq = createMessageEmitter();
    const finished = await drainAfterOverload(mq, queued);
    expect(finished).toHaveLength(queued);
    expect(finished.every((v, i) => v === i)).toBe(true);
    expect(queueLength(mq)).toBe(0);
    expect(mq.current).toBe(0);
    // Still usable, and a new publish is not queued behind anything.
    const got: string[] = [];
    await new Promise<void>((r) =>
      mq.on(
        "t",
        (m: { payload?: unknown; topic: string }, done: () => void) => {
          got.push(String(m.payload));
          done();
        },
        r,
      ),
    );
    await deliver(mq, "t");
    expect(got).toEqual(["p"]);
  });

  it("keeps the queue's order when a publish arrives while slots are handed over", async () => {
    const mq = createMessageEmitter();
    const held: Array<() => void> = [];
    const seen: string[] = [];
    await new Promise<void>((r) =>
      mq.on(
        "slow",
        (m: { payload?: unknown; topic: string }, done: () => void) => {
          seen.push(String(m.payload));
          held.push(done);
        },
        r,
      ),
    );
    for (let i = 0; i < EMITTER_CONCURRENCY; i++) mq.emit({ topic: "slow", payload: `first ${i}` });
    mq.emit({ topic: "slow", payload: "queued 1" });
    mq.emit({ topic: "slow", payload: "queued 2" });
    seen.length = 0;
    // One slot frees up; a publish made from inside that release must wait its turn.
    const done = held.shift() as () => void;
    done();
    mq.emit({ topic: "slow", payload: "late" });
    (held.shift() as () => void)();
    (held.shift() as () => void)();
    expect(seen).toEqual(["queued 1", "queued 2", "late"]);
  });
});
