import { randomUUID } from "node:crypto";
import { and, count, eq, inArray, sql } from "drizzle-orm";
import type { DbLike } from "../db/database.ts";
import {
  type FederationMode,
  federationFollowers,
  federationGrants,
  federationPeers,
  federationRemoteEdges,
  federationSettings,
  type RemoteEdgeStatus,
  unitNodes,
  units,
} from "../db/schema.ts";

// Queries of the federation tables. Domains are always normalized (lowercase host[:port]).

export type FederationSettings = { enabled: boolean; mode: FederationMode };
export type PeerRow = typeof federationPeers.$inferSelect;
export type FollowerRow = typeof federationFollowers.$inferSelect;
export type RemoteEdgeRow = typeof federationRemoteEdges.$inferSelect;
export type GrantRow = typeof federationGrants.$inferSelect;

export async function readSettings(db: DbLike): Promise<FederationSettings> {
  const [row] = await db.select().from(federationSettings).where(eq(federationSettings.id, 1));
  return row ? { enabled: row.enabled, mode: row.mode } : { enabled: true, mode: "Open" };
}

export async function writeSettings(db: DbLike, s: FederationSettings): Promise<void> {
  await db
    .insert(federationSettings)
    .values({ id: 1, ...s })
    .onConflictDoUpdate({ target: federationSettings.id, set: { ...s, updatedAt: new Date() } });
}

export async function listPeers(db: DbLike): Promise<PeerRow[]> {
  return db.select().from(federationPeers).orderBy(federationPeers.domain);
}

export async function setPeerFlags(
  db: DbLike,
  domain: string,
  flags: { blocked?: boolean; allowed?: boolean },
): Promise<PeerRow> {
  const [row] = await db
    .insert(federationPeers)
    .values({ domain, blocked: flags.blocked ?? false, allowed: flags.allowed ?? false })
    // `domain` too: an empty patch must still update (and return) the row, not fail.
    .onConflictDoUpdate({ target: federationPeers.domain, set: { domain, ...flags } })
    .returning();
  if (!row) throw new Error("upsert returned nothing");
  return row;
}

export async function touchPeer(db: DbLike, domain: string): Promise<void> {
  await db
    .insert(federationPeers)
    .values({ domain, lastContactAt: new Date() })
    .onConflictDoUpdate({ target: federationPeers.domain, set: { lastContactAt: new Date() } });
}

export async function recordPeerError(db: DbLike, domain: string, error: string): Promise<void> {
  const now = new Date();
  await db
    .insert(federationPeers)
    .values({ domain, deliveryErrors: 1, lastError: error, lastErrorAt: now })
    .onConflictDoUpdate({
      target: federationPeers.domain,
      set: {
        deliveryErrors: sql`${federationPeers.deliveryErrors} + 1`,
        lastError: error,
        lastErrorAt: now,
      },
    });
}

/** Followers per domain (theirs of our outputs) and remote edges per domain (ours of theirs). */
export async function countsByDomain(db: DbLike) {
  const [followers, edges] = await Promise.all([
    db
      .select({ domain: federationFollowers.domain, n: count() })
      .from(federationFollowers)
      .groupBy(federationFollowers.domain),
    db
      .select({ domain: federationRemoteEdges.domain, n: count() })
      .from(federationRemoteEdges)
      .groupBy(federationRemoteEdges.domain),
  ]);
  return {
    followers: new Map(followers.map((r) => [r.domain, r.n])),
    following: new Map(edges.map((r) => [r.domain, r.n])),
  };
}

// --- followers (B side) ---

export async function allFollowers(db: DbLike): Promise<FollowerRow[]> {
  return db.select().from(federationFollowers);
}

export async function insertFollower(
  db: DbLike,
  f: Omit<FollowerRow, "uuid" | "createdAt">,
): Promise<FollowerRow | null> {
  const [row] = await db
    .insert(federationFollowers)
    .values({ uuid: randomUUID(), ...f })
    .onConflictDoNothing()
    .returning();
  return row ?? null;
}

export async function deleteFollowers(db: DbLike, followIds: string[]): Promise<void> {
  if (!followIds.length) return;
  await db.delete(federationFollowers).where(inArray(federationFollowers.followId, followIds));
}

// --- remote edges (A side) ---

export async function allRemoteEdges(db: DbLike): Promise<RemoteEdgeRow[]> {
  return db.select().from(federationRemoteEdges);
}

