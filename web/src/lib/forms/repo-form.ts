import type { FieldErrors } from "../api-errors.ts";
import type { Visibility } from "./validation.ts";

// The repo_unit form: every field of POST /repos (and of PATCH /repos/{uuid}
// when editing). The sync period is entered as a number and a unit; the API
// takes seconds (60 s … 1 year).

export const SYNC_UNITS = { minutes: 60, hours: 3600, days: 86400 } as const;
export type SyncUnit = keyof typeof SYNC_UNITS;
export const MIN_SYNC_S = 60;
export const MAX_SYNC_S = 31_536_000;

export type RepoFormValues = {
  name: string;
  url: string;
  is_private: boolean;
  username: string;
  password: string;
  visibility: Visibility;
  sync_every: number;
  sync_unit: SyncUnit;
  /** "No auto-sync": manual sync only (the API's auto_sync = false). */
  manual_only: boolean;
};

export function emptyRepoForm(): RepoFormValues {
  return {
    name: "",
    url: "",
    is_private: false,
    username: "",
    password: "",
    visibility: "Public",
    sync_every: 1,
    sync_unit: "days",
    manual_only: false,
  };
}

export function syncSeconds(v: Pick<RepoFormValues, "sync_every" | "sync_unit">): number {
  return Math.round(v.sync_every * SYNC_UNITS[v.sync_unit]);
}

/** The largest unit that divides the period exactly (86400 → 1 day, 5400 → 90 minutes). */
export function syncPeriodOf(seconds: number): { sync_every: number; sync_unit: SyncUnit } {
  if (seconds % SYNC_UNITS.days === 0)
    return { sync_every: seconds / SYNC_UNITS.days, sync_unit: "days" };
  if (seconds % SYNC_UNITS.hours === 0)
    return { sync_every: seconds / SYNC_UNITS.hours, sync_unit: "hours" };
  return { sync_every: Math.max(1, Math.round(seconds / 60)), sync_unit: "minutes" };
}

type RepoLike = {
  name: string;
  url: string;
  is_private: boolean;
  visibility: Visibility;
  sync_interval_s: number;
  auto_sync: boolean;
};

/** Form values for editing an existing repo (credentials are never shown back: left empty). */
export function repoFormFrom(repo: RepoLike): RepoFormValues {
  return {
    ...emptyRepoForm(),
    name: repo.name,
    url: repo.url,
    is_private: repo.is_private,
    visibility: repo.visibility,
    ...syncPeriodOf(repo.sync_interval_s),
    manual_only: !repo.auto_sync,
  };
}

export function validateRepoForm(v: RepoFormValues, mode: "create" | "edit"): FieldErrors {
  const e: FieldErrors = {};
  const name = v.name.trim();
  if (!name) e.name = "Give the repository a name.";
  else if (name.length > 100) e.name = "At most 100 characters.";
  if (mode === "create") {
    const url = v.url.trim();
    if (!url) e.url = "Enter the clone URL.";
    else if (!/^(https?|git|ssh|file):\/\/\S+$|^[\w.-]+@[\w.-]+:\S+$/.test(url))
      e.url = "Use a clone URL such as https://git.example.org/me/unit.git";
    if (v.is_private) {
      if (!v.username.trim()) e.username = "A private repository needs a username.";
      if (!v.password) e.password = "A private repository needs a password or token.";
    }
  } else if (v.is_private && (v.username.trim() !== "") !== (v.password !== "")) {
    // Editing: both empty keeps the stored credentials; one alone is a mistake.
    if (!v.username.trim()) e.username = "Enter the username with the new password.";
    else e.password = "Enter the password or token with the new username.";
  }
  if (!Number.isFinite(v.sync_every) || v.sync_every <= 0)
    e.sync_every = "Enter a positive number.";
  else {
    const s = syncSeconds(v);
    if (s < MIN_SYNC_S) e.sync_every = "At least one minute.";
    else if (s > MAX_SYNC_S) e.sync_every = "At most one year.";
  }
  return e;
}

export type CreateRepoPayload = {
  name: string;
  url: string;
  is_private: boolean;
  credentials?: { username: string; password: string };
  visibility: Visibility;
  sync_interval_s: number;
  auto_sync: boolean;
};

export function createRepoPayload(v: RepoFormValues): CreateRepoPayload {
  const out: CreateRepoPayload = {
    name: v.name.trim(),
    url: v.url.trim(),
    is_private: v.is_private,
    visibility: v.visibility,
    sync_interval_s: syncSeconds(v),
    auto_sync: !v.manual_only,
  };
  if (v.is_private) out.credentials = { username: v.username.trim(), password: v.password };
  return out;
}

export type UpdateRepoPayload = {
  name?: string;
  visibility?: Visibility;
  sync_interval_s?: number;
  auto_sync?: boolean;
  credentials?: { username: string; password: string };
};

/** Only what changed; the clone URL and is_private are never sent (they cannot change). */
export function updateRepoPayload(v: RepoFormValues, before: RepoLike): UpdateRepoPayload {
  const out: UpdateRepoPayload = {};
  if (v.name.trim() !== before.name) out.name = v.name.trim();
  if (v.visibility !== before.visibility) out.visibility = v.visibility;
  const s = syncSeconds(v);
  if (s !== before.sync_interval_s) out.sync_interval_s = s;
  if (!v.manual_only !== before.auto_sync) out.auto_sync = !v.manual_only;
  if (before.is_private && v.username.trim() && v.password)
    out.credentials = { username: v.username.trim(), password: v.password };
  return out;
}
