import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { Principal } from "../../src/access/principal.ts";
import { AclIndex, type NodeEntry, type UnitEntry } from "../../src/broker/acl-index.ts";
import { canPublish, canSubscribe } from "../../src/broker/acl-rules.ts";
import { parseTopic } from "../../src/broker/topics.ts";

// The decision rules over an in-memory index, without sockets or a database.

const D = "pepeunit.example:8443";
const template = {
  input_base_topic: ["update/pepeunit", "env_update/pepeunit"],
  output_base_topic: ["state/pepeunit", "log/pepeunit"],
  input_topic: ["input/pepeunit", "relay"],
  output_topic: ["output/pepeunit"],
};

function unitWith(creatorUuid: string, visibility: UnitEntry["visibility"] = "Public") {
  const unit: UnitEntry = {
    uuid: randomUUID(),
    creatorUuid,
    visibility,
    repoUuid: randomUUID(),
    commit: "a".repeat(40),
    template,
  };
  const node = (type: NodeEntry["type"], topicName: string, extra: Partial<NodeEntry> = {}) => ({
    uuid: randomUUID(),
    unitUuid: unit.uuid,
    type,
    topicName,
    visibility,
    isRewritableInput: false,
    ...extra,
  });
  const nodes = {
    in: node("Input", "input/pepeunit"),
    relay: node("Input", "relay"),
    out: node("Output", "output/pepeunit"),
  };
  return { unit, nodes, all: Object.values(nodes) };
}

const topicOf = (n: NodeEntry) =>
  n.topicName.endsWith("/pepeunit") ? `${D}/${n.uuid}/pepeunit` : `${D}/${n.uuid}`;

describe("topic parsing", () => {
  it("reads base topics and variable topics, nothing else", () => {
    const u = randomUUID();
    expect(parseTopic(D, `${D}/input_base_topic/${u}/update/pepeunit`)).toEqual({
      kind: "base",
      section: "input_base_topic",
      unitUuid: u,
      name: "update/pepeunit",
    });
    expect(parseTopic(D, `${D}/${u}`)).toEqual({ kind: "variable", nodeUuid: u, suffixed: false });
    expect(parseTopic(D, `${D}/${u}/pepeunit`)).toEqual({
      kind: "variable",
      nodeUuid: u,
      suffixed: true,
    });
    for (const bad of [
      `${D}/${u}/other`,
      `${D}/${u.toUpperCase()}`,
      `${D}/input_base_topic/${u}`,
      `${D}/input_base_topic/${u}/`,
      `${D}/input_base_topic/not-a-uuid/update/pepeunit`,
      `other.example/${u}`,
      `${D}/+`,
      "#",
      `$SYS/${u}`,
    ]) {
      expect(parseTopic(D, bad), bad).toBeNull();
    }
  });
});

