import { createFixtureRepo, type FixtureRepo } from "../../helpers/git-fixtures.ts";
import type { ApiClient } from "../../helpers/instance.ts";
import { createRepo } from "../../helpers/repos.ts";
import { createUnit, nodeOf } from "../../helpers/units.ts";

// Seeds a small graph through the real API: a repo, two units and one data link
// (sensor.temperature → relay.relay).

export async function seedPair(
  api: ApiClient,
  token: string,
  opts: { prefix?: string; visibility?: string; fixture?: FixtureRepo } = {},
) {
  const p = opts.prefix ?? "demo";
  const visibility = opts.visibility ?? "Public";
  const fixture = opts.fixture ?? createFixtureRepo();
  const repo = await createRepo(api, token, fixture, { name: `${p}-repo`, visibility });
  const sensor = await createUnit(api, token, repo.uuid, { name: `${p}-sensor`, visibility });
  const relay = await createUnit(api, token, repo.uuid, { name: `${p}-relay`, visibility });
  const output = nodeOf(sensor, "Output", "temperature");
  const input = nodeOf(relay, "Input", "relay");
  const edge = await api.post(
    "/unit_node_edges",
    { output_uuid: output.uuid, input_uuid: input.uuid },
    token,
  );
  if (edge.status !== 201) throw new Error(`edge: ${edge.status} ${JSON.stringify(edge.body)}`);
  return { fixture, repo, sensor, relay, output, input, edge: edge.body };
}
