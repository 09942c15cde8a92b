import type { DomainEvents } from "../events.ts";
import type { AppDeps } from "../http/types.ts";
import { findUnit } from "../units/units.store.ts";
import { type CommandName, sendCommand } from "./commands.service.ts";

// Commands the instance sends on its own when something a device downloaded changes:
// SchemaUpdate when edges into a unit (or its variables) change, EnvUpdate when its
// env is edited or its token rotated. One change often emits many events (deleting a
// unit removes each edge); they are coalesced per unit and command over a short delay,
// so a device downloads its schema once, not once per edge.

export type CommandListeners = { stop(): Promise<void> };

type ListenerDeps = Pick<AppDeps, "config" | "database" | "events" | "log" | "git" | "broker">;

export function startCommandListeners(
  deps: ListenerDeps,
  opts: { coalesceMs?: number } = {},
): CommandListeners {
  const { events, log } = deps;
  const coalesceMs = opts.coalesceMs ?? 50;
  const queued = new Map<string, Set<CommandName>>();
  const inFlight = new Set<Promise<void>>();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  async function deliver(unitUuid: string, command: CommandName): Promise<void> {
    const unit = await findUnit(deps.database.db, unitUuid);
    // Deleted meanwhile (a unit deletion emits edge.deleted for its own inputs too).
    if (!unit) return;
    const outcome = await sendCommand(deps, unit, command);
    log.debug({ unitUuid, command, outcome }, "device command");
  }

  function flush(): void {
    timer = undefined;
    const batch = [...queued];
    queued.clear();
    for (const [unitUuid, commands] of batch) {
      for (const command of commands) {
        const p = deliver(unitUuid, command)
          .catch((err: unknown) =>
            log.warn({ err, unitUuid, command }, "sending a device command failed"),
          )
          .finally(() => inFlight.delete(p));
        inFlight.add(p);
      }
    }
  }

  function queue(unitUuid: string, command: CommandName): void {
    if (stopped) return;
    // Cluster mode: the process where the change happened sends the command (the broker's
    // fabric carries it to the device wherever it is connected); the others do not.
    if (current && events.fromOtherProcess(current)) return;
    let set = queued.get(unitUuid);
    if (!set) {
      set = new Set();
      queued.set(unitUuid, set);
    }
    set.add(command);
    timer ??= setTimeout(flush, coalesceMs);
  }

  const wrappers = new Map<string, (e: object) => void>();
  const handlers: { [K in keyof DomainEvents]?: (...args: DomainEvents[K]) => void } = {
    "edge.created": (e) => queue(e.inputUnitUuid, "SchemaUpdate"),
    "edge.deleted": (e) => queue(e.inputUnitUuid, "SchemaUpdate"),
    "unit-nodes.changed": (e) => queue(e.unitUuid, "SchemaUpdate"),
    "federation.remote-edges.changed": (e) => {
      for (const unitUuid of e.unitUuids) queue(unitUuid, "SchemaUpdate");
    },
    "unit.env-updated": (e) => queue(e.unitUuid, "EnvUpdate"),
    // The old token is refused at once; a device that still gets this (another
    // session, or a client that re-reads env with a fresh token) knows to reload.
    "unit.token-rotated": (e) => queue(e.unitUuid, "EnvUpdate"),
  };
  // The event being handled (queue() asks where it came from).
  let current: object | undefined;
  for (const [name, handle] of Object.entries(handlers)) {
    const wrapped = (e: object) => {
      current = e;
      try {
        (handle as (e: object) => void)(e);
      } finally {
        current = undefined;
      }
    };
    wrappers.set(name, wrapped);
    // Cast: EventEmitter's listener type does not narrow through the mapped keys.
    events.on(name as never, wrapped as never);
  }

  return {
    async stop() {
      stopped = true;
      for (const [name, wrapped] of wrappers) events.off(name as never, wrapped as never);
      // What was queued still goes out: the broker closes after this.
      if (timer) {
        clearTimeout(timer);
        flush();
      }
      await Promise.all([...inFlight]);
    },
  };
}
