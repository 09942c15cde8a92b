import type { Point } from "./layout.ts";

// UI state shared across components: which create form is open, and short
// notices (announced to screen readers through an aria-live region).

export type Creating =
  | { kind: "repo" }
  | { kind: "unit"; repoUuid: string; at: Point | null }
  | null;
export type Notice = { id: number; kind: "info" | "error" | "success"; text: string };

export class Ui {
  creating = $state<Creating>(null);
  notices = $state.raw<Notice[]>([]);
  /** Shown once after the first admin registers (standard repositories question). */
  firstRun = $state(false);
  #next = 1;

  notify(kind: Notice["kind"], text: string, ms = 6000): void {
    const id = this.#next++;
    this.notices = [...this.notices, { id, kind, text }];
    setTimeout(() => this.dismiss(id), ms);
  }

  dismiss(id: number): void {
    this.notices = this.notices.filter((n) => n.id !== id);
  }
}

export const ui = new Ui();
