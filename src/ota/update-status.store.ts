import { and, eq } from "drizzle-orm";
import type { DbLike } from "../db/database.ts";
import { units } from "../db/schema.ts";

// The OTA columns of a unit: update_status, update_error, update_requested_at.
// A request is identified by its update_requested_at: an outcome is written only
// while that request is still the current one, so a late timeout never overwrites
// a newer request (or its success).

export async function markRequestSent(db: DbLike, unitUuid: string, at: Date): Promise<void> {
  await db
    .update(units)
    .set({ updateStatus: "RequestSent", updateError: null, updateRequestedAt: at })
    .where(eq(units.uuid, unitUuid));
}

/**
 * Records Success or Error for the request made at `requestedAt`; false when it is no
 * longer current. A Success also records the running commit at once (the broker's
 * ingest writes it too, batched), so the two never disagree in an answer.
 */
export async function markFinished(
  db: DbLike,
  unitUuid: string,
  requestedAt: Date,
  outcome: { status: "Success"; commit: string } | { status: "Error"; error: string },
): Promise<boolean> {
  const rows = await db
    .update(units)
    .set(
      outcome.status === "Success"
        ? { updateStatus: "Success", updateError: null, currentCommit: outcome.commit }
        : { updateStatus: "Error", updateError: outcome.error },
    )
    .where(
      and(
        eq(units.uuid, unitUuid),
        eq(units.updateStatus, "RequestSent"),
        eq(units.updateRequestedAt, requestedAt),
      ),
    )
    .returning({ uuid: units.uuid });
  return rows.length > 0;
}

/** An Error that needs no request (the version could not be set, the topic is not listed). */
export async function markError(db: DbLike, unitUuid: string, error: string): Promise<void> {
  await db
    .update(units)
    .set({ updateStatus: "Error", updateError: error, updateRequestedAt: new Date() })
    .where(eq(units.uuid, unitUuid));
}

/** Units waiting for their state after an Update (re-armed when the instance starts). */
export async function listRequestSent(db: DbLike) {
  return db
    .select({
      uuid: units.uuid,
      commit: units.commit,
      currentCommit: units.currentCommit,
      envEnc: units.envEnc,
      requestedAt: units.updateRequestedAt,
    })
    .from(units)
    .where(eq(units.updateStatus, "RequestSent"));
}
