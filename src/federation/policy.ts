import { validatePublicUrl } from "@fedify/vocab-runtime";
import type { DbLike } from "../db/database.ts";
import {
  type FederationSettings,
  listPeers,
  type PeerRow,
  readSettings,
} from "./federation.store.ts";

// Who this instance federates with, decided in memory (every inbound activity and
// outbound delivery asks): federation on/off, open or allow-list mode, block-list;
// and, unless PEPEUNIT_FEDERATION_ALLOW_LOCAL, no peer on a loopback or private address.

export type PeerDecision = { ok: true } | { ok: false; reason: string };

/** host[:port] of a URL, lowercase: the identity of a peer instance. */
export function domainOf(url: URL | string): string {
  return new URL(url).host.toLowerCase();
}

export function normalizeDomain(domain: string): string | null {
  const d = domain.trim().toLowerCase();
  return /^[a-z0-9.-]+(:\d{1,5})?$|^\[[0-9a-f:.]+\](:\d{1,5})?$/.test(d) ? d : null;
}

export class PeerPolicy {
  settings: FederationSettings = { enabled: true, mode: "Open" };
  readonly #peers = new Map<string, PeerRow>();
  readonly #allowLocal: boolean;
  readonly #ownDomain: string;

  constructor(opts: { allowLocal: boolean; ownDomain: string }) {
    this.#allowLocal = opts.allowLocal;
    this.#ownDomain = opts.ownDomain.toLowerCase();
  }

  async load(db: DbLike): Promise<void> {
    this.settings = await readSettings(db);
    this.#peers.clear();
    for (const p of await listPeers(db)) this.#peers.set(p.domain, p);
  }

  putPeer(p: PeerRow): void {
    this.#peers.set(p.domain, p);
  }

  /** The synchronous part: settings and lists (no DNS). */
  decide(domain: string): PeerDecision {
    if (!this.settings.enabled) return { ok: false, reason: "federation is off on this instance" };
    if (domain === this.#ownDomain) return { ok: false, reason: "that is this instance" };
    const peer = this.#peers.get(domain);
    if (peer?.blocked) return { ok: false, reason: `instance ${domain} is blocked` };
    if (this.settings.mode === "AllowList" && !peer?.allowed) {
      return { ok: false, reason: `instance ${domain} is not on the allow-list` };
    }
    return { ok: true };
  }

  isBlocked(domain: string): boolean {
    return this.#peers.get(domain)?.blocked === true;
  }

  /** decide() plus the address check: a URL resolving to a private address is refused. */
  async check(url: URL): Promise<PeerDecision> {
    const d = this.decide(domainOf(url));
    if (!d.ok) return d;
    if (this.#allowLocal) return d;
    try {
      await validatePublicUrl(url.href);
      return d;
    } catch {
      return { ok: false, reason: `${url.host} is on a local or private address` };
    }
  }
}
