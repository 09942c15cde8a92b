import type { ChatUser } from "./telegram.store.ts";

// The bot's view of alert rules (src/alerts/ lives on its own): listed by /alerts and
// switched on or off by button. Absent, /alerts says alerts are not available.

export type AlertRuleSummary = { uuid: string; label: string; enabled: boolean };

export type AlertsPort = {
  /** The user's own rules, as the REST list shows them. */
  list(user: ChatUser): Promise<AlertRuleSummary[]>;
  /** false when the rule is not the user's (or gone). */
  setEnabled(user: ChatUser, ruleUuid: string, enabled: boolean): Promise<boolean>;
};
