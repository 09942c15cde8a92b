import type { Logger } from "pino";
import type { Sql } from "postgres";
import { CLUSTER_ROLES, type ClusterRole, type RoleWorker } from "./roles.ts";

// Leadership by PostgreSQL session advisory locks, one per role, on a connection of its
// own: the lock lives exactly as long as that session, so a process that dies (even
// kill -9: the kernel closes its socket and the server ends the session) frees its
// roles at once, and the next campaign of a survivor (every CAMPAIGN_MS) takes them.
// A role is checked every tick too: a connection that was lost and reconnected holds
// no lock any more, and its workers stop before someone else's start.

const CAMPAIGN_MS = 2000;
/** First key of every role lock: a fixed "PE" tag, so our locks are easy to find in pg_locks. */
const LOCK_CLASS = 0x5045;

export type Leadership = {
  /** Registers a role's worker (before start()). */
  register(role: ClusterRole, worker: RoleWorker): void;
  start(): Promise<void>;
  /** The roles this process holds now. */
  held(): ClusterRole[];
  holds(role: ClusterRole): boolean;
  /** Stops the workers and frees the roles. */
  stop(): Promise<void>;
};

type Slot = { role: ClusterRole; worker: RoleWorker; held: boolean };

/** One process: it holds every role from the start. */
export function createLocalLeadership(log: Logger): Leadership {
  const slots: Slot[] = [];
  return {
    register(role, worker) {
      slots.push({ role, worker, held: false });
    },
    async start() {
      for (const s of slots) {
        await s.worker.start();
        s.held = true;
      }
    },
    held: () => slots.filter((s) => s.held).map((s) => s.role),
    holds: (role) => slots.some((s) => s.role === role && s.held),
    async stop() {
      for (const s of [...slots].reverse()) {
        if (!s.held) continue;
        s.held = false;
        await Promise.resolve(s.worker.stop()).catch((err: unknown) =>
          log.error({ err, role: s.role }, "a worker failed to stop"),
        );
      }
    },
  };
}

export async function createLockLeadership(opts: {
  databaseUrl: string;
  log: Logger;
  /** Called after a role was taken or lost (presence publishes the new list). */
  onChange?: () => void;
}): Promise<Leadership> {
  const { log } = opts;
  const { default: postgres } = await import("postgres");
  // max 1: every lock query runs in the same session, the one that holds the locks.
  const sql: Sql = postgres(opts.databaseUrl, { max: 1, onnotice: () => {}, idle_timeout: 0 });
  const slots: Slot[] = [];
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  let ticking: Promise<void> | null = null;

  const keyOf = (role: ClusterRole) => CLUSTER_ROLES.indexOf(role);

  async function take(slot: Slot) {
    const [row] = await sql<{ ok: boolean }[]>`
      select pg_try_advisory_lock(${LOCK_CLASS}::int, ${keyOf(slot.role)}::int) as ok`;
    if (!row?.ok || stopped) {
      if (row?.ok) await release(slot);
      return;
    }
    slot.held = true;
    log.info({ role: slot.role }, "cluster: this process took a role");
    try {
      await slot.worker.start();
    } catch (err) {
      log.error({ err, role: slot.role }, "cluster: a role's worker failed to start; freeing it");
      slot.held = false;
      await release(slot);
    }
    opts.onChange?.();
  }

  async function release(slot: Slot) {
    await sql`select pg_advisory_unlock(${LOCK_CLASS}::int, ${keyOf(slot.role)}::int)`.catch(
      () => {},
    );
  }

  async function drop(slot: Slot, why: string) {
    if (!slot.held) return;
    slot.held = false;
    // Giving roles up at a clean stop is expected; losing one otherwise is worth a warning.
    (why === "stopping" ? log.info : log.warn).call(
      log,
      { role: slot.role, why },
      "cluster: this process gave up a role",
    );
    await Promise.resolve(slot.worker.stop()).catch((err: unknown) =>
      log.error({ err, role: slot.role }, "a worker failed to stop"),
    );
    opts.onChange?.();
  }

  async function tick() {
    let locked: Set<number>;
    try {
      // The locks this session really holds (none after a reconnect).
      const rows = await sql<{ objid: number }[]>`
        select objid::int as objid from pg_locks
        where locktype = 'advisory' and pid = pg_backend_pid() and granted
          and classid = ${LOCK_CLASS}::int`;
      locked = new Set(rows.map((r) => r.objid));
    } catch (err) {
      // The database is unreachable: whoever reaches it may take our roles.
      for (const slot of slots) await drop(slot, `database unreachable: ${String(err)}`);
      return;
    }
    for (const slot of slots) {
      if (stopped) return;
      if (slot.held && !locked.has(keyOf(slot.role))) await drop(slot, "lock lost");
      if (!slot.held) await take(slot).catch(() => {});
    }
  }

  function schedule() {
    if (stopped) return;
    timer = setTimeout(() => {
      ticking = tick()
        .catch((err: unknown) => log.error({ err }, "cluster: leadership campaign failed"))
        .finally(() => {
          ticking = null;
          schedule();
        });
    }, CAMPAIGN_MS);
    timer.unref();
  }

  return {
    register(role, worker) {
      slots.push({ role, worker, held: false });
    },
    async start() {
      ticking = tick().finally(() => {
        ticking = null;
      });
      await ticking;
      schedule();
    },
    held: () => slots.filter((s) => s.held).map((s) => s.role),
    holds: (role) => slots.some((s) => s.role === role && s.held),
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await ticking;
      for (const slot of [...slots].reverse()) {
        if (!slot.held) continue;
        await drop(slot, "stopping");
        await release(slot);
      }
      await sql.end({ timeout: 2 });
    },
  };
}
