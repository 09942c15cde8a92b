/** The p-th percentile (0..100) of the values, nearest-rank; null when there are none. */
export function percentile(values: ArrayLike<number>, p: number): number | null {
  const n = values.length;
  if (n === 0) return null;
  const sorted = Float64Array.from(values).sort();
  const rank = Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1));
  return sorted[rank] as number;
}

/** Milliseconds rounded for a table: 2 decimals under 10 ms, 1 under 100, integers above. */
export function ms(v: number | null): number | null {
  if (v === null) return null;
  if (v < 10) return Math.round(v * 100) / 100;
  if (v < 100) return Math.round(v * 10) / 10;
  return Math.round(v);
}

/** a / b rounded to one decimal (null when either is missing or b is 0). */
export function ratio(a: number | null, b: number | null): number | null {
  if (a === null || b === null || b === 0) return null;
  return Math.round((a / b) * 10) / 10;
}

export const sleep = (msec: number) => new Promise<void>((r) => setTimeout(r, msec));
