// The repo sync lock: every change to the clones directory (clone, fetch, remove)
// runs as a "writer"; a backup takes the gate exclusively, so it copies clones that
// no git process is changing. One gate per directory, shared by every git store of
// the process (the standard repos' trusted store writes the same clones).

export type WriteGate = {
  /** Runs a change to the clones; waits while a snapshot holds the gate. */
  write<T>(fn: () => Promise<T>): Promise<T>;
  /** Waits for the changes in flight, holds new ones back while `fn` runs. */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
};

const gates = new Map<string, WriteGate>();

export function writeGateFor(dir: string): WriteGate {
  let gate = gates.get(dir);
  if (!gate) {
    gate = createWriteGate();
    gates.set(dir, gate);
  }
  return gate;
}

function createWriteGate(): WriteGate {
  let writers = 0;
  let idle: (() => void) | undefined;
  /** Settles when the current exclusive holder is done; undefined when none. */
  let held: Promise<void> | undefined;
  return {
    async write(fn) {
      while (held) await held;
      writers++;
      try {
        return await fn();
      } finally {
        writers--;
        if (writers === 0) idle?.();
      }
    },
    async exclusive(fn) {
      while (held) await held;
      let release = () => {};
      held = new Promise((resolve) => {
        release = resolve;
      });
      try {
        if (writers > 0) await new Promise<void>((resolve) => (idle = resolve));
        idle = undefined;
        return await fn();
      } finally {
        held = undefined;
        release();
      }
    },
  };
}
