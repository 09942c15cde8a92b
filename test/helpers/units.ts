import type { ApiClient } from "./instance.ts";

/**
 * Creates a unit through the API (following the repo, visibility Public unless
 * overridden). Throws with the response body on failure.
 */
export async function createUnit(
  api: ApiClient,
  token: string,
  repoUuid: string,
  overrides: object = {},
  // any: the unit JSON as the API returns it; tests assert the fields they read
): Promise<any> {
  const res = await api.post(
    "/units",
    {
      repo_uuid: repoUuid,
      name: `unit-${Math.random().toString(36).slice(2, 10)}`,
      visibility: "Public",
      ...overrides,
    },
    token,
  );
  if (res.status !== 201) throw new Error(`create unit: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** The unit's own token, read from its env the way a device gets it. */
export async function unitToken(
  api: ApiClient,
  ownerToken: string,
  unitUuid: string,
): Promise<string> {
  const env = await api.get(`/units/env/${unitUuid}`, ownerToken);
  if (env.status !== 200) throw new Error(`env: ${env.status} ${JSON.stringify(env.body)}`);
  return env.body.PU_AUTH_TOKEN;
}

/** The variable of a unit with this type and topic name (any: API JSON, as createUnit). */
export function nodeOf(
  unit: { unit_nodes: any[] },
  type: "Input" | "Output",
  topicName: string,
): any {
  const node = unit.unit_nodes.find((n) => n.type === type && n.topic_name === topicName);
  if (!node) throw new Error(`no ${type} ${topicName} in ${JSON.stringify(unit.unit_nodes)}`);
  return node;
}
