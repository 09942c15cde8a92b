import { and, eq, isNotNull, isNull, or } from "drizzle-orm";
import type { DbLike } from "../db/database.ts";
import { units } from "../db/schema.ts";

// The OTA columns of a unit: update_status, update_error, update_requested_at.
// A request is identified by its update_requested_at: an outcome is written only
// while that request is still the current one, so a late timeout never overwrites
// a newer request (or its success). The status is always about the unit's current
// target (units.commit): moving the target starts it afresh (retargetedStatus).

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

/**
 * The OTA columns once the unit's target moved to `commit` (written with the move).
 * An outcome of the old target says nothing about this one, and a pending request
 * for it is void; the device already running `commit` is a Success. Otherwise no
 * status, with update_requested_at marking the move: the device reporting the target
 * later makes it a Success (markReachedTarget, listAwaitingTarget).
 */
export function retargetedStatus(currentCommit: string | null, commit: string, at: Date) {
  return {
    updateStatus: currentCommit === commit ? ("Success" as const) : null,
    updateError: null,
    updateRequestedAt: at,
  };
}

/**
 * The device reported its target outside a request (after an Error or a target move):
 * Success. False when the target or the status changed meanwhile.
 */
export async function markReachedTarget(
  db: DbLike,
  unitUuid: string,
  commit: string,
): Promise<boolean> {
  const rows = await db
    .update(units)
    .set({ updateStatus: "Success", updateError: null })
    .where(
      and(
        eq(units.uuid, unitUuid),
        eq(units.commit, commit),
        or(eq(units.updateStatus, "Error"), isNull(units.updateStatus)),
        isNotNull(units.updateRequestedAt),
      ),
    )
    .returning({ uuid: units.uuid });
  return rows.length > 0;
}

/** Units whose device has not reported their target since an Error or a target move. */
export async function listAwaitingTarget(db: DbLike) {
  return db
    .select({ uuid: units.uuid, commit: units.commit, currentCommit: units.currentCommit })
    .from(units)
    .where(
      and(
        isNotNull(units.updateRequestedAt),
        or(eq(units.updateStatus, "Error"), isNull(units.updateStatus)),
      ),
    );
}