describe("access rules", () => {
  const owner = randomUUID();
  const a = unitWith(owner);
  const b = unitWith(owner);
  const stranger = unitWith(randomUUID(), "Private");
  const index = new AclIndex();
  index.replaceAll({
    units: [a.unit, b.unit, stranger.unit],
    nodes: [...a.all, ...b.all, ...stranger.all],
    edges: [{ uuid: randomUUID(), outputUuid: a.nodes.out.uuid, inputUuid: b.nodes.in.uuid }],
  });
  const unitP = (u: UnitEntry): Principal & { kind: "unit" } => ({
    kind: "unit",
    uuid: u.uuid,
    creatorUuid: u.creatorUuid,
  });
  const userP = (uuid: string, role: "Admin" | "User" = "User"): Principal & { kind: "user" } => ({
    kind: "user",
    uuid,
    role,
    login: "x",
  });

  it("gives a unit exactly its schema's input and output topics", () => {
    const B = unitP(b.unit);
    const sub = (t: string) => canSubscribe(index, D, B, t);
    const pub = (t: string) => canPublish(index, D, B, t);
    expect(sub(`${D}/input_base_topic/${b.unit.uuid}/update/pepeunit`)).toBe(true);
    expect(sub(`${D}/input_base_topic/${b.unit.uuid}/log_sync/pepeunit`)).toBe(false);
    expect(sub(topicOf(b.nodes.in))).toBe(true);
    expect(sub(topicOf(b.nodes.relay))).toBe(true);
    expect(sub(topicOf(a.nodes.out))).toBe(true);
    expect(sub(topicOf(b.nodes.out))).toBe(false);
    expect(sub(topicOf(stranger.nodes.out))).toBe(false);
    expect(sub(`${D}/input_base_topic/${a.unit.uuid}/update/pepeunit`)).toBe(false);
    expect(pub(`${D}/output_base_topic/${b.unit.uuid}/state/pepeunit`)).toBe(true);
    expect(pub(`${D}/output_base_topic/${a.unit.uuid}/state/pepeunit`)).toBe(false);
    expect(pub(`${D}/input_base_topic/${b.unit.uuid}/update/pepeunit`)).toBe(false);
    expect(pub(topicOf(b.nodes.out))).toBe(true);
    expect(pub(topicOf(b.nodes.in))).toBe(false);
    expect(pub(topicOf(a.nodes.out))).toBe(false);
  });

  it("follows edge and unit changes in the index", () => {
    const local = new AclIndex();
    const edgeUuid = randomUUID();
    local.replaceAll({ units: [a.unit, b.unit], nodes: [...a.all, ...b.all], edges: [] });
    const B = unitP(b.unit);
    expect(canSubscribe(local, D, B, topicOf(a.nodes.out))).toBe(false);
    local.addEdge({ uuid: edgeUuid, outputUuid: a.nodes.out.uuid, inputUuid: b.nodes.relay.uuid });
    expect(canSubscribe(local, D, B, topicOf(a.nodes.out))).toBe(true);
    local.removeNodes([b.nodes.relay.uuid]);
    expect(canSubscribe(local, D, B, topicOf(a.nodes.out))).toBe(false);
    expect(local.edges.size).toBe(0);
    local.removeUnit(b.unit.uuid);
    expect(canSubscribe(local, D, B, topicOf(b.nodes.in))).toBe(false);
    expect(canPublish(local, D, B, `${D}/output_base_topic/${b.unit.uuid}/state/pepeunit`)).toBe(
      false,
    );
  });

  it("stops a linked output at once when it becomes Private to another user's unit", () => {
    const local = new AclIndex();
    const mine = unitWith(randomUUID());
    local.replaceAll({
      units: [a.unit, b.unit, mine.unit],
      nodes: [...a.all, ...b.all, ...mine.all],
      edges: [
        { uuid: randomUUID(), outputUuid: a.nodes.out.uuid, inputUuid: mine.nodes.relay.uuid },
        { uuid: randomUUID(), outputUuid: a.nodes.out.uuid, inputUuid: b.nodes.relay.uuid },
      ],
    });
    const other = unitP(mine.unit);
    expect(canSubscribe(local, D, other, topicOf(a.nodes.out))).toBe(true);
    // The unit (or the variable) turned Private before the link itself is removed.
    local.putUnit({ ...a.unit, visibility: "Private" }, a.all);
    expect(canSubscribe(local, D, other, topicOf(a.nodes.out))).toBe(false);
    // The owner's own unit keeps reading it.
    expect(canSubscribe(local, D, unitP(b.unit), topicOf(a.nodes.out))).toBe(true);
    local.putUnit(a.unit, [{ ...a.nodes.out, visibility: "Private" }]);
    expect(canSubscribe(local, D, other, topicOf(a.nodes.out))).toBe(false);
  });

  it("denies base topics when the unit's template could not be read", () => {
    const local = new AclIndex();
    local.replaceAll({ units: [{ ...b.unit, template: null }], nodes: b.all, edges: [] });
    const B = unitP(b.unit);
    expect(canSubscribe(local, D, B, `${D}/input_base_topic/${b.unit.uuid}/update/pepeunit`)).toBe(
      false,
    );
    expect(canSubscribe(local, D, B, topicOf(b.nodes.in))).toBe(true);
  });

  it("lets users read what they see and write inputs they own or that are rewritable", () => {
    const me = userP(owner);
    const other = userP(randomUUID());
    const admin = userP(randomUUID(), "Admin");
    expect(canSubscribe(index, D, other, topicOf(a.nodes.out))).toBe(true);
    expect(canSubscribe(index, D, other, topicOf(stranger.nodes.out))).toBe(false);
    expect(canSubscribe(index, D, admin, topicOf(stranger.nodes.out))).toBe(true);
    expect(canPublish(index, D, me, topicOf(b.nodes.relay))).toBe(true);
    expect(canPublish(index, D, me, topicOf(b.nodes.out))).toBe(false);
    expect(canPublish(index, D, other, topicOf(b.nodes.relay))).toBe(false);
    expect(canPublish(index, D, admin, topicOf(stranger.nodes.relay))).toBe(true);

    const local = new AclIndex();
    const rewritable = { ...b.nodes.relay, isRewritableInput: true };
    local.replaceAll({ units: [b.unit], nodes: [rewritable], edges: [] });
    expect(canPublish(local, D, other, topicOf(rewritable))).toBe(true);
    // Base topics are not for users, not even the owner's.
    expect(canSubscribe(index, D, me, `${D}/output_base_topic/${b.unit.uuid}/state/pepeunit`)).toBe(
      false,
    );
  });

  it("lets the internal client use any topic but $ ones, and nobody else $SYS or wildcards", () => {
    const internal = { kind: "internal" } as const;
    expect(canSubscribe(index, D, internal, `${D}/#`)).toBe(true);
    expect(canPublish(index, D, internal, topicOf(b.nodes.in))).toBe(true);
    expect(canSubscribe(index, D, internal, "$SYS/#")).toBe(false);
    const admin = userP(randomUUID(), "Admin");
    for (const t of ["#", `${D}/#`, `${D}/+`, "$SYS/#", `${D}/+/pepeunit`]) {
      expect(canSubscribe(index, D, admin, t), t).toBe(false);
      expect(canSubscribe(index, D, unitP(b.unit), t), t).toBe(false);
    }
  });
});
