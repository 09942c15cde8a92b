import mqemitter from "mqemitter";
import { EMITTER_CONCURRENCY } from "./emitter-concurrency.ts";
import { drainIteratively } from "./emitter-drain.ts";

// The message fabric of a single-process broker: Aedes's own emitter (mqemitter), with
// its subscription matcher made smaller for what devices subscribe to. mqemitter finds
// a publish's subscribers in a qlobber trie, one Map per topic level of every
// subscription: a device's six exact input topics (`domain/input_base_topic/<uuid>/
// update/pepeunit`, …) made twelve Maps and their tables, about 2 KB a device: the
// largest single item of what 1 000 idle devices added to the heap, besides Aedes's clients.
// A topic without a wildcard only ever matches itself, so those live in one Map keyed by
// the whole topic, and only wildcard subscriptions (`#`, `+`) go to the trie. A publish
// looks its topic up in the Map (one hash instead of one per level) and walks the trie
// for the wildcards.

/** The part of qlobber's interface mqemitter uses (add, remove, match). */
export type TopicMatcher<V> = {
  add(topic: string, value: V): unknown;
  /** Without `value`, every value of the topic. */
  remove(topic: string, value?: V): unknown;
  match(topic: string): V[];
};

const WILDCARD = /[+#]/;

export class ExactTopicMatcher<V> implements TopicMatcher<V> {
  private readonly exact = new Map<string, V[]>();
  private readonly wildcards: TopicMatcher<V>;

  constructor(wildcards: TopicMatcher<V>) {
    this.wildcards = wildcards;
  }

  add(topic: string, value: V): this {
    if (WILDCARD.test(topic)) {
      this.wildcards.add(topic, value);
      return this;
    }
    const values = this.exact.get(topic);
    // Duplicates are kept, as qlobber keeps them: each add is undone by one remove.
    if (values) values.push(value);
    else this.exact.set(topic, [value]);
    return this;
  }

  remove(topic: string, value?: V): this {
    if (WILDCARD.test(topic)) {
      this.wildcards.remove(topic, value);
      return this;
    }
    const values = this.exact.get(topic);
    if (!values) return this;
    if (value !== undefined) {
      // The last one added first, as qlobber does.
      const i = values.lastIndexOf(value);
      if (i >= 0) values.splice(i, 1);
      if (values.length > 0) return this;
    }
    this.exact.delete(topic);
    return this;
  }

  match(topic: string): V[] {
    const matched = this.wildcards.match(topic);
    const values = this.exact.get(topic);
    if (values) for (const v of values) matched.push(v);
    return matched;
  }

  /** How many exact topics are subscribed to (tests). */
  get exactTopics(): number {
    return this.exact.size;
  }
}

/**
 * What Aedes creates when it is given no emitter (mqemitter with [MQTT-4.7.1-3]'s empty
 * levels and the broker's concurrency), with the exact-topic matcher in place of the
 * trie and a queue drained without recursion (emitter-drain.ts). mqemitter keeps its matcher in `_matcher`; a version that does not is refused
 * here, at start, rather than left to route through a matcher that is never filled.
 */
export function createMessageEmitter(): ReturnType<typeof mqemitter> {
  const mq = mqemitter({ concurrency: EMITTER_CONCURRENCY, matchEmptyLevels: true });
  const internals = mq as unknown as { _matcher?: TopicMatcher<unknown> };
  const trie = internals._matcher;
  if (!trie || typeof trie.add !== "function" || typeof trie.match !== "function") {
    throw new Error("mqemitter has no _matcher: the installed version is not supported");
  }
  internals._matcher = new ExactTopicMatcher(trie);
  drainIteratively(mq);
  return mq;
}
