import { alertFeed } from "./alerts.svelte.ts";
import { API_BASE, api, type Unit, type UnitNodeEdge, unwrap } from "./api.ts";
import { ApiError } from "./api-errors.ts";
import { graph } from "./graph.svelte.ts";

// The graph's entities kept current: the server pushes what changed (GET /live,
// server-sent events, read with fetch so the token rides as x-auth-token) to every
// session that may see it. Unit state fields come in the message and are patched in
// place; other changes name the entity, which is read again over REST (the server's
// access rules decide what this session sees of it; a 404 means it is gone for us).
// After a dropped connection the graph is re-read, so nothing missed stays stale.
// Variable values do not come here: they flow over MQTT (live.svelte.ts).

export type EntityStatus = "off" | "connecting" | "live";

type Message =
  | { event: "hello" }
  | { event: "unit" | "repo" | "unit-removed" | "repo-removed" | "link-removed"; uuid: string }
  | { event: "unit-state"; uuid: string; patch: Partial<Unit> }
  | { event: "link"; link: UnitNodeEdge };

/** Messages of a short while are applied together: one graph rebuild for a burst. */
const BATCH_MS = 60;
const RETRY_MS = [500, 1_000, 2_000, 5_000];
/** More entities to read again than this in one batch: the whole graph is read instead. */
const REFETCH_MAX = 20;
/** A tab hidden this long closes its stream until it is shown again. */
const HIDDEN_MS = 60_000;

export function parseSse(block: string): { event: string; data: string } | null {
  let event = "message";
  const data: string[] = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event: ")) event = line.slice(7);
    else if (line.startsWith("data: ")) data.push(line.slice(6));
  }
  return data.length ? { event, data: data.join("\n") } : null;
}

export class LiveEntities {
  status = $state<EntityStatus>("off");
  #identity: string | null | undefined = undefined;
  #abort: AbortController | null = null;
  #queue: Message[] = [];
  #timer: ReturnType<typeof setTimeout> | null = null;
  /** Let go while the tab is hidden; reconnects when it is shown. */
  #paused = false;
  #watching = false;

  /** Follow as this token (null: anonymous); a new identity reconnects. */
  follow(token: string | null): void {
    if (token === this.#identity && (this.#abort || this.#paused)) return;
    this.stop();
    this.#identity = token;
    this.#watchVisibility();
    this.#start();
  }

  stop(): void {
    this.#abort?.abort();
    this.#abort = null;
    this.#paused = false;
    this.#queue = [];
    this.status = "off";
  }

  #start(): void {
    const abort = new AbortController();
    this.#abort = abort;
    void this.#run(this.#identity ?? null, abort.signal);
  }

