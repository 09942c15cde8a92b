export type Semaphore = {
  /** Runs the task once a slot is free; the slot is freed when it settles. */
  run<T>(task: () => Promise<T>): Promise<T>;
  /**
   * Takes a slot until the returned release is called: for work that outlives one
   * promise, such as a response body still being sent. Release is idempotent.
   */
  acquire(): Promise<() => void>;
};

/** At most `max` holders at once; the others wait in arrival order. */
export function createSemaphore(max: number): Semaphore {
  let active = 0;
  const waiting: Array<() => void> = [];
  const acquire = async (): Promise<() => void> => {
    if (active < max) active++;
    // A releasing holder hands its slot over directly, so `active` stays counted.
    else await new Promise<void>((resolve) => waiting.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = waiting.shift();
      if (next) next();
      else active--;
    };
  };
  return {
    acquire,
    async run(task) {
      const release = await acquire();
      try {
        return await task();
      } finally {
        release();
      }
    },
  };
}
