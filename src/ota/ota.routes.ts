import { createRoute, z } from "@hono/zod-openapi";
import { and, asc, eq } from "drizzle-orm";
import { canSee, isAdmin } from "../access/visibility.ts";
import { units } from "../db/schema.ts";
import { requireUser } from "../http/auth.ts";
import { HttpError, notFound, unprocessable } from "../http/errors.ts";
import { createRouter, errorResponses, jsonResponse, UuidParam } from "../http/openapi.ts";
import type { AppDeps } from "../http/types.ts";
import type { VersionTarget } from "../units/unit-version.service.ts";
import { loadManagedUnit } from "../units/units.access.ts";
import { UnitOut } from "../units/units.schemas.ts";
import { serializeUnits } from "../units/units.service.ts";
import { findRepo, type UnitRow } from "../units/units.store.ts";
import {
  JobParams,
  MassUpdateBody,
  toUpdateJobOut,
  UnitUpdateBody,
  UpdateJobOut,
} from "./ota.schemas.ts";
import { otaOf } from "./ota.service.ts";
import type { UpdateJob } from "./update-jobs.ts";

// Firmware updates a user asks for (device-protocol §7): one unit to a chosen version,
// or every unit of a repo in waves. Automatic updates (the default branch moved) need
// no route: the OTA service reacts to repo.synced.

const tags = ["ota"];

const optionalJson = <T extends z.ZodType>(schema: T) => ({
  required: false,
  content: { "application/json": { schema } },
});

/** The body's version choice merged with the unit's; null = re-send the current target. */
function targetFor(unit: UnitRow, body: z.infer<typeof UnitUpdateBody>): VersionTarget | null {
  if (body.follow_repo) {
    return { followRepo: true, branch: body.branch, commit: body.commit, tag: body.tag };
  }
  if (body.commit || body.tag) {
    return {
      followRepo: false,
      branch: body.branch ?? unit.branch,
      commit: body.commit,
      tag: body.tag,
    };
  }
  if (body.branch) throw unprocessable("a branch needs a commit or a tag");
  // follow_repo: false alone pins the version the unit has now.
  if (body.follow_repo === false && unit.followRepo) {
    return { followRepo: false, branch: unit.branch, commit: unit.commit };
  }
  return null;
}

export function unitUpdateRoutes(deps: AppDeps) {
  const db = deps.database.db;
  const app = createRouter();

  app.openapi(
    createRoute({
      method: "post",
      path: "/{uuid}/update",
      tags,
      summary:
        "Update a unit's firmware: set its version (optional) and send it Update (creator or admin)",
      description:
        "Without a body (or with {}) the unit's current target is sent again. With commit or tag " +
        "(and optionally branch) the unit is pinned to that version; with follow_repo true it follows " +
        "the repo's default branch. The variables are re-synced for the new version, then " +
        '{"COMMAND":"Update","PU_COMMIT_VERSION":"<sha>"} is published and the unit is ' +
        "RequestSent until it reports the sha (Success) or 2 × PU_STATE_SEND_INTERVAL passes (Error).",
      request: { params: UuidParam, body: optionalJson(UnitUpdateBody) },
      responses: {
        202: jsonResponse(UnitOut, "Update sent; the unit is RequestSent"),
        ...errorResponses(401, 403, 404, 409, 422),
        503: { description: "The MQTT broker could not publish (the unit is marked Error)" },
      },
    }),
    async (c) => {
      const user = requireUser(c.get("principal"));
      const body = UnitUpdateBody.parse(c.req.valid("json") ?? {});
      const unit = await loadManagedUnit(db, user, c.req.valid("param").uuid);
      const result = await otaOf(deps).updateUnit(unit.uuid, targetFor(unit, body));
      if (result.status === "Error") {
        if (result.reason === "not-listed") throw unprocessable(result.error);
        throw new HttpError(503, result.error);
      }
      const updated = await loadManagedUnit(db, user, unit.uuid);
      const [out] = await serializeUnits(deps, user, [updated]);
      return c.json(out as z.infer<typeof UnitOut>, 202);
    },
  );

  return app;
}

