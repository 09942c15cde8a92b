// What the unit pop-up shows from the device's last state message
// (device-protocol §4: ifconfig, millis, mem_free, mem_alloc, freq, statvfs,
// pu_commit_version — any of them may be missing or of the wrong type).
//
// `millis` is the device's clock, not an uptime: the published clients send epoch
// milliseconds once they have the time (NTP on MicroPython, time.time() on Python),
// and MicroPython's ticks_ms — milliseconds since boot — before that. Read as a
// duration, an epoch shows as "20787d 17h".

export type UnitStateView = {
  online: boolean;
  lastSeen: string | null;
  ip: string | null;
  memory: string | null;
  uptime: string | null;
  /** The device's wall clock (epoch ms) when `millis` is one, else null. */
  deviceClock: number | null;
  commit: string | null;
};

/** 2001-09-09 in epoch ms: no device counts milliseconds since boot this high (ticks_ms wraps at 2^30). */
const EPOCH_MS_FLOOR = 1e12;

/** Without a state within this many intervals a unit counts as offline. */
const ONLINE_INTERVALS = 2.5;

function num(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function formatDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

export function unitStateView(
  unit: {
    last_state?: unknown;
    last_seen_datetime: string | null;
    current_commit: string | null;
    /** The server's word (a live MQTT connection), kept current by the live channel. */
    is_online?: boolean;
  },
  now: number,
  stateIntervalS = 60,
): UnitStateView {
  const st = (
    typeof unit.last_state === "object" && unit.last_state !== null ? unit.last_state : {}
  ) as Record<string, unknown>;
  const seen = unit.last_seen_datetime ? Date.parse(unit.last_seen_datetime) : Number.NaN;
  const ifconfig = Array.isArray(st.ifconfig) ? st.ifconfig : [];
  const ip = typeof ifconfig[0] === "string" ? ifconfig[0] : null;
  const free = num(st.mem_free);
  const alloc = num(st.mem_alloc);
  const millis = num(st.millis);
  let memory: string | null = null;
  if (free !== null && alloc !== null)
    memory = `${formatBytes(free)} free of ${formatBytes(free + alloc)}`;
  else if (free !== null) memory = `${formatBytes(free)} free`;
  const commit =
    unit.current_commit ?? (typeof st.pu_commit_version === "string" ? st.pu_commit_version : null);
  return {
    online:
      unit.is_online ??
      (Number.isFinite(seen) && now - seen < ONLINE_INTERVALS * stateIntervalS * 1000),
    lastSeen: unit.last_seen_datetime,
    ip,
    memory,
    uptime: millis !== null && millis < EPOCH_MS_FLOOR ? formatDuration(millis) : null,
    deviceClock: millis !== null && millis >= EPOCH_MS_FLOOR ? millis : null,
    commit,
  };
}

export function shortCommit(c: string | null | undefined): string {
  return c ? c.slice(0, 8) : "—";
}

export function timeAgo(iso: string | null, now: number): string {
  if (!iso) return "never";
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return iso;
  const s = Math.round((now - t) / 1000);
  if (s < 5) return "just now";
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(t).toLocaleString();
}
