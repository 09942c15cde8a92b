import { and, count, desc, eq, ilike, inArray, or, type SQL, sql } from "drizzle-orm";
import type { Principal } from "../access/principal.ts";
import { isAdmin, VISIBILITIES, visibleLevels } from "../access/visibility.ts";
import type { DbLike } from "../db/database.ts";
import { repos, unitNodes, units, type Visibility } from "../db/schema.ts";
import type { RepoRow } from "./repos.schemas.ts";

export async function findRepo(db: DbLike, uuid: string): Promise<RepoRow | undefined> {
  const [r] = await db.select().from(repos).where(eq(repos.uuid, uuid));
  return r;
}

/** The SQL form of canSee(): what the principal may read of the repos table. */
export function visibleReposWhere(p: Principal): SQL | undefined {
  if (isAdmin(p)) return undefined;
  const owner = p.kind === "user" ? p.uuid : p.kind === "unit" ? p.creatorUuid : null;
  const open = inArray(repos.visibility, visibleLevels(p));
  return owner ? or(open, eq(repos.creatorUuid, owner)) : open;
}

export type RepoFilter = {
  visibility?: Visibility | undefined;
  creatorUuid?: string | undefined;
  search?: string | undefined;
  limit: number;
  offset: number;
};

export async function listRepos(db: DbLike, p: Principal, f: RepoFilter) {
  const where = and(
    visibleReposWhere(p),
    f.visibility ? eq(repos.visibility, f.visibility) : undefined,
    f.creatorUuid ? eq(repos.creatorUuid, f.creatorUuid) : undefined,
    f.search ? ilike(repos.name, `%${escapeLike(f.search)}%`) : undefined,
  );
  const [total] = await db.select({ n: count() }).from(repos).where(where);
  const rows = await db
    .select()
    .from(repos)
    .where(where)
    .orderBy(desc(repos.createdAt), repos.uuid)
    .limit(f.limit)
    .offset(f.offset);
  return { count: total?.n ?? 0, rows };
}

function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, (ch) => `\\${ch}`);
}

export async function countUnitsOfRepo(db: DbLike, repoUuid: string): Promise<number> {
  const [row] = await db.select({ n: count() }).from(units).where(eq(units.repoUuid, repoUuid));
  return row?.n ?? 0;
}

/**
 * Lowers every unit of the repo, and every variable of those units, that is more
 * open than `to`: a child is never more open than its parent. Returns the units changed.
 */
export async function clampChildrenOfRepo(
  db: DbLike,
  repoUuid: string,
  to: Visibility,
): Promise<string[]> {
  // VISIBILITIES runs from most to least open: the ones before `to` are more open.
  const moreOpen = VISIBILITIES.slice(0, VISIBILITIES.indexOf(to));
  if (!moreOpen.length) return [];
  const changed = await db
    .update(units)
    .set({ visibility: to, updatedAt: new Date() })
    .where(and(eq(units.repoUuid, repoUuid), inArray(units.visibility, moreOpen)))
    .returning({ uuid: units.uuid });
  const changedNodes = await db
    .update(unitNodes)
    .set({ visibility: to })
    .where(
      and(
        inArray(
          unitNodes.unitUuid,
          db.select({ uuid: units.uuid }).from(units).where(eq(units.repoUuid, repoUuid)),
        ),
        inArray(unitNodes.visibility, moreOpen),
      ),
    )
    .returning({ unitUuid: unitNodes.unitUuid });
  return [...new Set([...changed.map((u) => u.uuid), ...changedNodes.map((n) => n.unitUuid)])];
}

/**
 * Claims the repos due for an automatic sync. The row locks with SKIP LOCKED make
 * several instances sharing one PostgreSQL take disjoint sets, and moving
 * next_sync_at forward inside the same transaction keeps a later tick (here or
 * elsewhere) from claiming them again.
 */
export async function claimDueRepos(db: DbLike, limit: number): Promise<string[]> {
  return db.transaction(async (tx) => {
    const due = await tx
      .select({ uuid: repos.uuid })
      .from(repos)
      .where(and(eq(repos.autoSync, true), sql`${repos.nextSyncAt} <= now()`))
      .orderBy(repos.nextSyncAt)
      .limit(limit)
      .for("update", { skipLocked: true });
    if (!due.length) return [];
    const uuids = due.map((r) => r.uuid);
    await tx
      .update(repos)
      .set({ nextSyncAt: sql`now() + make_interval(secs => ${repos.syncIntervalS})` })
      .where(inArray(repos.uuid, uuids));
    return uuids;
  });
}
