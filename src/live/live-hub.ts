import type { Logger } from "pino";
import type { Principal } from "../access/principal.ts";
import type { PrincipalResolver } from "../access/resolve-principal.ts";
import { canSee } from "../access/visibility.ts";
import type { DbLike } from "../db/database.ts";
import { toEdgeOut } from "../edges/edges.schemas.ts";
import { findEdge } from "../edges/edges.store.ts";
import type { DomainEvents, EventBus } from "../events.ts";
import {
  loadAllEntries,
  loadRepoEntry,
  loadUnitEntry,
  type NodeEntry,
  type OwnedEntry,
  type UnitEntry,
} from "./live.store.ts";

// The live entity-state channel: which repos, units, variables and links exist and
// what state they are in, pushed to every open UI session that may see them.
//
// Cost per event: the hub keeps a small mirror of who owns what at which visibility
// (repos, units, variables: uuid → visibility + creator), so deciding who may see an
// entity is a couple of comparisons per session and never a database read; the mirror
// is re-read for one unit or repo when an event says it changed (that is also where a
// visibility change is noticed: sessions that lose sight of it get a removal). Each
// message is serialized once and written as the same text to every session that may
// see it. Variable values never come here: they flow over MQTT (web/src/lib/live.svelte.ts).
//
// Messages name what changed; unit online/offline, last seen and update status carry
// the new fields (patched in place), other changes are refetched by the client over
// REST (one entity: the REST access rules answer what exactly this session sees).

/** Where a session's messages go: preformatted SSE text; false when the client is too slow. */
export type LiveSink = { write(text: string): boolean; close(): void };

type Session = {
  principal: Principal;
  token: string | null;
  sink: LiveSink;
};

export type LiveHub = {
  start(): Promise<void>;
  stop(): void;
  /** Registers a session; call the returned function when it ends. */
  open(principal: Principal, token: string | null, sink: LiveSink): () => void;
};

export type LiveHubDeps = {
  db: DbLike;
  events: EventBus;
  log: Logger;
  resolvePrincipal: PrincipalResolver;
  /** How often sessions' tokens are checked again (expiry has no event). */
  recheckMs?: number;
};

