// mqemitter (Aedes's message fabric, and mqemitter-redis's in cluster mode) carries at most
// `concurrency` publishes at once and queues the rest. When a publish finishes, its
// `released` takes the next queued one and starts it from inside that call; a publish
// that finishes at once (no subscriber, or every delivery written at once) releases the
// next one from inside that, and so on: one stack frame chain per queued publish. Under
// overload (subscribers' sockets full, the queue tens of thousands long) the first
// release after a drain overflowed the stack and the whole instance exited (bench: the
// routed search's last step, 80 000 msg/s). Upstream knows (mcollina/mqemitter#204, open).
//
// Here the emitter's parallel runner is replaced by one whose release drains the queue in
// a loop: a release from inside the loop only counts itself, and the loop takes the next
// publish. The order is the queue's, as before. A finished publish hands its slot straight
// to the next queued one, so a new publish cannot slip in ahead of the queue meanwhile.
//
// The queue itself was two arrays emptied with shift(), which V8 does in linear time once an
// array is large: 200 000 queued publishes took 1.9 s per array to drain. Here it is a FIFO
// with a moving head (same push / shift / length, all mqemitter uses).

/** push, shift and length in constant time (amortized); the consumed head is cut off now and then. */
export class Fifo<T> {
  private items: Array<T | undefined> = [];
  private head = 0;

  push(item: T): number {
    this.items.push(item);
    return this.length;
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    // Once the consumed part is half of the array, drop it (copying the rest once).
    if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    } else if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    }
    return item;
  }

  get length(): number {
    return this.items.length - this.head;
  }
}

/** The parts of mqemitter's instance this relies on (checked at start). */
type EmitterInternals = {
  current: number;
  _doing: boolean;
  _messageQueue: Pick<Fifo<unknown>, "push" | "shift" | "length">;
  _messageCallbacks: Pick<Fifo<unknown>, "push" | "shift" | "length">;
  _do(message: unknown, callback: unknown): unknown;
  _parallel: ParallelRunner;
  _released: () => void;
};

type Notify = (this: unknown, ...args: unknown[]) => void;
/** mqemitter's call: every matched listener gets (message, done); `done` once all are. */
type ParallelRunner = (that: unknown, listeners: Notify[], message: unknown, done: Notify) => void;

/** Makes `emitter` (a new mqemitter instance) drain its queue without recursion, in linear time. */
export function drainIteratively(emitter: object): void {
  const mq = emitter as EmitterInternals;
  if (
    typeof mq._do !== "function" ||
    typeof mq._parallel !== "function" ||
    !Array.isArray(mq._messageQueue) ||
    mq._messageQueue.length > 0 ||
    !Array.isArray(mq._messageCallbacks) ||
    typeof mq.current !== "number"
  ) {
    throw new Error("mqemitter's internals changed: the installed version is not supported");
  }
  let draining = false;
  /** Queued publishes already given a finished one's slot, not started yet. */
  let handedOver = 0;

  function released(): void {
    if (mq._messageQueue.length <= handedOver) {
      mq.current--;
      if (handedOver === 0) mq._doing = false;
      return;
    }
    handedOver++;
    if (draining) return; // the loop below, further up this stack, starts it
    draining = true;
    try {
      while (handedOver > 0) {
        handedOver--;
        const message = mq._messageQueue.shift();
        const callback = mq._messageCallbacks.shift();
        mq.current--; // _do counts it in again
        mq._do(message, callback);
      }
    } finally {
      draining = false;
    }
  }

  function parallel(that: unknown, listeners: Notify[], message: unknown, done: Notify): void {
    let pending = listeners.length;
    if (pending === 0) {
      done.call(that);
      released();
      return;
    }
    const one = () => {
      if (--pending > 0) return;
      done.call(that);
      released();
    };
    // mqemitter's listeners take (message, done), or just (done).
    for (const listener of listeners) {
      if (listener.length === 1) listener.call(that, one);
      else listener.call(that, message, one);
    }
  }

  mq._messageQueue = new Fifo();
  mq._messageCallbacks = new Fifo();
  mq._parallel = parallel;
  mq._released = released;
}
