import { baseTopic } from "../broker/topics.ts";
import type { AppDeps } from "../http/types.ts";
import { loadUnitTemplate } from "../repos/unit-template.ts";

// Commands the instance sends to a unit on its input base topics (device-protocol §4).
// The payloads are a wire contract with the published device clients: exact keys,
// compact JSON, and a command goes out only when the unit's template lists its topic.

export const COMMANDS = {
  Update: "update/pepeunit",
  EnvUpdate: "env_update/pepeunit",
  SchemaUpdate: "schema_update/pepeunit",
  LogSync: "log_sync/pepeunit",
} as const;

export type CommandName = keyof typeof COMMANDS;
export const COMMAND_NAMES = Object.keys(COMMANDS) as CommandName[];

/** What a command needs to know about its unit. */
export type CommandTarget = { uuid: string; repoUuid: string; commit: string };

export type CommandOutcome = "sent" | "not-listed";

/**
 * The exact payload: `{"COMMAND":"Update","PU_COMMIT_VERSION":"<sha>"}` (the sha the env
 * and the archive carry, or the client loops), `{"COMMAND":"EnvUpdate"}`, and so on.
 */
export function commandPayload(command: CommandName, commit: string): string {
  return command === "Update"
    ? JSON.stringify({ COMMAND: "Update", PU_COMMIT_VERSION: commit })
    : JSON.stringify({ COMMAND: command });
}

/** Whether the template of the unit's target version lists the command's topic. */
export async function commandListed(
  deps: Pick<AppDeps, "git">,
  unit: CommandTarget,
  command: CommandName,
): Promise<boolean> {
  const template = await loadUnitTemplate(deps.git, unit.repoUuid, unit.commit);
  return template.schema.input_base_topic.includes(COMMANDS[command]);
}

/**
 * Publishes the command on `D/input_base_topic/U/<name>` (QoS 1: a connected device
 * acknowledges it). "not-listed" when the template does not name the topic; a broker
 * failure is thrown to the caller.
 */
export async function sendCommand(
  deps: Pick<AppDeps, "git" | "broker" | "config">,
  unit: CommandTarget,
  command: CommandName,
): Promise<CommandOutcome> {
  if (!(await commandListed(deps, unit, command))) return "not-listed";
  const topic = baseTopic(deps.config.domain, "input_base_topic", unit.uuid, COMMANDS[command]);
  await deps.broker.publish(topic, commandPayload(command, unit.commit), { qos: 1 });
  return "sent";
}
