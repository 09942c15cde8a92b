import { createRoute, z } from "@hono/zod-openapi";
import { requireAdmin } from "../http/auth.ts";
import { createRouter, errorResponses, jsonResponse } from "../http/openapi.ts";
import type { AppDeps } from "../http/types.ts";
import { importStandardRepos, standardRepoStates } from "./standard-repos.service.ts";

// Admin API for the standard unit repositories bundled with the instance.

const tags = ["admin"];

const StandardRepoOut = z
  .object({
    name: z.string(),
    title: z.string(),
    description: z.string(),
    imported: z.boolean(),
    repo_uuid: z.uuid().nullable(),
  })
  .openapi("StandardRepo");

const ImportedOut = StandardRepoOut.extend({
  status: z.enum(["created", "exists", "updated"]).openapi({
    description: "created now, already imported, or imported and synced to a newer bundled copy",
  }),
  commit: z.string(),
}).openapi("StandardRepoImport");

export function standardReposRoutes(deps: AppDeps) {
  const app = createRouter();
  const out = (s: Awaited<ReturnType<typeof standardRepoStates>>[number]) => ({
    name: s.example.name,
    title: s.example.title,
    description: s.example.description,
    imported: s.repoUuid !== null,
    repo_uuid: s.repoUuid,
  });

  app.openapi(
    createRoute({
      method: "get",
      path: "/",
      tags,
      summary:
        "The standard unit repositories bundled with the instance, and whether imported (admin)",
      responses: {
        200: jsonResponse(z.object({ standard_repos: z.array(StandardRepoOut) }), "Bundled repos"),
        ...errorResponses(401, 403),
      },
    }),
    async (c) => {
      requireAdmin(c.get("principal"));
      const states = await standardRepoStates(deps);
      return c.json({ standard_repos: states.map(out) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/",
      tags,
      summary: "Import the bundled standard unit repositories as Public repos (admin; idempotent)",
      description:
        "Each is made a local git repository under the data dir and cloned like any repo (also when " +
        "PEPEUNIT_GIT_ALLOW_LOCAL is false), with default branch main. Calling again creates nothing " +
        "new; a repo whose bundled copy changed (a newer instance build) is synced to it.",
      responses: {
        200: jsonResponse(z.object({ standard_repos: z.array(ImportedOut) }), "Imported repos"),
        ...errorResponses(401, 403),
      },
    }),
    async (c) => {
      const admin = requireAdmin(c.get("principal"));
      const results = await importStandardRepos(deps, admin.uuid);
      return c.json(
        {
          standard_repos: results.map((r) => ({ ...out(r), status: r.status, commit: r.commit })),
        },
        200,
      );
    },
  );

  return app;
}
