// One table's entities in memory, kept current by invalidation: a domain event drops an
// entity and the next read reloads it from the database. Rules that keep it exact:
// - A reload that started before an invalidation of its entity finished after it may
//   carry the old row: each invalidation stamps the entity with a clock tick, and a
//   reload keeps only the entities not stamped after it started.
// - `all()` needs every entity: the first call loads the table in one query; entities
//   created since are named by their events (stale) and loaded in one batch on the next call.
// - A key neither loaded nor stale is looked up in the database anyway (a miss costs
//   what it cost before the cache), so a write that forgot its event still cannot make an
//   entity vanish from single reads.

export type EntityCache<V> = {
  /** The entity, loaded if needed; undefined when the database has none. */
  get(key: string): Promise<V | undefined>;
  /** Every entity of the table (the first call loads it whole). */
  all(): Promise<Iterable<V>>;
  /** The entity changed or appeared: the next read reloads it. */
  invalidate(key: string): void;
  /** The entity is gone. */
  remove(key: string): void;
  /** Everything reloads (events may have been missed). */
  invalidateAll(): void;
  /**
   * Changes a loaded entity in place (device data written by the ingest). Reloads in
   * flight for it are discarded; a null key discards every reload in flight (the caller
   * cannot tell which entity the change belongs to).
   */
  patch(key: string | null, change: (v: V) => void): void;
  /** Bumped whenever an entity is added, replaced or dropped (not by patches). */
  revision(): number;
  /** Bumped by revisions and by patches: any change of what is held. */
  changes(): number;
  /** Entities held. */
  size(): number;
};

export function createEntityCache<V>(load: {
  /** Every entity of the table. */
  all(): Promise<Map<string, V>>;
  /** The entities with these keys (absent keys: no such entity). */
  some(keys: string[]): Promise<Map<string, V>>;
}): EntityCache<V> {
  let loaded = new Map<string, V>();
  // Keys to reload before the next answer (created, changed, or maybe deleted).
  let stale = new Set<string>();
  let complete = false;
  let snapshot: Promise<void> | null = null;
  let clock = 0;
  // The tick of each key's last invalidation, kept while any load is in flight.
  const touched = new Map<string, number>();
  let touchedAll = 0;
  let inFlight = 0;
  let generation = 0;
  let rev = 0;
  let patches = 0;

  const touch = (key: string) => {
    if (inFlight > 0) touched.set(key, ++clock);
  };
  const changedSince = (key: string, start: number) =>
    touchedAll > start || (touched.get(key) ?? 0) > start;

  async function tracked<T>(run: (start: number, gen: number) => Promise<T>): Promise<T> {
    const start = ++clock;
    inFlight++;
    try {
      return await run(start, generation);
    } finally {
      if (--inFlight === 0) touched.clear();
    }
  }

  function reload(keys: string[]): Promise<Map<string, V>> {
    return tracked(async (start, gen) => {
      const rows = await load.some(keys);
      if (gen !== generation) return rows;
      for (const key of keys) {
        if (changedSince(key, start)) {
          // Written meanwhile: what we read may predate it; the next read reloads.
          if (!loaded.has(key)) stale.add(key);
          continue;
        }
        const row = rows.get(key);
        if (row) loaded.set(key, row);
        else loaded.delete(key);
        stale.delete(key);
        rev++;
      }
      return rows;
    });
  }

  function loadSnapshot(): Promise<void> {
    snapshot ??= tracked(async (start, gen) => {
      const rows = await load.all();
      if (gen !== generation) return;
      for (const [key, row] of rows) {
        if (changedSince(key, start)) stale.add(key);
        else if (!loaded.has(key) && !stale.has(key)) loaded.set(key, row);
      }
      for (const [key, at] of touched) if (at > start) stale.add(key);
      if (touchedAll > start) for (const key of rows.keys()) stale.add(key);
      complete = true;
      rev++;
    }).finally(() => {
      snapshot = null;
    });
    return snapshot;
  }

  return {
    async get(key) {
      const hit = loaded.get(key);
      if (hit) return hit;
      return (await reload([key])).get(key);
    },
    async all() {
      while (!complete) await loadSnapshot();
      // An entity written during the reload stays stale; a few rounds catch up with a burst.
      for (let round = 0; stale.size && round < 3; round++) await reload([...stale]);
      return loaded.values();
    },
    invalidate(key) {
      touch(key);
      if (loaded.delete(key)) rev++;
      stale.add(key);
    },
    remove(key) {
      touch(key);
      if (loaded.delete(key)) rev++;
      stale.delete(key);
    },
    invalidateAll() {
      generation++;
      loaded = new Map();
      stale = new Set();
      complete = false;
      rev++;
    },
    patch(key, change) {
      if (key === null) {
        if (inFlight > 0) touchedAll = ++clock;
        return;
      }
      touch(key);
      const v = loaded.get(key);
      if (v) {
        change(v);
        patches++;
      }
    },
    revision: () => rev,
    changes: () => rev + patches,
    size: () => loaded.size,
  };
}
