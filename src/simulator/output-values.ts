// Values a simulated unit publishes on its outputs when the user gives none: a
// temperature-like random walk for names that say so, a counter for the rest.

export type OutputGenerator = (name: string, tick: number) => string;

export function defaultGenerator(): OutputGenerator {
  const temps = new Map<string, number>();
  return (name, tick) => {
    if (/temp/i.test(name)) {
      const prev = temps.get(name) ?? 21.5;
      const next = Math.min(40, Math.max(-10, prev + (Math.random() - 0.5)));
      temps.set(name, next);
      return next.toFixed(2);
    }
    return String(tick);
  };
}

/** `name=value` pairs of the CLI (`--output relay=1`); the value may contain "=". */
export function parseOutputPairs(pairs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf("=");
    if (at <= 0) throw new Error(`--output expects name=value, got ${JSON.stringify(pair)}`);
    out[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return out;
}