export function sseText(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

export function createLiveHub(deps: LiveHubDeps): LiveHub {
  const { db, events, log } = deps;
  const repos = new Map<string, OwnedEntry>();
  const units = new Map<string, UnitEntry>();
  const nodes = new Map<string, NodeEntry>();
  const nodesByUnit = new Map<string, Set<string>>();
  // Uuids are never reused: a deletion wins over a reload in flight that read the row before
  // (kept only while such a reload runs).
  const deleted = new Set<string>();
  const sessions = new Set<Session>();
  const chains = new Map<string, Promise<void>>();
  const unsubscribers: Array<() => void> = [];
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const sees = (p: Principal, e: OwnedEntry | undefined) =>
    !!e && canSee(p, e.visibility, e.creatorUuid);
  const seesNode = (p: Principal, nodeUuid: string) => {
    const node = nodes.get(nodeUuid);
    const unit = node && units.get(node.unitUuid);
    return !!unit && sees(p, unit) && canSee(p, node.visibility, unit.creatorUuid);
  };

  function send(session: Session, text: string) {
    if (!session.sink.write(text)) {
      // Too far behind: it reconnects and re-reads the graph instead.
      sessions.delete(session);
      session.sink.close();
    }
  }

  /** One message to every session `who` allows (serialized once). */
  function broadcast(who: (p: Principal) => boolean, event: string, data: unknown) {
    let text: string | undefined;
    for (const s of sessions) {
      if (!who(s.principal)) continue;
      text ??= sseText(event, data);
      send(s, text);
    }
  }

  /** A changed entity: shown to who sees it now, removed for who saw it before only. */
  function changed(
    kind: "unit" | "repo",
    uuid: string,
    before: OwnedEntry | undefined,
    after: OwnedEntry | undefined,
  ) {
    const upsert = sseText(kind, { uuid });
    const removal = sseText(`${kind}-removed`, { uuid });
    for (const s of sessions) {
      if (sees(s.principal, after)) send(s, upsert);
      else if (sees(s.principal, before)) send(s, removal);
    }
  }

  function putNodes(unitUuid: string, list: Array<NodeEntry & { uuid: string }>) {
    for (const uuid of nodesByUnit.get(unitUuid) ?? []) nodes.delete(uuid);
    const set = new Set<string>();
    for (const n of list) {
      nodes.set(n.uuid, { unitUuid: n.unitUuid, visibility: n.visibility });
      set.add(n.uuid);
    }
    nodesByUnit.set(unitUuid, set);
  }

  function dropUnit(unitUuid: string) {
    for (const uuid of nodesByUnit.get(unitUuid) ?? []) nodes.delete(uuid);
    nodesByUnit.delete(unitUuid);
    units.delete(unitUuid);
  }

  /** Re-reads one entity, one read at a time per entity (the last read is the newest). */
  function serial(key: string, fn: () => Promise<void>) {
    const next = (chains.get(key) ?? Promise.resolve())
      .then(fn)
      .catch((err: unknown) => log.error({ err, key }, "live: reloading an entity failed"));
    chains.set(key, next);
    void next.finally(() => {
      if (chains.get(key) !== next) return;
      chains.delete(key);
      deleted.delete(key);
    });
  }

  function reloadUnit(unitUuid: string) {
    serial(unitUuid, async () => {
      const found = await loadUnitEntry(db, unitUuid);
      if (stopped || deleted.has(unitUuid)) return;
      const before = units.get(unitUuid);
      if (!found) {
        dropUnit(unitUuid);
        changed("unit", unitUuid, before, undefined);
        return;
      }
      units.set(unitUuid, {
        visibility: found.unit.visibility,
        creatorUuid: found.unit.creatorUuid,
        repoUuid: found.unit.repoUuid,
      });
      putNodes(unitUuid, found.nodes);
      changed("unit", unitUuid, before, units.get(unitUuid));
    });
  }

  function reloadRepo(repoUuid: string) {
    serial(repoUuid, async () => {
      const found = await loadRepoEntry(db, repoUuid);
      if (stopped || deleted.has(repoUuid)) return;
      const before = repos.get(repoUuid);
      if (found)
        repos.set(repoUuid, { visibility: found.visibility, creatorUuid: found.creatorUuid });
      else repos.delete(repoUuid);
      changed("repo", repoUuid, before, repos.get(repoUuid));
    });
  }

  /** Who may see a link: both ends, or (a user) the output's owner, as GET /unit_node_edges. */
  function linkAudience(outputUuid: string, inputUuid: string) {
    const outUnit = units.get(nodes.get(outputUuid)?.unitUuid ?? "");
    return (p: Principal) =>
      (seesNode(p, outputUuid) && seesNode(p, inputUuid)) ||
      (p.kind === "user" && outUnit?.creatorUuid === p.uuid);
  }

  async function linkCreated(edgeUuid: string) {
    const edge = await findEdge(db, edgeUuid);
    if (!edge || stopped) return;
    const who = linkAudience(edge.outputUuid, edge.inputUuid);
    let full: string | undefined;
    let outputOnly: string | undefined;
    for (const s of sessions) {
      if (!who(s.principal)) continue;
      if (seesNode(s.principal, edge.inputUuid)) {
        full ??= sseText("link", { link: toEdgeOut(edge, true) });
        send(s, full);
      } else {
        outputOnly ??= sseText("link", { link: toEdgeOut(edge, false) });
        send(s, outputOnly);
      }
    }
  }

  function closeWhere(match: (s: Session) => boolean) {
    for (const s of sessions) {
      if (!match(s)) continue;
      sessions.delete(s);
      s.sink.close();
    }
  }

  async function recheck() {
    for (const s of [...sessions]) {
      if (!s.token) continue;
      const p = await deps.resolvePrincipal(s.token);
      if (p) s.principal = p;
      else closeWhere((x) => x === s);
    }
  }

  // Listeners run inside the emitting route or the broker: they must never throw into it.
  function on<K extends keyof DomainEvents>(
    name: K,
    handler: (...args: DomainEvents[K]) => void,
  ): void {
    const safe = (...args: DomainEvents[K]) => {
      if (stopped) return;
      // Nobody listens: only the events that change the mirror matter.
      if (sessions.size === 0 && !MIRROR_EVENTS.has(name)) return;
      try {
        handler(...args);
      } catch (err) {
        log.error({ err, event: name }, "live: handling an event failed");
      }
    };
    // Cast: EventEmitter's generic listener type does not narrow through K.
    events.on(name, safe as never);
    unsubscribers.push(() => events.off(name, safe as never));
  }

  const userOf = (p: Principal) => (p.kind === "user" ? p.uuid : null);

  return {
    async start() {
      const all = await loadAllEntries(db);
      for (const r of all.repos) repos.set(r.uuid, r);
      for (const u of all.units) units.set(u.uuid, u);
      const byUnit = new Map<string, Array<NodeEntry & { uuid: string }>>();
      for (const n of all.nodes) byUnit.set(n.unitUuid, [...(byUnit.get(n.unitUuid) ?? []), n]);
      for (const [unitUuid, list] of byUnit) putNodes(unitUuid, list);

      on("unit.created", ({ unitUuid }) => reloadUnit(unitUuid));
      on("unit.updated", ({ unitUuid }) => reloadUnit(unitUuid));
      on("unit-node.updated", ({ unitUuid }) => reloadUnit(unitUuid));
      on("unit-nodes.changed", ({ unitUuid }) => reloadUnit(unitUuid));
      on("unit.deleted", ({ unitUuid }) => {
        if (chains.has(unitUuid)) deleted.add(unitUuid);
        const before = units.get(unitUuid);
        dropUnit(unitUuid);
        changed("unit", unitUuid, before, undefined);
      });
      on("unit.online", ({ unitUuid, online }) => {
        const unit = units.get(unitUuid);
        broadcast((p) => sees(p, unit), "unit-state", {
          uuid: unitUuid,
          is_online: online,
          last_seen_datetime: new Date().toISOString(),
        });
      });
      on("unit.state-received", ({ unitUuid, commit, state }) => {
        const unit = units.get(unitUuid);
        broadcast((p) => sees(p, unit), "unit-state", {
          uuid: unitUuid,
          last_seen_datetime: new Date().toISOString(),
          ...(state !== undefined ? { last_state: state } : {}),
          ...(commit ? { current_commit: commit } : {}),
        });
      });
      on("unit.update-status", ({ unitUuid, status, error }) => {
        const unit = units.get(unitUuid);
        broadcast((p) => sees(p, unit), "unit-state", {
          uuid: unitUuid,
          update_status: status,
          update_error: error,
        });
      });
      on("repo.created", ({ repoUuid }) => reloadRepo(repoUuid));
      on("repo.updated", ({ repoUuid }) => reloadRepo(repoUuid));
      on("repo.synced", ({ repoUuid }) => reloadRepo(repoUuid));
      on("repo.deleted", ({ repoUuid }) => {
        if (chains.has(repoUuid)) deleted.add(repoUuid);
        const before = repos.get(repoUuid);
        repos.delete(repoUuid);
        changed("repo", repoUuid, before, undefined);
      });
      on("edge.created", ({ edgeUuid }) => {
        linkCreated(edgeUuid).catch((err: unknown) =>
          log.error({ err, edgeUuid }, "live: announcing a link failed"),
        );
      });
      on("edge.deleted", ({ edgeUuid, outputUuid, inputUuid }) => {
        broadcast(linkAudience(outputUuid, inputUuid), "link-removed", { uuid: edgeUuid });
      });
      // The user's alert bell: only their own sessions hear that an alert event was kept.
      on("alert.created", ({ userUuid, eventUuid, kind }) => {
        broadcast((p) => userOf(p) === userUuid, "alert", { uuid: eventUuid, kind });
      });
      // A session whose token stopped being valid ends; the client reconnects as who it is now.
      on("user.revoked", ({ userUuid }) => closeWhere((s) => userOf(s.principal) === userUuid));
      on("user.blocked", ({ userUuid }) => closeWhere((s) => userOf(s.principal) === userUuid));
      on("user.token-revoked", ({ jti }) =>
        closeWhere((s) => s.principal.kind === "user" && s.principal.tokenId === jti),
      );
      timer = setInterval(() => {
        recheck().catch((err: unknown) => log.error({ err }, "live: session re-check failed"));
      }, deps.recheckMs ?? 60_000);
      timer.unref();
    },
    stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      for (const off of unsubscribers.splice(0)) off();
      closeWhere(() => true);
    },
    open(principal, token, sink) {
      const session: Session = { principal, token, sink };
      sessions.add(session);
      return () => {
        sessions.delete(session);
      };
    },
  };
}

/** Events the mirror follows even while no session is open (the rest only feed sessions). */
const MIRROR_EVENTS = new Set<keyof DomainEvents>([
  "unit.created",
  "unit.updated",
  "unit-node.updated",
  "unit-nodes.changed",
  "unit.deleted",
  "repo.created",
  "repo.updated",
  "repo.synced",
  "repo.deleted",
]);
