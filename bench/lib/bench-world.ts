import { createFixtureRepo, type FixtureRepo } from "../../test/helpers/git-fixtures.ts";

// Units, tokens and edges on a bench server, made through the public API as a user
// would make them (so every unit has a real token and every link a real edge).

// biome-ignore lint/suspicious/noExplicitAny: API JSON; the suites read the fields they need.
export type Json = Record<string, any>;

export async function call(
  url: string,
  method: string,
  path: string,
  body?: unknown,
  token?: string,
): Promise<Json> {
  const res = await fetch(`${url}/pepeunit/api/v1${path}`, {
    method,
    headers: {
      ...(body === undefined ? {} : { "content-type": "application/json" }),
      ...(token ? { "x-auth-token": token } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 300)}`);
  return text ? (JSON.parse(text) as Json) : {};
}

/** Runs `fn` over items with at most `n` in flight; results in input order. */
export async function pool<T, R>(items: T[], n: number, fn: (item: T, i: number) => Promise<R>) {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i] as T, i);
      }
    }),
  );
  return out;
}

export type BenchUnit = {
  uuid: string;
  token: string;
  json: Json;
  env: Json;
  schema: Record<string, Record<string, string[]>>;
  /** Physical topic of a variable of this unit. */
  topic(type: "Input" | "Output", name: string): string;
  nodeUuid(type: "Input" | "Output", name: string): string;
  /** Every topic the device subscribes to (input_base_topic and input_topic lists). */
  inputTopics(): string[];
};

export type BenchWorld = {
  url: string;
  token: string;
  repoUuid: string;
  fixture: FixtureRepo;
  createUnits(n: number, concurrency?: number): Promise<BenchUnit[]>;
  /** env.json and schema.json as the unit downloads them (call after its edges exist). */
  refresh(unit: BenchUnit): Promise<void>;
  link(outputNodeUuid: string, inputNodeUuid: string): Promise<void>;
};

/** `files`: the firmware repo's files (default: the test fixture's, two outputs per unit). */
export async function createBenchWorld(
  url: string,
  login: string,
  files?: Record<string, string>,
): Promise<BenchWorld> {
  const password = `${login}-password`;
  await call(url, "POST", "/users", { login, email: `${login}@example.test`, password });
  const { token } = (await call(url, "POST", "/users/auth", { login, password })) as {
    token: string;
  };
  const fixture = createFixtureRepo(files);
  const repo = await call(
    url,
    "POST",
    "/repos",
    { name: `${login}-repo`, url: fixture.url },
    token,
  );
  await call(url, "PATCH", `/repos/${repo.uuid}`, { default_branch: "main" }, token);
  let seq = 0;

  async function refresh(unit: BenchUnit) {
    unit.env = await call(url, "GET", `/units/env/${unit.uuid}`, undefined, token);
    unit.token = String(unit.env.PU_AUTH_TOKEN);
    unit.schema = (await call(
      url,
      "GET",
      `/units/get_current_schema/${unit.uuid}`,
      undefined,
      unit.token,
    )) as BenchUnit["schema"];
  }

  function wrap(json: Json): BenchUnit {
    const node = (type: string, name: string) => {
      const n = (json.unit_nodes as Json[]).find((x) => x.type === type && x.topic_name === name);
      if (!n) throw new Error(`unit ${json.uuid} has no ${type} ${name}`);
      return n;
    };
    const unit: BenchUnit = {
      uuid: json.uuid,
      token: "",
      json,
      env: {},
      schema: {},
      topic: (type, name) => String(node(type, name).topic),
      nodeUuid: (type, name) => String(node(type, name).uuid),
      inputTopics: () => [
        ...new Set([
          ...Object.values(unit.schema.input_base_topic ?? {}).flat(),
          ...Object.values(unit.schema.input_topic ?? {}).flat(),
        ]),
      ],
    };
    return unit;
  }

  return {
    url,
    token,
    repoUuid: repo.uuid,
    fixture,
    async createUnits(n, concurrency = 8) {
      const made = await pool(Array.from({ length: n }), concurrency, async () => {
        const json = await call(
          url,
          "POST",
          "/units",
          { repo_uuid: repo.uuid, name: `${login}-u${++seq}-${Date.now().toString(36)}` },
          token,
        );
        return wrap(json);
      });
      await pool(made, concurrency, refresh);
      return made;
    },
    refresh,
    async link(outputNodeUuid, inputNodeUuid) {
      await call(
        url,
        "POST",
        "/unit_node_edges",
        { output_uuid: outputNodeUuid, input_uuid: inputNodeUuid },
        token,
      );
    },
  };
}
