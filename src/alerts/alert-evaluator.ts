import type { Logger } from "pino";
import type { Principal } from "../access/principal.ts";
import { canSee } from "../access/visibility.ts";
import type { DbLike } from "../db/database.ts";
import type { AlertCondition } from "../db/schema.ts";
import type { EventBus } from "../events.ts";
import { conditionMessage, type Limits, nextCondition, numericValue } from "./alert-rule.ts";
import {
  type AlertRuleContext,
  type AlertRuleState,
  loadRuleContexts,
  type RuleScope,
  saveRuleState,
} from "./alerts.store.ts";
import type { NotificationDispatch } from "./notifier.ts";

// Threshold rules evaluated on every value seen on a variable's topic, as published
// (before any data pipe): device outputs, set-input, federation's republished values.
// Rules live in memory, indexed by variable, so a value costs one map look-up and no
// query; they are reloaded from the database when a rule (alert-rule.changed), a unit, a
// variable or the owner changes.
//
// Rate limit: at most one message per min_interval_s. A condition change inside the
// interval is held; when the interval ends the rule's state at that moment is sent
// (with the latest value), or nothing when it is back to what was last sent. The
// condition, what was last sent and when are saved on each change, so a restart
// neither repeats a message nor loses a held one.

type LiveRule = {
  uuid: string;
  userUuid: string;
  nodeUuid: string;
  unitUuid: string;
  unitName: string;
  topicName: string;
  limits: Limits;
  minIntervalMs: number;
  /** Enabled, its owner active and still allowed to read the variable. */
  active: boolean;
  state: AlertRuleState;
  /** When a held condition change may be sent (null: nothing held). */
  dueAt: number | null;
};

export type AlertEvaluator = {
  /** Loads every rule; listening starts at once (values before the load are not evaluated). */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Resolves once the rule announced by alert-rule.changed is reloaded (at once if it is not pending). */
  reloaded(ruleUuid: string): Promise<void>;
  /** Sends held messages whose interval has ended (also runs on a timer). */
  tick(): void;
  /** Tests move time instead of waiting. */
  setClock(now: () => number): void;
  /** Waits for state writes and deliveries in progress. */
  drain(): Promise<void>;
};