  /**
   * A tab hidden for a while lets its stream go: browsers allow a host only a few
   * HTTP/1.1 connections, and every open tab would hold one. Shown again, it
   * reconnects and reads the graph again.
   */
  #watchVisibility(): void {
    if (this.#watching || typeof document === "undefined") return;
    this.#watching = true;
    let hiddenTimer: ReturnType<typeof setTimeout> | null = null;
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) {
        hiddenTimer ??= setTimeout(() => {
          hiddenTimer = null;
          if (!this.#abort) return;
          this.#abort.abort();
          this.#abort = null;
          this.#paused = true;
          this.status = "off";
        }, HIDDEN_MS);
        return;
      }
      if (hiddenTimer) clearTimeout(hiddenTimer);
      hiddenTimer = null;
      if (this.#paused) {
        this.#paused = false;
        this.#start();
      }
    });
  }

  async #run(token: string | null, signal: AbortSignal): Promise<void> {
    let connections = 0;
    let failures = 0;
    while (!signal.aborted) {
      this.status = "connecting";
      try {
        const res = await fetch(`${API_BASE}/live`, {
          headers: token ? { "x-auth-token": token } : {},
          signal,
          cache: "no-store",
        });
        if (!res.ok || !res.body) throw new Error(`live: ${res.status}`);
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          buf += value;
          let end = buf.indexOf("\n\n");
          while (end >= 0) {
            const msg = parseSse(buf.slice(0, end));
            buf = buf.slice(end + 2);
            end = buf.indexOf("\n\n");
            if (!msg) continue;
            if (msg.event === "hello") {
              this.status = "live";
              failures = 0;
              // A reconnect, or a graph read before this connection began: whatever
              // happened in between was missed, read the graph again.
              const missed = connections++ > 0 || (graph.loaded && !graph.loading);
              if (missed) graph.whenLoaded(() => void graph.load(undefined, { quiet: true }));
              continue;
            }
            this.#enqueue(msg.event, JSON.parse(msg.data));
          }
        }
      } catch {
        if (signal.aborted) return;
      }
      if (signal.aborted) return;
      this.status = "connecting";
      // Counts as a reconnect even when the first attempt never got through.
      connections = Math.max(connections, 1);
      await new Promise((r) => setTimeout(r, RETRY_MS[Math.min(failures++, RETRY_MS.length - 1)]));
    }
  }

  #enqueue(event: string, data: Record<string, unknown>): void {
    // Not the graph's: the bell reads its unread count again (its poll is only a fallback).
    if (event === "alert") {
      void alertFeed.refresh();
      return;
    }
    const uuid = String(data.uuid ?? "");
    if (event === "unit-state") {
      const { uuid: _uuid, ...patch } = data;
      this.#queue.push({ event, uuid, patch: patch as Partial<Unit> });
    } else if (event === "link") {
      this.#queue.push({ event, link: data.link as UnitNodeEdge });
    } else if (
      event === "unit" ||
      event === "repo" ||
      event === "unit-removed" ||
      event === "repo-removed" ||
      event === "link-removed"
    ) {
      this.#queue.push({ event, uuid });
    }
    this.#timer ??= setTimeout(() => {
      this.#timer = null;
      graph.whenLoaded(() => this.#flush());
    }, BATCH_MS);
  }

  #flush(): void {
    const batch = this.#queue.splice(0);
    const refetchUnits = new Set<string>();
    const refetchRepos = new Set<string>();
    graph.batch(() => {
      for (const m of batch) {
        switch (m.event) {
          case "unit-state":
            graph.patchUnit(m.uuid, m.patch);
            break;
          case "unit":
            refetchUnits.add(m.uuid);
            break;
          case "repo":
            refetchRepos.add(m.uuid);
            break;
          case "unit-removed":
            refetchUnits.delete(m.uuid);
            graph.removeUnit(m.uuid);
            break;
          case "repo-removed":
            refetchRepos.delete(m.uuid);
            graph.removeRepo(m.uuid);
            break;
          case "link":
            graph.addLink(m.link);
            break;
          case "link-removed":
            graph.removeLinks([m.uuid]);
            break;
        }
      }
    });
    // Many at once (a repo sync moved every unit that follows it): one read of the graph.
    if (refetchUnits.size + refetchRepos.size > REFETCH_MAX) {
      void graph.load(undefined, { quiet: true });
      return;
    }
    for (const uuid of refetchUnits) void this.#refetchUnit(uuid);
    for (const uuid of refetchRepos) void this.#refetchRepo(uuid);
  }

  /** Reads one entity again; a 404 means this session may no longer see it. */
  async #refetch<T>(read: Promise<T>, put: (v: T) => void, gone: () => void): Promise<void> {
    try {
      put(await read);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) gone();
    }
  }

  #refetchUnit(uuid: string): Promise<void> {
    const read = unwrap(api.GET("/units/{uuid}", { params: { path: { uuid } } }));
    return this.#refetch(
      read,
      (u) => graph.upsertUnit(u),
      () => graph.removeUnit(uuid),
    );
  }

  #refetchRepo(uuid: string): Promise<void> {
    const read = unwrap(api.GET("/repos/{uuid}", { params: { path: { uuid } } }));
    return this.#refetch(
      read,
      (r) => graph.upsertRepo(r),
      () => graph.removeRepo(uuid),
    );
  }
}

export const liveEntities = new LiveEntities();
