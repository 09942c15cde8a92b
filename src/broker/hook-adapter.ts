// Aedes hooks are callback style and must call back exactly once; our decisions are
// sometimes synchronous (index lookups) and sometimes async (a token check, a unit
// still loading). This adapter runs either kind and guarantees one call: a thrown
// or rejected decision becomes `onError` (the callers deny), never a second call,
// never an unhandled rejection.

export function runHook<T>(
  decide: () => T | Promise<T>,
  onResult: (value: T) => void,
  onError: (err: unknown) => void,
  onCallbackError: (err: unknown) => void,
): void {
  let called = false;
  const finish = (f: () => void) => {
    if (called) return;
    called = true;
    try {
      f();
    } catch (err) {
      // The broker's own callback threw: report it, do not answer twice.
      onCallbackError(err);
    }
  };
  let value: T | Promise<T>;
  try {
    value = decide();
  } catch (err) {
    finish(() => onError(err));
    return;
  }
  if (value instanceof Promise) {
    value.then(
      (v) => finish(() => onResult(v)),
      (err: unknown) => finish(() => onError(err)),
    );
  } else {
    const v = value;
    finish(() => onResult(v));
  }
}
