import type { FixtureRepo } from "./git-fixtures.ts";
import type { ApiClient } from "./instance.ts";

/**
 * Registers a fixture repository through the API (Public unless overridden) and
 * sets its default branch to "main". Throws with the response body on failure.
 */
export async function createRepo(
  api: ApiClient,
  token: string,
  fixture: FixtureRepo,
  overrides: object = {},
  // `any`: the repo JSON as the API returns it; tests assert the fields they read.
): Promise<any> {
  const created = await api.post(
    "/repos",
    {
      name: `repo-${Math.random().toString(36).slice(2, 10)}`,
      url: fixture.url,
      visibility: "Public",
      ...overrides,
    },
    token,
  );
  if (created.status !== 201) {
    throw new Error(`create repo: ${created.status} ${JSON.stringify(created.body)}`);
  }
  const patched = await api.patch(`/repos/${created.body.uuid}`, { default_branch: "main" }, token);
  if (patched.status !== 200) {
    throw new Error(`set default branch: ${patched.status} ${JSON.stringify(patched.body)}`);
  }
  return patched.body;
}
