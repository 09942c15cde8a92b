import { connectClient, type TestClient } from "../broker/mqtt-helpers.ts";
import { createFixtureRepo, type FixtureRepo } from "../helpers/git-fixtures.ts";
import { createUser, type TestInstance } from "../helpers/instance.ts";
import { createRepo } from "../helpers/repos.ts";
import { createUnit, nodeOf, unitToken } from "../helpers/units.ts";

// The entities the REST fuzzer aims at: real users, a repo cloned from a local
// git repository, units (one online through a device connection), variables,
// an edge, a grant; and throwaway ones for the operations whose success would
// destroy what the others need (deletes, block, token rotation).

export type Role = "admin" | "owner" | "other" | "anonymous" | "unit";
export const ROLES: Role[] = ["admin", "owner", "other", "anonymous", "unit"];

export type User = { uuid: string; token: string; login: string };

/** Entity uuids by kind, as path and query parameters draw them. */
export type Pools = {
  users: string[];
  repos: string[];
  units: string[];
  nodes: string[];
  inputs: string[];
  outputs: string[];
  edges: string[];
  grants: string[];
  jobs: string[];
  domains: string[];
  /** An access token of the owner's (DELETE /users/me/tokens/{token_uuid}). */
  accessTokens: string[];
  /** The owner's board (/boards/{uuid}; deleted by the last of its operations). */
  boards: string[];
  /** The owner's alert rule (/alerts/{uuid}; deleted by the last of its operations). */
  alerts: string[];
};

export type FuzzWorld = {
  tokens: Record<Role, string | undefined>;
  admin: User;
  owner: User;
  other: User;
  fixture: FixtureRepo;
  repoUuid: string;
  unitUuid: string;
  privateOutputUuid: string;
  inputUuid: string;
  outputUuid: string;
  /** Entities every phase may use (never deleted). */
  pools: Pools;
  /** Entities only the destructive phase uses. */
  throwaway: Pools;
  device: TestClient;
  close(): Promise<void>;
};

const emptyPools = (): Pools => ({
  users: [],
  repos: [],
  units: [],
  nodes: [],
  inputs: [],
  outputs: [],
  edges: [],
  grants: [],
  jobs: [],
  domains: [],
  accessTokens: [],
  boards: [],
  alerts: [],
});

let loginCounter = 0;
export async function newUser(api: TestInstance["api"], prefix: string): Promise<User> {
  const login = `${prefix}${++loginCounter}`;
  return { ...(await createUser(api, login)), login };
}

async function edge(inst: TestInstance, token: string, outputUuid: string, inputUuid: string) {
  const res = await inst.api.post(
    "/unit_node_edges",
    { output_uuid: outputUuid, input_uuid: inputUuid },
    token,
  );
  if (res.status !== 201) throw new Error(`edge: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.uuid as string;
}

async function grant(inst: TestInstance, token: string, nodeUuid: string, grantee: string) {
  const res = await inst.api.post("/federation/grants", { node_uuid: nodeUuid, grantee }, token);
  if (res.status !== 201) throw new Error(`grant: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.uuid as string;
}

export async function seedWorld(inst: TestInstance): Promise<FuzzWorld> {
  const admin = await newUser(inst.api, "admin"); // the first user is the admin
  const owner = await newUser(inst.api, "owner");
  const other = await newUser(inst.api, "other");
  const fixture = createFixtureRepo();
  const repo = await createRepo(inst.api, owner.token, fixture);
  const unit = await createUnit(inst.api, owner.token, repo.uuid);
  const second = await createUnit(inst.api, owner.token, repo.uuid);
  const secret = await createUnit(inst.api, owner.token, repo.uuid, { visibility: "Private" });
  const token = await unitToken(inst.api, owner.token, unit.uuid);
  // Online, so commands, set-input and updates reach their success answers.
  const device = await connectClient(inst.mqttUrl, token, { clientId: unit.uuid });
  const outputUuid = nodeOf(unit, "Output", "temperature").uuid;
  const inputUuid = nodeOf(second, "Input", "relay").uuid;
  const privateOutputUuid = nodeOf(secret, "Output", "temperature").uuid;
  const edgeUuid = await edge(inst, owner.token, outputUuid, inputUuid);
  const grantUuid = await grant(inst, owner.token, privateOutputUuid, "peer.example.org");
  const allNodes = [unit, second, secret].flatMap(
    (u) => u.unit_nodes as Array<{ uuid: string; type: string }>,
  );

  // Throwaways for the destructive phase.
  // One of each: the destructive operations run in an order (rotate, then delete;
  // block, unblock, then delete) that lets each succeed once on it.
  const doomedUsers = [await newUser(inst.api, "doomed")];
  const doomedRepo = await createRepo(inst.api, owner.token, fixture);
  const doomedUnits = [await createUnit(inst.api, owner.token, repo.uuid)];
  const doomedEdges = [
    await edge(
      inst,
      owner.token,
      nodeOf(second, "Output", "temperature").uuid,
      nodeOf(unit, "Input", "relay").uuid,
    ),
  ];
  const doomedGrants = [await grant(inst, owner.token, privateOutputUuid, "doomed.example.org")];
  const doomedToken = await inst.api.post(
    "/users/me/tokens",
    { name: "doomed", scope: "read" },
    owner.token,
  );
  if (doomedToken.status !== 201) throw new Error(`access token: ${doomedToken.status}`);
  const board = await inst.api.post(
    "/boards",
    { name: "fuzz", items: [{ unit_node_uuid: outputUuid }] },
    owner.token,
  );
  if (board.status !== 201) throw new Error(`board: ${board.status}`);
  const rule = await inst.api.post(
    "/alerts",
    { unit_node_uuid: outputUuid, max: 1e6 },
    owner.token,
  );
  if (rule.status !== 201) throw new Error(`alert rule: ${rule.status}`);

  return {
    tokens: {
      admin: admin.token,
      owner: owner.token,
      other: other.token,
      anonymous: undefined,
      unit: token,
    },
    admin,
    owner,
    other,
    fixture,
    repoUuid: repo.uuid,
    unitUuid: unit.uuid,
    privateOutputUuid,
    inputUuid,
    outputUuid,
    pools: {
      ...emptyPools(),
      users: [owner.uuid, other.uuid, admin.uuid],
      repos: [repo.uuid],
      units: [unit.uuid, second.uuid, secret.uuid],
      nodes: allNodes.map((n) => n.uuid),
      inputs: allNodes.filter((n) => n.type === "Input").map((n) => n.uuid),
      outputs: allNodes.filter((n) => n.type === "Output").map((n) => n.uuid),
      edges: [edgeUuid],
      grants: [grantUuid],
      domains: ["peer.example.org", "127.0.0.1:9"],
      // Deleted by the first valid request; nothing else draws from this pool.
      accessTokens: [doomedToken.body.uuid],
      boards: [board.body.uuid],
      alerts: [rule.body.uuid],
    },
    throwaway: {
      ...emptyPools(),
      users: doomedUsers.map((u) => u.uuid),
      repos: [doomedRepo.uuid],
      units: doomedUnits.map((u) => u.uuid),
      edges: doomedEdges,
      grants: doomedGrants,
    },
    device,
    async close() {
      await device.endAsync(true);
    },
  };
}
