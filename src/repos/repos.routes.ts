import { randomUUID } from "node:crypto";
import { createRoute } from "@hono/zod-openapi";
import { eq, sql } from "drizzle-orm";
import type { Principal } from "../access/principal.ts";
import { canManage, canSee, isMoreOpen } from "../access/visibility.ts";
import { encryptJson } from "../crypto/aes-gcm.ts";
import { repos } from "../db/schema.ts";
import { GitError } from "../git/git-store.ts";
import { requireUser } from "../http/auth.ts";
import { conflict, forbidden, notFound, unprocessable } from "../http/errors.ts";
import {
  createRouter,
  errorResponses,
  jsonBody,
  jsonResponse,
  UuidParam,
} from "../http/openapi.ts";
import type { AppDeps } from "../http/types.ts";
import { checkCloneTarget, cloneUrlOptions } from "./clone-url.ts";
import {
  CreateRepoBody,
  ListReposQuery,
  RepoListOut,
  RepoOut,
  type RepoRow,
  toRepoOut,
  UpdateRepoBody,
  VersionsOut,
} from "./repos.schemas.ts";
import { syncRepo, waitForSync } from "./repos.service.ts";
import { clampChildrenOfRepo, countUnitsOfRepo, findRepo, listRepos } from "./repos.store.ts";

const tags = ["repos"];

/** PostgreSQL's foreign_key_violation, wherever the driver wrapper put it. */
function isForeignKeyViolation(err: unknown): boolean {
  for (let e = err; e && typeof e === "object"; e = (e as { cause?: unknown }).cause) {
    if ((e as { code?: unknown }).code === "23503") return true;
  }
  return false;
}