export function createAlertEvaluator(deps: {
  db: DbLike;
  events: EventBus;
  log: Logger;
  dispatch: NotificationDispatch;
  tickMs?: number;
}): AlertEvaluator {
  const { db, events, log, dispatch } = deps;
  let now = () => Date.now();
  const byNode = new Map<string, LiveRule[]>();
  const byUuid = new Map<string, LiveRule>();
  const held = new Set<LiveRule>();
  // One write chain per rule: its state rows land in the order they were decided.
  const writes = new Map<string, Promise<void>>();
  let timer: NodeJS.Timeout | null = null;

  async function drain() {
    while (pending.size) await Promise.all([...pending]);
    await dispatch.drain();
  }

  function toLive(ctx: AlertRuleContext): LiveRule {
    const { rule, node, unit, owner } = ctx;
    const p: Principal = {
      kind: "user",
      uuid: rule.userUuid,
      role: owner.role,
      login: "",
      scope: "session",
      tokenId: null,
    };
    const visible =
      canSee(p, unit.visibility, unit.creatorUuid) && canSee(p, node.visibility, unit.creatorUuid);
    const live: LiveRule = {
      uuid: rule.uuid,
      userUuid: rule.userUuid,
      nodeUuid: node.uuid,
      unitUuid: node.unitUuid,
      unitName: unit.name,
      topicName: node.topicName,
      limits: { min: rule.min, max: rule.max, hysteresis: rule.hysteresis },
      minIntervalMs: rule.minIntervalS * 1000,
      active: rule.enabled && visible && owner.status === "Active",
      state: {
        condition: rule.condition,
        sentCondition: rule.sentCondition,
        lastSentAt: rule.lastSentAt,
        lastValue: rule.lastValue,
        crossedLimit: rule.crossedLimit,
      },
      dueAt: null,
    };
    if (live.state.condition !== live.state.sentCondition) {
      live.dueAt = (live.state.lastSentAt?.getTime() ?? 0) + live.minIntervalMs;
    }
    return live;
  }

  function remove(rule: LiveRule) {
    byUuid.delete(rule.uuid);
    held.delete(rule);
    const list = byNode.get(rule.nodeUuid)?.filter((r) => r !== rule) ?? [];
    if (list.length) byNode.set(rule.nodeUuid, list);
    else byNode.delete(rule.nodeUuid);
  }

  function add(rule: LiveRule) {
    byUuid.set(rule.uuid, rule);
    byNode.set(rule.nodeUuid, [...(byNode.get(rule.nodeUuid) ?? []), rule]);
    if (rule.dueAt !== null) held.add(rule);
  }

  function inScope(rule: LiveRule, scope: RuleScope): boolean {
    if ("ruleUuid" in scope) return rule.uuid === scope.ruleUuid;
    if ("unitUuid" in scope) return rule.unitUuid === scope.unitUuid;
    if ("userUuid" in scope) return rule.userUuid === scope.userUuid;
    return true;
  }

  async function reload(scope: RuleScope) {
    const rows = await loadRuleContexts(db, scope);
    const previous = new Map<string, LiveRule>();
    for (const old of [...byUuid.values()]) {
      if (!inScope(old, scope)) continue;
      previous.set(old.uuid, old);
      remove(old);
    }
    for (const row of rows) {
      const fresh = toLive(row);
      // Memory is newer than the row while a state write is on its way.
      const old = previous.get(fresh.uuid) ?? byUuid.get(fresh.uuid);
      if (old) {
        remove(old);
        fresh.state = old.state;
        fresh.dueAt = old.dueAt;
      }
      add(fresh);
    }
  }

  function reloadLater(scope: RuleScope): Promise<void> {
    const p = reload(scope).catch((err: unknown) =>
      log.error({ err }, "alerts: reloading rules failed"),
    );
    track(p);
    return p;
  }

  // Rules change through the domain event (from this process or, in a cluster, another).
  const reloads = new Map<string, Promise<void>>();
  const onRuleChanged = ({ ruleUuid }: { ruleUuid: string }) => {
    const p = reloadLater({ ruleUuid }).finally(() => {
      if (reloads.get(ruleUuid) === p) reloads.delete(ruleUuid);
    });
    reloads.set(ruleUuid, p);
  };

  const pending = new Set<Promise<unknown>>();
  function track(p: Promise<unknown>) {
    pending.add(p);
    void p.finally(() => pending.delete(p));
  }

  function persist(rule: LiveRule) {
    const state = { ...rule.state };
    const prev = writes.get(rule.uuid) ?? Promise.resolve();
    const next = prev
      .then(() => saveRuleState(db, rule.uuid, state))
      .then(() => {
        events.emit("alert-rule.state-saved", { ruleUuid: rule.uuid });
      })
      .catch((err: unknown) => log.error({ err }, "alerts: saving a rule's state failed"));
    writes.set(rule.uuid, next);
    track(
      next.finally(() => {
        if (writes.get(rule.uuid) === next) writes.delete(rule.uuid);
      }),
    );
  }

  function send(rule: LiveRule, at: number) {
    const condition: AlertCondition = rule.state.condition;
    rule.state.sentCondition = condition;
    rule.state.lastSentAt = new Date(at);
    rule.dueAt = null;
    held.delete(rule);
    persist(rule);
    const message = conditionMessage(
      rule,
      condition,
      rule.state.lastValue,
      rule.state.crossedLimit,
      rule.limits,
    );
    track(
      dispatch.notify(
        rule.userUuid,
        {
          kind: condition === "firing" ? "threshold" : "back_to_normal",
          message,
          ruleUuid: rule.uuid,
          unitUuid: rule.unitUuid,
          nodeUuid: rule.nodeUuid,
        },
        new Date(at),
      ),
    );
  }

  function evaluate(rule: LiveRule, value: number, at: number) {
    const next = nextCondition(rule.state.condition, rule.limits, value);
    if (next.condition === rule.state.condition) {
      // A held message reports the latest value when it goes out.
      if (rule.dueAt !== null) rule.state.lastValue = value;
      return;
    }
    rule.state.condition = next.condition;
    rule.state.lastValue = value;
    rule.state.crossedLimit = next.limit;
    if (next.condition === rule.state.sentCondition) {
      // Back to what the user was last told, inside the interval: nothing to say.
      rule.dueAt = null;
      held.delete(rule);
      persist(rule);
      return;
    }
    const last = rule.state.lastSentAt?.getTime();
    if (last === undefined || at - last >= rule.minIntervalMs) {
      send(rule, at);
      return;
    }
    rule.dueAt = last + rule.minIntervalMs;
    held.add(rule);
    persist(rule);
  }

  function onValue({ nodeUuid, payload }: { nodeUuid: string; payload: Buffer }) {
    const rules = byNode.get(nodeUuid);
    if (!rules) return;
    const value = numericValue(payload);
    if (value === null) return;
    const at = now();
    for (const rule of rules) {
      if (!rule.active) continue;
      try {
        evaluate(rule, value, at);
      } catch (err) {
        log.error({ err, ruleUuid: rule.uuid }, "alerts: evaluating a rule failed");
      }
    }
  }

  function tick() {
    const at = now();
    for (const rule of [...held]) {
      if (rule.dueAt === null || rule.dueAt > at) continue;
      if (!rule.active || rule.state.condition === rule.state.sentCondition) {
        rule.dueAt = null;
        held.delete(rule);
        continue;
      }
      send(rule, at);
    }
  }

  // Cluster mode: another process decided this rule's state (its device publishes there).
  // Its state is taken as saved; a held message stays that process's to send.
  const onStateSaved = (e: { ruleUuid: string }) => {
    if (!events.fromOtherProcess(e)) return;
    const p = loadRuleContexts(db, { ruleUuid: e.ruleUuid })
      .then((rows) => {
        const old = byUuid.get(e.ruleUuid);
        if (old) remove(old);
        for (const row of rows) {
          const fresh = toLive(row);
          fresh.dueAt = null;
          add(fresh);
        }
      })
      .catch((err: unknown) => log.error({ err }, "alerts: taking a rule's state failed"));
    track(p);
  };

  // Visibility or names changed (variable, unit, repo clamp), the owner blocked or gone.
  const onUnitChanged = ({ unitUuid }: { unitUuid: string }) => reloadLater({ unitUuid });
  const onUserChanged = ({ userUuid }: { userUuid: string }) => reloadLater({ userUuid });
  const onUnitDeleted = ({ unitUuid }: { unitUuid: string }) => {
    for (const rule of [...byUuid.values()]) if (rule.unitUuid === unitUuid) remove(rule);
  };
  const onNodesChanged = ({ removed }: { removed: string[] }) => {
    for (const nodeUuid of removed) for (const rule of byNode.get(nodeUuid) ?? []) remove(rule);
  };

  function subscribe(method: "on" | "off") {
    events[method]("unit-node.value-seen", onValue);
    events[method]("alert-rule.changed", onRuleChanged);
    events[method]("alert-rule.state-saved", onStateSaved);
    events[method]("unit.updated", onUnitChanged);
    events[method]("unit-node.updated", onUnitChanged);
    events[method]("unit.deleted", onUnitDeleted);
    events[method]("unit-nodes.changed", onNodesChanged);
    events[method]("user.blocked", onUserChanged);
    events[method]("user.revoked", onUserChanged);
  }

  return {
    async start() {
      subscribe("on");
      await reload({ all: true });
      timer = setInterval(tick, deps.tickMs ?? 1000);
      timer.unref();
    },
    async stop() {
      subscribe("off");
      if (timer) clearInterval(timer);
      timer = null;
      await drain();
    },
    reloaded: (ruleUuid) => reloads.get(ruleUuid) ?? Promise.resolve(),
    tick,
    setClock(fn) {
      now = fn;
    },
    drain,
  };
}
