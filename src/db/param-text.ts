/**
 * A query parameter in PostgreSQL's text format, for queries sent around drizzle's
 * drivers (Database.rawRows). drizzle maps values bound to a column already; this covers
 * the ones written straight into a sql`` template too.
 */
export function paramText(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) return value.toISOString();
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}
