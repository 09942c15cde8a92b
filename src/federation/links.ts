import { randomUUID } from "node:crypto";
import { type Actor, Follow, isActor, Undo } from "@fedify/vocab";
import { eq } from "drizzle-orm";
import type { Principal } from "../access/principal.ts";
import { canManage, canSee } from "../access/visibility.ts";
import { federationRemoteEdges, unitNodes } from "../db/schema.ts";
import { conflict, forbidden, HttpError, notFound, unprocessable } from "../http/errors.ts";
import { type Core, errorText, INSTANCE_ACTOR, newActivityId, PEER_ORDERING_KEY } from "./core.ts";
import {
  deleteRemoteEdges,
  findNodeAndUnit,
  findRemoteEdge,
  insertRemoteEdge,
  type RemoteEdgeRow,
  updateRemoteEdge,
} from "./federation.store.ts";
import { domainOf, normalizeDomain } from "./policy.ts";

// The following side (A): our edges from remote outputs into local inputs. A link
// sends a Follow (signed by the instance actor, attributed to the local unit); the
// remote instance's Accept activates it, its Reject keeps the reason on the pending
// edge, or — once active — removes it. The registry maps each active remote output
// to its home topic, for the relay and for the broker's access check.

type User = Extract<Principal, { kind: "user" }>;
export type RemoteEdge = RemoteEdgeRow & { inputUnitUuid: string };

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export class RemoteEdgeRegistry {
  readonly #byUuid = new Map<string, RemoteEdge>();
  /** Edges by the unit of their input: the broker asks per forwarded message (activeInto). */
  readonly #byInputUnit = new Map<string, Set<RemoteEdge>>();
  /** Active remote outputs: actor URL → home topic and the highest sequence relayed. */
  readonly active = new Map<string, { topic: string; lastSequence: number; edges: Set<string> }>();

  async load(core: Core): Promise<void> {
    const rows = await core.db
      .select({ e: federationRemoteEdges, unitUuid: unitNodes.unitUuid })
      .from(federationRemoteEdges)
      .innerJoin(unitNodes, eq(unitNodes.uuid, federationRemoteEdges.inputUuid));
    this.#byUuid.clear();
    this.#byInputUnit.clear();
    this.active.clear();
    for (const r of rows) this.put({ ...r.e, inputUnitUuid: r.unitUuid });
  }

  put(e: RemoteEdge): void {
    this.remove(e.uuid);
    this.#byUuid.set(e.uuid, e);
    let ofUnit = this.#byInputUnit.get(e.inputUnitUuid);
    if (!ofUnit) {
      ofUnit = new Set();
      this.#byInputUnit.set(e.inputUnitUuid, ofUnit);
    }
    ofUnit.add(e);
    if (e.status === "Active" && e.remoteTopic) {
      let a = this.active.get(e.remoteActor);
      if (!a) {
        a = { topic: e.remoteTopic, lastSequence: e.lastSequence, edges: new Set() };
        this.active.set(e.remoteActor, a);
      }
      a.lastSequence = Math.max(a.lastSequence, e.lastSequence);
      a.edges.add(e.uuid);
    }
  }

  remove(uuid: string): RemoteEdge | undefined {
    const e = this.#byUuid.get(uuid);
    if (!e) return undefined;
    this.#byUuid.delete(uuid);
    const ofUnit = this.#byInputUnit.get(e.inputUnitUuid);
    ofUnit?.delete(e);
    if (ofUnit?.size === 0) this.#byInputUnit.delete(e.inputUnitUuid);
    const a = this.active.get(e.remoteActor);
    if (a) {
      a.edges.delete(uuid);
      if (a.edges.size === 0) this.active.delete(e.remoteActor);
    }
    return e;
  }

  get(uuid: string): RemoteEdge | undefined {
    return this.#byUuid.get(uuid);
  }

  /** Whether an active edge into the unit's inputs has this remote topic (its peer usable). */
  hasActiveTopic(unitUuid: string, topic: string, usable: (domain: string) => boolean): boolean {
    for (const e of this.#byInputUnit.get(unitUuid) ?? []) {
      if (e.status === "Active" && e.remoteTopic === topic && usable(e.domain)) return true;
    }
    return false;
  }

  byFollow(followId: string): RemoteEdge | undefined {
    for (const e of this.#byUuid.values()) if (e.followId === followId) return e;
    return undefined;
  }

  all(): RemoteEdge[] {
    return [...this.#byUuid.values()];
  }

  /** Active edges into a unit's inputs whose peer is currently usable. */
  activeInto(unitUuid: string, usable: (domain: string) => boolean): RemoteEdge[] {
    return [...(this.#byInputUnit.get(unitUuid) ?? [])]
      .filter((e) => e.status === "Active" && e.remoteTopic && usable(e.domain))
      .sort(
        (a, b) => a.createdAt.getTime() - b.createdAt.getTime() || a.uuid.localeCompare(b.uuid),
      );
  }
}

/**
 * "<uuid>@<domain>" or an actor URL → the remote output's actor URL. A Pepeunit
 * variable actor lives at /ap/actors/<uuid> on its instance, under this
 * instance's scheme (PEPEUNIT_HTTP_TYPE: https in production, http in labs).
 */
export function parseRemoteOutput(core: Core, output: string): URL {
  const m = /^([0-9a-f-]{36})@(.+)$/i.exec(output.trim());
  if (m?.[1] && m[2]) {
    const domain = normalizeDomain(m[2]);
    if (!domain || !UUID_RE.test(m[1].toLowerCase())) {
      throw unprocessable("output must be <uuid>@<domain> or an actor URL");
    }
    return new URL(`${core.deps.config.httpType}://${domain}/ap/actors/${m[1].toLowerCase()}`);
  }
  let url: URL;
  try {
    url = new URL(output);
  } catch {
    throw unprocessable("output must be <uuid>@<domain> or an actor URL");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw unprocessable("the output's actor URL must be http(s)");
  }
  return url;
}

/** The remote output's inbox: its own actor's, or (not disclosed: not Public) its instance's shared inbox. */
async function resolveInbox(core: Core, actorUrl: URL): Promise<URL> {
  const ctx = core.ctx();
  const lookup = async (url: URL): Promise<Actor | null> => {
    try {
      const o = await ctx.lookupObject(url);
      return isActor(o) ? o : null;
    } catch {
      return null;
    }
  };
  const actor = await lookup(actorUrl);
  if (actor) {
    const inbox = actor.endpoints?.sharedInbox ?? actor.inboxId;
    if (inbox && inbox.origin === actorUrl.origin) return inbox;
  }
  const instance = await lookup(new URL(`/ap/actors/${INSTANCE_ACTOR}`, actorUrl));
  const inbox = instance?.endpoints?.sharedInbox ?? instance?.inboxId;
  if (inbox && inbox.origin === actorUrl.origin) return inbox;
  throw new HttpError(
    502,
    `the instance ${actorUrl.host} could not be reached as a federation peer`,
  );
}

export async function linkRemote(
  core: Core,
  registry: RemoteEdgeRegistry,
  user: User,
  input: { output: string; inputUuid: string },
): Promise<RemoteEdge> {
  const found = await findNodeAndUnit(core.db, input.inputUuid);
  if (
    !found ||
    !canSee(user, found.unit.visibility, found.unit.creatorUuid) ||
    !canSee(user, found.node.visibility, found.unit.creatorUuid)
  ) {
    throw notFound("input");
  }
  if (found.node.type !== "Input") throw unprocessable("input_uuid must be an Input variable");
  if (!canManage(user, found.unit.creatorUuid) && !found.node.isRewritableInput) {
    throw forbidden(
      "this input is not rewritable: only its unit's creator (or an admin) may link into it",
    );
  }
  const actorUrl = parseRemoteOutput(core, input.output);
  if (actorUrl.origin === new URL(core.deps.config.baseUrl).origin) {
    throw unprocessable("this output is on this instance: link it by output_uuid");
  }
  const decision = await core.policy.check(actorUrl);
  if (!decision.ok) throw forbidden(decision.reason);
  if (
    registry.all().some((e) => e.inputUuid === found.node.uuid && e.remoteActor === actorUrl.href)
  ) {
    throw conflict("these variables are already linked");
  }
  const inbox = await resolveInbox(core, actorUrl);
  const uuid = randomUUID();
  const followId = new URL(`/ap/follows/${uuid}`, core.deps.config.baseUrl);
  const row = await insertRemoteEdge(core.db, {
    uuid,
    inputUuid: found.node.uuid,
    creatorUuid: user.uuid,
    remoteActor: actorUrl.href,
    domain: domainOf(actorUrl),
    remoteInbox: inbox.href,
    followId: followId.href,
  });
  if (!row) throw conflict("these variables are already linked");
  const edge = { ...row, inputUnitUuid: found.unit.uuid };
  registry.put(edge);
  const ctx = core.ctx();
  const follow = new Follow({
    id: followId,
    actor: core.instanceUri(),
    object: actorUrl,
    // The local unit the link is for: grants may name it.
    attribution: ctx.getActorUri(found.unit.uuid),
  });
  await ctx.sendActivity({ identifier: INSTANCE_ACTOR }, { id: actorUrl, inboxId: inbox }, follow, {
    orderingKey: PEER_ORDERING_KEY,
    fanout: "skip",
  });
  core.outbox.record(follow, found.unit.uuid);
  return edge;
}

/** Sends Undo(Follow) for edges that are going away (best effort: the peer may be gone). */
export async function sendUndo(core: Core, edges: RemoteEdge[]): Promise<void> {
  const ctx = core.ctx();
  for (const e of edges) {
    if (e.status === "Rejected" || core.policy.isBlocked(e.domain)) continue;
    try {
      const undo = new Undo({
        id: newActivityId(core),
        actor: core.instanceUri(),
        object: new Follow({
          id: new URL(e.followId),
          actor: core.instanceUri(),
          object: new URL(e.remoteActor),
        }),
      });
      await ctx.sendActivity(
        { identifier: INSTANCE_ACTOR },
        { id: new URL(e.remoteActor), inboxId: new URL(e.remoteInbox) },
        undo,
        { orderingKey: PEER_ORDERING_KEY, fanout: "skip" },
      );
      core.outbox.record(undo, e.inputUnitUuid);
    } catch (err) {
      core.log.warn({ err: errorText(err), edge: e.uuid }, "federation: Undo not sent");
    }
  }
}

export async function unlinkRemote(
  core: Core,
  registry: RemoteEdgeRegistry,
  user: User,
  uuid: string,
): Promise<RemoteEdge | null> {
  const edge = registry.get(uuid) ?? (await findRemoteEdge(core.db, uuid));
  if (!edge) return null;
  const inp = await findNodeAndUnit(core.db, edge.inputUuid);
  if (!inp) return null;
  if (edge.creatorUuid !== user.uuid && !canManage(user, inp.unit.creatorUuid)) {
    const sees =
      canSee(user, inp.unit.visibility, inp.unit.creatorUuid) &&
      canSee(user, inp.node.visibility, inp.unit.creatorUuid);
    if (!sees) throw notFound("edge");
    throw forbidden(
      "only the edge's creator, the input unit's creator or an admin may remove this link",
    );
  }
  const [removed] = await deleteRemoteEdges(core.db, [uuid]);
  if (!removed) return null;
  const e = { ...removed, inputUnitUuid: inp.unit.uuid };
  registry.remove(uuid);
  await sendUndo(core, [e]);
  return e;
}

/** Accept from the output's instance: the edge is active under the output's home topic. */
export async function activateRemote(
  core: Core,
  registry: RemoteEdgeRegistry,
  edge: RemoteEdge,
  topic: string,
): Promise<RemoteEdge | null> {
  const updated = await updateRemoteEdge(core.db, edge.uuid, {
    status: "Active",
    reason: null,
    remoteTopic: topic,
  });
  if (!updated) return null;
  const e = { ...updated, inputUnitUuid: edge.inputUnitUuid };
  registry.put(e);
  return e;
}

/** Reject: kept with its reason while pending; an active edge (revoked access) is removed. */
export async function rejectRemote(
  core: Core,
  registry: RemoteEdgeRegistry,
  edge: RemoteEdge,
  reason: string,
): Promise<"rejected" | "removed"> {
  if (edge.status === "Active") {
    await deleteRemoteEdges(core.db, [edge.uuid]);
    registry.remove(edge.uuid);
    return "removed";
  }
  const updated = await updateRemoteEdge(core.db, edge.uuid, { status: "Rejected", reason });
  if (updated) registry.put({ ...updated, inputUnitUuid: edge.inputUnitUuid });
  return "rejected";
}

/** A valid home topic for a remote output: `D/N` or `D/N/pepeunit` on the output's own domain. */
export function isHomeTopic(topic: string, edge: RemoteEdge): boolean {
  const uuid = new URL(edge.remoteActor).pathname.split("/").pop() ?? "";
  return topic === `${edge.domain}/${uuid}` || topic === `${edge.domain}/${uuid}/pepeunit`;
}
