// A least-recently-used map bounded by the total bytes of its values, so a burst of
// archive builds for many versions cannot grow the process without limit.

export type ByteLru<V> = {
  get(key: string): V | undefined;
  /** Inserts or re-sizes an entry as most recent, then evicts the oldest ones over budget. */
  set(key: string, value: V, bytes: number): void;
  stats(): { entries: number; bytes: number };
};

export function createByteLru<V>(maxBytes: number): ByteLru<V> {
  // A Map iterates in insertion order: re-inserting on use keeps the oldest first.
  const entries = new Map<string, { value: V; bytes: number }>();
  let total = 0;

  return {
    get(key) {
      const e = entries.get(key);
      if (!e) return undefined;
      entries.delete(key);
      entries.set(key, e);
      return e.value;
    },
    set(key, value, bytes) {
      const old = entries.get(key);
      if (old) {
        total -= old.bytes;
        entries.delete(key);
      }
      entries.set(key, { value, bytes });
      total += bytes;
      for (const [k, e] of entries) {
        if (total <= maxBytes) break;
        entries.delete(k);
        total -= e.bytes;
      }
    },
    stats: () => ({ entries: entries.size, bytes: total }),
  };
}
