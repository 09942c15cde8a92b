import { type Core, errorText } from "./core.ts";
import { READING_FORMATS, type ReadingFormat } from "./readings.ts";

// Which readings format (readings.ts) each peer reads. A peer announces the formats
// it reads in its NodeInfo (`metadata.readingFormats`); a peer that says nothing
// (an older Pepeunit) reads format 1 only. Looked up per origin in the background,
// the first time readings are bound for it and again after TTL_MS: until the answer
// is in, and whenever the lookup fails, readings go in format 1, which every peer reads.

const TTL_MS = 3600_000;
const TIMEOUT_MS = 10_000;

export type PeerFormats = {
  /** The best format the inbox's instance is known to read now (starts a lookup when due). */
  formatFor(inbox: string): ReadingFormat;
  /** The peer refused a format (it was downgraded, say): format 1 until the next lookup. */
  downgrade(inbox: string): void;
  /** Waits for the lookups in flight (tests, stop). */
  settled(): Promise<void>;
};

type Entry = { format: ReadingFormat; at: number; pending: Promise<void> | null };

export function createPeerFormats(core: Core): PeerFormats {
  const byOrigin = new Map<string, Entry>();

  async function lookup(origin: string, entry: Entry): Promise<void> {
    try {
      const formats = await announcedFormats(core, origin);
      const best = Math.max(1, ...formats.filter((f) => READING_FORMATS.includes(f as never)));
      entry.format = best as ReadingFormat;
    } catch (err) {
      entry.format = 1;
      core.log.info(
        { origin, err: errorText(err) },
        "federation: peer NodeInfo unreadable; readings in format 1",
      );
    } finally {
      entry.at = Date.now();
      entry.pending = null;
    }
  }

  return {
    formatFor(inbox) {
      const origin = new URL(inbox).origin;
      let e = byOrigin.get(origin);
      if (!e) {
        e = { format: 1, at: 0, pending: null };
        byOrigin.set(origin, e);
      }
      if (!e.pending && Date.now() - e.at > TTL_MS) e.pending = lookup(origin, e);
      return e.format;
    },
    downgrade(inbox) {
      const e = byOrigin.get(new URL(inbox).origin);
      if (e) Object.assign(e, { format: 1, at: Date.now() });
    },
    async settled() {
      await Promise.all([...byOrigin.values()].map((e) => e.pending));
    },
  };
}

/** `metadata.readingFormats` of the origin's NodeInfo (same origin only, allowed addresses only). */
async function announcedFormats(core: Core, origin: string): Promise<number[]> {
  const get = async (url: URL): Promise<unknown> => {
    if (url.origin !== origin) throw new Error(`NodeInfo link to another origin: ${url.href}`);
    const allowed = await core.policy.check(url);
    if (!allowed.ok) throw new Error(allowed.reason);
    const res = await fetch(url, {
      headers: { accept: "application/json" },
      redirect: "manual",
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    if (!res.ok) throw new Error(`HTTP ${res.status} from ${url.href}`);
    return res.json();
  };
  const wellKnown = (await get(new URL("/.well-known/nodeinfo", origin))) as {
    links?: Array<{ rel?: string; href?: string }>;
  };
  const link = wellKnown.links?.find((l) =>
    l.rel?.startsWith("http://nodeinfo.diaspora.software/ns/schema/2."),
  );
  if (!link?.href) throw new Error("no NodeInfo 2.x link");
  const info = (await get(new URL(link.href))) as { metadata?: { readingFormats?: unknown } };
  const formats = info.metadata?.readingFormats;
  return Array.isArray(formats) ? formats.filter((f): f is number => typeof f === "number") : [];
}
