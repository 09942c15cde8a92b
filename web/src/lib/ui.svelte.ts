import type { Point } from "./layout.ts";

// UI state shared across components: which create form is open, and short
// notices (announced to screen readers through an aria-live region).

export type Creating =
  | { kind: "repo" }
  | { kind: "unit"; repoUuid: string; at: Point | null }
  | null;
/** A notice may offer one action (Undo), also run by Ctrl+Z / Cmd+Z while it shows. */
export type NoticeAction = { label: string; run: () => void };
export type Notice = {
  id: number;
  kind: "info" | "error" | "success";
  text: string;
  action?: NoticeAction;
};

export class Ui {
  creating = $state<Creating>(null);
  /** The output whose keyboard link picker is open. */
  linking = $state<string | null>(null);
  notices = $state.raw<Notice[]>([]);
  /** Shown once after the first admin registers (standard repositories question). */
  firstRun = $state(false);
  #next = 1;

  notify(kind: Notice["kind"], text: string, ms = 6000, action?: NoticeAction): void {
    const id = this.#next++;
    this.notices = [...this.notices, { id, kind, text, ...(action ? { action } : {}) }];
    setTimeout(() => this.dismiss(id), ms);
  }

  /** Runs the newest notice's action (once) and dismisses it; false when none offers one. */
  act(id?: number): boolean {
    const n = [...this.notices]
      .reverse()
      .find((x) => x.action && (id === undefined || x.id === id));
    if (!n?.action) return false;
    this.dismiss(n.id);
    n.action.run();
    return true;
  }

  dismiss(id: number): void {
    this.notices = this.notices.filter((n) => n.id !== id);
  }
}

export const ui = new Ui();