export function reposRoutes(deps: AppDeps) {
  const { config, git } = deps;
  const db = deps.database.db;
  const app = createRouter();

  /** The repo if the caller may see it; otherwise a 404 that does not reveal it exists. */
  async function visibleRepo(p: Principal, uuid: string): Promise<RepoRow> {
    const repo = await findRepo(db, uuid);
    if (!repo || !canSee(p, repo.visibility, repo.creatorUuid)) throw notFound("repo");
    return repo;
  }

  async function managedRepo(p: Principal, uuid: string): Promise<RepoRow> {
    const user = requireUser(p);
    const repo = await visibleRepo(user, uuid);
    if (!canManage(user, repo.creatorUuid))
      throw forbidden("only the creator or an admin may do this");
    return repo;
  }

  app.openapi(
    createRoute({
      method: "post",
      path: "/",
      tags,
      summary: "Register a firmware repository: cloned (every branch and tag) before answering",
      request: { body: jsonBody(CreateRepoBody) },
      responses: {
        201: jsonResponse(RepoOut, "Cloned and registered"),
        ...errorResponses(401, 403, 422),
      },
    }),
    async (c) => {
      const me = requireUser(c.get("principal"));
      const body = c.req.valid("json");
      if (body.is_private && !body.credentials) {
        throw unprocessable("a private repo needs credentials (username and password or token)");
      }
      if (!body.is_private && body.credentials) {
        throw unprocessable("credentials are only kept for private repos; set is_private");
      }
      const target = await checkCloneTarget(body.url, cloneUrlOptions(config));
      const url = target.url;
      const uuid = randomUUID();
      try {
        await git.clone(uuid, target.gitUrl, body.credentials, config.maxRepoSizeBytes, target);
      } catch (err) {
        // The store already removed the partial clone and scrubbed the message.
        if (err instanceof GitError) throw unprocessable(`clone failed: ${err.message}`);
        throw err;
      }
      try {
        const [repo] = await db
          .insert(repos)
          .values({
            uuid,
            creatorUuid: me.uuid,
            name: body.name,
            url,
            isPrivate: body.is_private,
            credentialsEnc: body.credentials
              ? encryptJson(config.encryptKey, body.credentials)
              : null,
            visibility: body.visibility,
            syncIntervalS: body.sync_interval_s,
            autoSync: body.auto_sync,
            syncStatus: "Synced",
            lastSyncedAt: sql`now()`,
            nextSyncAt: sql`now() + make_interval(secs => ${body.sync_interval_s})`,
          })
          .returning();
        if (!repo) throw new Error("insert returned nothing");
        deps.events.emit("repo.created", { repoUuid: repo.uuid });
        return c.json(toRepoOut(repo), 201);
      } catch (err) {
        await git.remove(uuid);
        throw err;
      }
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/",
      tags,
      summary: "List the repos the caller may see",
      request: { query: ListReposQuery },
      responses: { 200: jsonResponse(RepoListOut, "Repos"), ...errorResponses(401, 422) },
    }),
    async (c) => {
      const q = c.req.valid("query");
      const { count, rows } = await listRepos(db, c.get("principal"), {
        visibility: q.visibility,
        creatorUuid: q.creator_uuid,
        search: q.search,
        limit: q.limit,
        offset: q.offset,
      });
      return c.json({ count, repos: rows.map(toRepoOut) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/{uuid}",
      tags,
      summary: "One repo with its sync status",
      request: { params: UuidParam },
      responses: { 200: jsonResponse(RepoOut, "The repo"), ...errorResponses(401, 404) },
    }),
    async (c) => {
      const p = c.get("principal");
      const uuid = c.req.valid("param").uuid;
      // The hot read from memory (src/read-model/); writes below read the database.
      const repo = deps.readModel ? await deps.readModel.repo(uuid) : await findRepo(db, uuid);
      if (!repo || !canSee(p, repo.visibility, repo.creatorUuid)) throw notFound("repo");
      return c.json(toRepoOut(repo), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/{uuid}/versions",
      tags,
      summary: "Branches and tags of the clone, each with its commit",
      request: { params: UuidParam },
      responses: {
        200: jsonResponse(VersionsOut, "Branches and tags"),
        ...errorResponses(401, 404, 409),
      },
    }),
    async (c) => {
      const repo = await visibleRepo(c.get("principal"), c.req.valid("param").uuid);
      if (!(await git.exists(repo.uuid))) {
        throw conflict("the repo has no clone on this instance yet; sync it");
      }
      return c.json(await git.versions(repo.uuid), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "patch",
      path: "/{uuid}",
      tags,
      summary: "Change a repo (creator or admin); the clone URL never changes",
      request: { params: UuidParam, body: jsonBody(UpdateRepoBody) },
      responses: {
        200: jsonResponse(RepoOut, "The repo"),
        ...errorResponses(401, 403, 404, 422),
      },
    }),
    async (c) => {
      const repo = await managedRepo(c.get("principal"), c.req.valid("param").uuid);
      const body = c.req.valid("json");
      if (body.url !== undefined) {
        // Other people's devices are built from this URL's history.
        throw unprocessable("the clone URL can never change; register a new repo instead");
      }
      if (body.is_private !== undefined && body.is_private !== repo.isPrivate) {
        throw unprocessable("is_private cannot change; register a new repo instead");
      }
      if (body.credentials && !repo.isPrivate) {
        throw unprocessable("credentials are only kept for private repos");
      }
      if (body.default_branch !== undefined) {
        const { branches } = await git.versions(repo.uuid).catch(() => ({ branches: [] }));
        if (!branches.some((b) => b.name === body.default_branch)) {
          throw unprocessable(`branch ${body.default_branch} does not exist in the repo`);
        }
      }
      const scheduleChanged = body.sync_interval_s !== undefined || body.auto_sync !== undefined;
      const interval = body.sync_interval_s ?? repo.syncIntervalS;
      const lowered = body.visibility !== undefined && isMoreOpen(repo.visibility, body.visibility);
      const { updated, clampedUnits } = await db.transaction(async (tx) => {
        const [row] = await tx
          .update(repos)
          .set({
            ...(body.name !== undefined ? { name: body.name } : {}),
            ...(body.visibility !== undefined ? { visibility: body.visibility } : {}),
            ...(body.sync_interval_s !== undefined ? { syncIntervalS: body.sync_interval_s } : {}),
            ...(body.auto_sync !== undefined ? { autoSync: body.auto_sync } : {}),
            ...(body.default_branch !== undefined ? { defaultBranch: body.default_branch } : {}),
            ...(body.credentials
              ? { credentialsEnc: encryptJson(config.encryptKey, body.credentials) }
              : {}),
            // A new schedule counts from the last sync, as if it had always been so.
            ...(scheduleChanged
              ? {
                  nextSyncAt: sql`coalesce(${repos.lastSyncedAt}, now()) + make_interval(secs => ${interval})`,
                }
              : {}),
            updatedAt: new Date(),
          })
          .where(eq(repos.uuid, repo.uuid))
          .returning();
        if (!row) throw notFound("repo");
        // A child is never more open than its parent: lower units and variables with it.
        const clamped =
          lowered && body.visibility
            ? await clampChildrenOfRepo(tx, repo.uuid, body.visibility)
            : [];
        return { updated: row, clampedUnits: clamped };
      });
      for (const unitUuid of clampedUnits) {
        deps.events.emit("unit.updated", { unitUuid, versionChanged: false });
      }
      deps.events.emit("repo.updated", { repoUuid: repo.uuid });
      return c.json(toRepoOut(updated), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/{uuid}/sync",
      tags,
      summary:
        "Fetch from the remote now (creator or admin). A failing fetch still answers 200: the repo shows sync_status Error and sync_error",
      request: { params: UuidParam },
      responses: {
        200: jsonResponse(RepoOut, "The repo after the sync"),
        ...errorResponses(401, 403, 404),
      },
    }),
    async (c) => {
      const repo = await managedRepo(c.get("principal"), c.req.valid("param").uuid);
      const synced = await syncRepo(deps, repo.uuid);
      if (!synced) throw notFound("repo");
      return c.json(toRepoOut(synced), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/{uuid}",
      tags,
      summary: "Delete a repo and its clone (creator or admin); refused while units use it",
      request: { params: UuidParam },
      responses: { 204: { description: "Deleted" }, ...errorResponses(401, 403, 404, 409) },
    }),
    async (c) => {
      const repo = await managedRepo(c.get("principal"), c.req.valid("param").uuid);
      const inUse = () => conflict("units use this repo; delete or move those units first");
      if ((await countUnitsOfRepo(db, repo.uuid)) > 0) throw inUse();
      try {
        await db.delete(repos).where(eq(repos.uuid, repo.uuid));
      } catch (err) {
        // A unit created between the count and the delete: the foreign key refuses.
        if (isForeignKeyViolation(err)) throw inUse();
        throw err;
      }
      deps.events.emit("repo.deleted", { repoUuid: repo.uuid });
      await waitForSync(deps, repo.uuid);
      await git.remove(repo.uuid);
      return c.body(null, 204);
    },
  );

  return app;
}