export function repoUpdateRoutes(deps: AppDeps) {
  const db = deps.database.db;
  const app = createRouter();

  app.openapi(
    createRoute({
      method: "post",
      path: "/{uuid}/update_units",
      tags,
      summary: "Update every unit of the repo in waves (admin: all units; others: their own)",
      description:
        "Units following the repo move to its default branch head; pinned units get their own " +
        "target again. At most max_in_flight units wait for their state at once; no more units are " +
        "sent once failed / (succeeded + failed) passes failure_ratio_stop. Poll the job for progress.",
      request: { params: UuidParam, body: optionalJson(MassUpdateBody) },
      responses: {
        202: jsonResponse(UpdateJobOut, "The job, started"),
        ...errorResponses(401, 403, 404, 422),
      },
    }),
    async (c) => {
      const user = requireUser(c.get("principal"));
      const body = MassUpdateBody.parse(c.req.valid("json") ?? {});
      const repo = await findRepo(db, c.req.valid("param").uuid);
      if (!repo || !canSee(user, repo.visibility, repo.creatorUuid)) throw notFound("repo");
      // Units of other users are only an admin's to update: their devices restart.
      const rows = await db
        .select({ uuid: units.uuid })
        .from(units)
        .where(
          and(
            eq(units.repoUuid, repo.uuid),
            isAdmin(user) ? undefined : eq(units.creatorUuid, user.uuid),
          ),
        )
        .orderBy(asc(units.createdAt), asc(units.uuid));
      const job = await otaOf(deps).startMassUpdate({
        repoUuid: repo.uuid,
        creatorUuid: user.uuid,
        kind: "Manual",
        unitUuids: rows.map((r) => r.uuid),
        maxInFlight: body.max_in_flight,
        failureRatioStop: body.failure_ratio_stop,
      });
      return c.json(toUpdateJobOut(job), 202);
    },
  );

  /** A job's starter and admins see it; an automatic job also the repo's creator. */
  const mayRead = (user: { uuid: string; role: string }, job: UpdateJob, repoCreator?: string) =>
    user.role === "Admin" ||
    job.creatorUuid === user.uuid ||
    (job.creatorUuid === null && repoCreator === user.uuid);

  app.openapi(
    createRoute({
      method: "get",
      path: "/{uuid}/update_units",
      tags,
      summary: "The recent mass updates of a repo the caller may read, newest first",
      request: { params: UuidParam },
      responses: {
        200: jsonResponse(z.object({ jobs: z.array(UpdateJobOut) }), "Jobs"),
        ...errorResponses(401, 403, 404, 422),
      },
    }),
    async (c) => {
      const user = requireUser(c.get("principal"));
      const repo = await findRepo(db, c.req.valid("param").uuid);
      if (!repo || !canSee(user, repo.visibility, repo.creatorUuid)) throw notFound("repo");
      const jobs = (await otaOf(deps).jobsOfRepo(repo.uuid)).filter((j) =>
        mayRead(user, j, repo.creatorUuid),
      );
      return c.json({ jobs: jobs.map(toUpdateJobOut) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/{uuid}/update_units/{job}",
      tags,
      summary:
        "Progress of a mass update (its starter or an admin; automatic jobs: the repo's creator too)",
      request: { params: JobParams },
      responses: {
        200: jsonResponse(UpdateJobOut, "The job"),
        ...errorResponses(401, 403, 404, 422),
      },
    }),
    async (c) => {
      const user = requireUser(c.get("principal"));
      const { uuid, job: jobUuid } = c.req.valid("param");
      const job = await otaOf(deps).job(jobUuid);
      if (!job || job.repoUuid !== uuid) throw notFound("job");
      if (!mayRead(user, job, (await findRepo(db, uuid))?.creatorUuid)) throw notFound("job");
      return c.json(toUpdateJobOut(job), 200);
    },
  );

  return app;
}