export async function findRemoteEdge(db: DbLike, uuid: string): Promise<RemoteEdgeRow | undefined> {
  const [row] = await db
    .select()
    .from(federationRemoteEdges)
    .where(eq(federationRemoteEdges.uuid, uuid));
  return row;
}

export async function findRemoteEdgeByFollow(db: DbLike, followId: string) {
  const [row] = await db
    .select()
    .from(federationRemoteEdges)
    .where(eq(federationRemoteEdges.followId, followId));
  return row;
}

export async function insertRemoteEdge(
  db: DbLike,
  e: Omit<
    RemoteEdgeRow,
    "createdAt" | "updatedAt" | "lastSequence" | "status" | "reason" | "remoteTopic"
  >,
): Promise<RemoteEdgeRow | null> {
  const [row] = await db.insert(federationRemoteEdges).values(e).onConflictDoNothing().returning();
  return row ?? null;
}

export async function updateRemoteEdge(
  db: DbLike,
  uuid: string,
  set: { status?: RemoteEdgeStatus; reason?: string | null; remoteTopic?: string | null },
): Promise<RemoteEdgeRow | undefined> {
  const [row] = await db
    .update(federationRemoteEdges)
    .set({ ...set, updatedAt: new Date() })
    .where(eq(federationRemoteEdges.uuid, uuid))
    .returning();
  return row;
}

export async function deleteRemoteEdges(db: DbLike, uuids: string[]): Promise<RemoteEdgeRow[]> {
  if (!uuids.length) return [];
  return db
    .delete(federationRemoteEdges)
    .where(inArray(federationRemoteEdges.uuid, uuids))
    .returning();
}

/** The last relayed sequence of several remote outputs, in one statement (never lowered). */
export async function saveLastSequences(
  db: DbLike,
  rows: Array<[remoteActor: string, seq: number]>,
) {
  if (!rows.length) return;
  const values = sql.join(
    rows.map(([actor, seq]) => sql`(${actor}::text, ${seq}::bigint)`),
    sql`, `,
  );
  await db.execute(sql`
    update federation_remote_edges e set last_sequence = v.seq
    from (values ${values}) as v(actor, seq)
    where e.remote_actor = v.actor and e.last_sequence < v.seq`);
}

/** Active remote edges into the given unit's inputs, oldest first (for schema.json). */
export async function activeRemoteEdgesIntoUnit(db: DbLike, unitUuid: string) {
  return db
    .select({
      inputUuid: federationRemoteEdges.inputUuid,
      topic: federationRemoteEdges.remoteTopic,
    })
    .from(federationRemoteEdges)
    .innerJoin(unitNodes, eq(unitNodes.uuid, federationRemoteEdges.inputUuid))
    .where(and(eq(unitNodes.unitUuid, unitUuid), eq(federationRemoteEdges.status, "Active")))
    .orderBy(federationRemoteEdges.createdAt, federationRemoteEdges.uuid);
}

// --- grants ---

export async function grantsOfNode(db: DbLike, nodeUuid: string): Promise<GrantRow[]> {
  return db.select().from(federationGrants).where(eq(federationGrants.nodeUuid, nodeUuid));
}

export async function insertGrant(db: DbLike, g: Omit<GrantRow, "uuid" | "createdAt">) {
  const [row] = await db
    .insert(federationGrants)
    .values({ uuid: randomUUID(), ...g })
    .returning();
  if (!row) throw new Error("insert returned nothing");
  return row;
}

export async function findGrant(db: DbLike, uuid: string): Promise<GrantRow | undefined> {
  const [row] = await db.select().from(federationGrants).where(eq(federationGrants.uuid, uuid));
  return row;
}

export async function deleteGrant(db: DbLike, uuid: string): Promise<void> {
  await db.delete(federationGrants).where(eq(federationGrants.uuid, uuid));
}

// --- local entities as federation sees them ---

export async function findNodeAndUnit(db: DbLike, nodeUuid: string) {
  const [row] = await db
    .select({ node: unitNodes, unit: units })
    .from(unitNodes)
    .innerJoin(units, eq(units.uuid, unitNodes.unitUuid))
    .where(eq(unitNodes.uuid, nodeUuid));
  return row;
}

export async function findUnit(db: DbLike, by: { uuid?: string; name?: string }) {
  const where = by.uuid ? eq(units.uuid, by.uuid) : eq(units.name, by.name ?? "");
  const [row] = await db.select().from(units).where(where);
  return row;
}

export async function countUnits(db: DbLike): Promise<number> {
  const [row] = await db.select({ n: count() }).from(units);
  return row?.n ?? 0;
}
