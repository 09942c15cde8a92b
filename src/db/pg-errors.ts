// PostgreSQL errors as both drivers report them: postgres.js (`PostgresError`) and
// PGlite (`DatabaseError`) carry the SQLSTATE in `code`, and drizzle wraps either in
// a DrizzleQueryError (whose message and params hold the statement's values: never log it).

const UNIQUE_VIOLATION = "23505";

type PgErrorFields = { code?: unknown; constraint?: unknown; constraint_name?: unknown };

/** The name of the unique constraint the error violated, or null for any other error. */
export function uniqueViolation(err: unknown): string | null {
  for (let e = err, depth = 0; e && typeof e === "object" && depth < 5; depth++) {
    const fields = e as PgErrorFields;
    if (fields.code === UNIQUE_VIOLATION) {
      const name = fields.constraint_name ?? fields.constraint;
      return typeof name === "string" ? name : "";
    }
    e = (e as { cause?: unknown }).cause;
  }
  return null;
}
