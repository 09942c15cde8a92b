import { eq } from "drizzle-orm";
import type { Logger } from "pino";
import type { DbLike } from "../db/database.ts";
import { unitNodeEdges, unitNodes, units } from "../db/schema.ts";
import type { GitStore } from "../git/git-store.ts";
import { loadUnitTemplate, type SchemaTemplate } from "../repos/unit-template.ts";
import type { AclSnapshot, NodeEntry, UnitEntry } from "./acl-index.ts";

// Reads what the access index needs from the database and the repositories.

const unitCols = {
  uuid: units.uuid,
  creatorUuid: units.creatorUuid,
  visibility: units.visibility,
  repoUuid: units.repoUuid,
  commit: units.commit,
};
const nodeCols = {
  uuid: unitNodes.uuid,
  unitUuid: unitNodes.unitUuid,
  type: unitNodes.type,
  topicName: unitNodes.topicName,
  visibility: unitNodes.visibility,
  isRewritableInput: unitNodes.isRewritableInput,
};

export type TemplateCache = (repoUuid: string, commit: string) => Promise<SchemaTemplate | null>;

/**
 * Schema templates per (repo, commit): a commit never changes, so each is read from
 * git once. A version that cannot be read yields null (its unit gets no base topics).
 */
export function createTemplateCache(git: GitStore, log: Logger, maxEntries = 2000): TemplateCache {
  const cache = new Map<string, Promise<SchemaTemplate | null>>();
  return (repoUuid, commit) => {
    const key = `${repoUuid}@${commit}`;
    let hit = cache.get(key);
    if (!hit) {
      if (cache.size >= maxEntries) cache.clear();
      hit = loadUnitTemplate(git, repoUuid, commit).then(
        (t) => t.schema,
        (err: unknown) => {
          log.warn(
            { repoUuid, commit, err },
            "mqtt: unit template unreadable; its base topics are denied",
          );
          cache.delete(key);
          return null;
        },
      );
      cache.set(key, hit);
    }
    return hit;
  };
}

async function withTemplates(
  rows: Array<Omit<UnitEntry, "template">>,
  templates: TemplateCache,
): Promise<UnitEntry[]> {
  return Promise.all(
    rows.map(async (u) => ({ ...u, template: await templates(u.repoUuid, u.commit) })),
  );
}

export async function loadAclSnapshot(db: DbLike, templates: TemplateCache): Promise<AclSnapshot> {
  const [unitRows, nodes, edges] = await Promise.all([
    db.select(unitCols).from(units),
    db.select(nodeCols).from(unitNodes),
    db
      .select({
        uuid: unitNodeEdges.uuid,
        outputUuid: unitNodeEdges.outputUuid,
        inputUuid: unitNodeEdges.inputUuid,
      })
      .from(unitNodeEdges),
  ]);
  return { units: await withTemplates(unitRows, templates), nodes, edges };
}

/** One unit with its variables, or null when it no longer exists. */
export async function loadAclUnit(
  db: DbLike,
  templates: TemplateCache,
  unitUuid: string,
): Promise<{ unit: UnitEntry; nodes: NodeEntry[] } | null> {
  const [rows, nodes] = await Promise.all([
    db.select(unitCols).from(units).where(eq(units.uuid, unitUuid)),
    db.select(nodeCols).from(unitNodes).where(eq(unitNodes.unitUuid, unitUuid)),
  ]);
  const [row] = rows;
  if (!row) return null;
  const [unit] = await withTemplates([row], templates);
  return unit ? { unit, nodes } : null;
}
