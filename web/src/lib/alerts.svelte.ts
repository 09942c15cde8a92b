import { api, type Schemas, unwrap } from "./api.ts";

// The bell's alert events: the unread count, refreshed when the live channel pushes
// "alert" (live-entities.svelte.ts), when the tab comes back, when the list opens, and
// by a modest poll as a fallback; and the list itself, newest first, a page at a time.

export type AlertEvent = Schemas["AlertEvent"];

/** How often the unread count is asked for while the tab is visible. */
export const DEFAULT_POLL_MS = 30_000;
/** A shorter poll for tests and demos: `localStorage["pepeunit.alerts.pollMs"]` (≥ 200 ms). */
export const POLL_MS_KEY = "pepeunit.alerts.pollMs";
export const PAGE_SIZE = 20;

function pollMs(): number {
  const set = Number(globalThis.localStorage?.getItem(POLL_MS_KEY));
  return Number.isFinite(set) && set >= 200 ? set : DEFAULT_POLL_MS;
}

export class AlertFeed {
  unread = $state(0);
  count = $state(0);
  /** The pages loaded so far (only while the list is open or was opened). */
  events = $state.raw<AlertEvent[]>([]);
  loading = $state(false);
  error = $state<string | null>(null);
  #timer: ReturnType<typeof setInterval> | null = null;
  /** Whether the list is open (a refresh then brings its first page too). */
  #shown = false;
  #seq = 0;

  readonly hasMore = $derived(this.events.length < this.count);

  /** Polls while someone is logged in; stops (and forgets) on logout. */
  follow(loggedIn: boolean): void {
    this.#stop();
    this.#seq++;
    this.unread = 0;
    this.count = 0;
    this.events = [];
    this.error = null;
    this.#shown = false;
    if (!loggedIn) return;
    void this.refresh();
    this.#timer = setInterval(() => {
      if (!document.hidden) void this.refresh();
    }, pollMs());
    document.addEventListener("visibilitychange", this.#onVisible);
  }

  #stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    document.removeEventListener("visibilitychange", this.#onVisible);
  }

  #onVisible = () => {
    if (!document.hidden) void this.refresh();
  };

  /**
   * Fetches the counts; while the list is open (or `withList`), its first page too, so
   * new events appear on top (older pages loaded with more() are dropped then).
   */
  async refresh(withList = this.#shown): Promise<void> {
    const seq = this.#seq;
    try {
      const page = await unwrap(
        api.GET("/alerts/events", {
          params: { query: { limit: withList ? PAGE_SIZE : 1, offset: 0 } },
        }),
      );
      if (seq !== this.#seq) return;
      this.unread = page.unread;
      this.count = page.count;
      if (withList) this.events = page.alert_events;
      this.error = null;
    } catch (err) {
      // A missed poll is retried at the next tick; the list says why only when open.
      if (seq === this.#seq && withList) this.error = errorOf(err);
    }
  }

  /** The list opened: its first page, fresh. */
  async open(): Promise<void> {
    this.#shown = true;
    this.loading = true;
    try {
      await this.refresh(true);
    } finally {
      this.loading = false;
    }
  }

  close(): void {
    this.#shown = false;
  }

  /** The next (older) page. */
  async more(): Promise<void> {
    const seq = this.#seq;
    this.loading = true;
    try {
      const page = await unwrap(
        api.GET("/alerts/events", {
          params: { query: { limit: PAGE_SIZE, offset: this.events.length } },
        }),
      );
      if (seq !== this.#seq) return;
      const known = new Set(this.events.map((e) => e.uuid));
      this.events = [...this.events, ...page.alert_events.filter((e) => !known.has(e.uuid))];
      this.unread = page.unread;
      this.count = page.count;
      this.error = null;
    } catch (err) {
      if (seq === this.#seq) this.error = errorOf(err);
    } finally {
      this.loading = false;
    }
  }

  /** Marks the given events read, or all of them (also those not loaded). */
  async markRead(uuids?: string[]): Promise<void> {
    try {
      const { marked } = await unwrap(
        api.POST("/alerts/events/read", { body: uuids ? { uuids } : {} }),
      );
      const done = uuids ? new Set(uuids) : null;
      this.events = this.events.map((e) => (!done || done.has(e.uuid) ? { ...e, read: true } : e));
      this.unread = done ? Math.max(0, this.unread - marked) : 0;
      this.error = null;
    } catch (err) {
      this.error = errorOf(err);
    }
  }
}

function errorOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export const alertFeed = new AlertFeed();
