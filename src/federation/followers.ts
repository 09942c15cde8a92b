import { Follow, Reject } from "@fedify/vocab";
import { eq } from "drizzle-orm";
import { federationFollowers, unitNodes, type Visibility } from "../db/schema.ts";
import { type Core, errorText, newActivityId, PEER_ORDERING_KEY } from "./core.ts";
import {
  deleteFollowers,
  type FollowerRow,
  findNodeAndUnit,
  grantsOfNode,
  insertFollower,
} from "./federation.store.ts";

// The home side (B): remote instances following our output variables. An
// in-memory registry (node → followers) serves the value path; the table keeps it
// across restarts. Access is re-decided whenever a variable, its unit or a grant
// changes: a follower that lost access gets a Reject of its Follow.

export type Follower = FollowerRow & { unitUuid: string };
export type FollowDecision = { ok: true; topicName: string } | { ok: false; reason: string };

const ORDER: Visibility[] = ["Private", "Internal", "Public"];

export class FollowerRegistry {
  readonly #byNode = new Map<string, Map<string, Follower>>();
  readonly #byFollow = new Map<string, Follower>();
  #loading = false;
  /** Called after a follower was added or removed here (cluster mode: the others reload). */
  onChange: (() => void) | null = null;

  async load(core: Core): Promise<void> {
    const rows = await core.db
      .select({ f: federationFollowers, unitUuid: unitNodes.unitUuid })
      .from(federationFollowers)
      .innerJoin(unitNodes, eq(unitNodes.uuid, federationFollowers.nodeUuid));
    this.#byNode.clear();
    this.#byFollow.clear();
    this.#loading = true;
    try {
      for (const r of rows) this.add({ ...r.f, unitUuid: r.unitUuid });
    } finally {
      this.#loading = false;
    }
  }

  add(f: Follower): void {
    let m = this.#byNode.get(f.nodeUuid);
    if (!m) {
      m = new Map();
      this.#byNode.set(f.nodeUuid, m);
    }
    m.set(f.followId, f);
    this.#byFollow.set(f.followId, f);
    if (!this.#loading) this.onChange?.();
  }

  remove(followId: string): Follower | undefined {
    const f = this.#byFollow.get(followId);
    if (!f) return undefined;
    this.#byFollow.delete(followId);
    this.#byNode.get(f.nodeUuid)?.delete(followId);
    if (this.#byNode.get(f.nodeUuid)?.size === 0) this.#byNode.delete(f.nodeUuid);
    this.onChange?.();
    return f;
  }

  get(followId: string): Follower | undefined {
    return this.#byFollow.get(followId);
  }

  /** Followers of a variable (fast path of every published value). */
  ofNode(nodeUuid: string): Iterable<Follower> {
    return this.#byNode.get(nodeUuid)?.values() ?? [];
  }

  hasFollowers(nodeUuid: string): boolean {
    return this.#byNode.has(nodeUuid);
  }

  all(): Follower[] {
    return [...this.#byFollow.values()];
  }
}

/** May the instance `domain` (for the remote unit `onBehalfOf`) read output `nodeUuid`? */
export async function decideFollow(
  core: Core,
  nodeUuid: string,
  domain: string,
  onBehalfOf: string | null,
): Promise<FollowDecision> {
  const peer = core.policy.decide(domain);
  if (!peer.ok) return peer;
  const found = await findNodeAndUnit(core.db, nodeUuid);
  if (found?.node.type !== "Output") return { ok: false, reason: "no such output variable" };
  const level = ORDER[
    Math.min(ORDER.indexOf(found.unit.visibility), ORDER.indexOf(found.node.visibility))
  ] as Visibility;
  if (level === "Public") return { ok: true, topicName: found.node.topicName };
  if (level === "Internal") {
    return { ok: false, reason: "the output is Internal: only this instance's users may read it" };
  }
  const grants = await grantsOfNode(core.db, nodeUuid);
  const granted = grants.some((g) => g.domain === domain && (!g.actor || g.actor === onBehalfOf));
  return granted
    ? { ok: true, topicName: found.node.topicName }
    : { ok: false, reason: "the output is Private and not granted to this instance or unit" };
}

export async function saveFollower(
  core: Core,
  registry: FollowerRegistry,
  f: Omit<FollowerRow, "uuid" | "createdAt">,
  unitUuid: string,
): Promise<void> {
  const row = await insertFollower(core.db, f);
  if (row) registry.add({ ...row, unitUuid });
}

/** Ends followers' access: Reject of their Follow (the remote side removes its edge). */
export async function revokeFollowers(
  core: Core,
  registry: FollowerRegistry,
  followers: Follower[],
  reason: string,
): Promise<void> {
  if (!followers.length) return;
  for (const f of followers) registry.remove(f.followId);
  await deleteFollowers(
    core.db,
    followers.map((f) => f.followId),
  ).catch((err: unknown) => core.log.error({ err }, "federation: deleting followers failed"));
  const ctx = core.ctx();
  for (const f of followers) {
    if (core.policy.isBlocked(f.domain)) continue; // blocked: no word to them at all
    try {
      const reject = new Reject({
        id: newActivityId(core),
        actor: core.instanceUri(),
        object: new Follow({
          id: new URL(f.followId),
          actor: new URL(f.followerActor),
          object: ctx.getActorUri(f.nodeUuid),
        }),
        summary: reason,
      });
      await ctx.sendActivity(
        { identifier: "instance" },
        { id: new URL(f.followerActor), inboxId: new URL(f.inbox) },
        reject,
        { orderingKey: PEER_ORDERING_KEY, fanout: "skip" },
      );
      core.outbox.record(reject, f.nodeUuid);
    } catch (err) {
      core.log.warn(
        { err: errorText(err), follower: f.followerActor },
        "federation: revoke not sent",
      );
    }
  }
}

/** Re-decides every follower of these variables; those who lost access are revoked. */
export async function recheckFollowers(
  core: Core,
  registry: FollowerRegistry,
  nodeUuids: Iterable<string>,
): Promise<void> {
  const lost = new Map<string, Follower[]>();
  for (const nodeUuid of nodeUuids) {
    for (const f of [...registry.ofNode(nodeUuid)]) {
      const d = await decideFollow(core, nodeUuid, f.domain, f.onBehalfOf);
      if (!d.ok) {
        const list = lost.get(d.reason) ?? [];
        list.push(f);
        lost.set(d.reason, list);
      }
    }
  }
  for (const [reason, list] of lost) await revokeFollowers(core, registry, list, reason);
}
