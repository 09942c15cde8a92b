import type { Principal } from "../access/principal.ts";
import { HttpError, unprocessable } from "../http/errors.ts";
import type { AppDeps } from "../http/types.ts";
import { otaOf } from "../ota/ota.service.ts";
import { loadUnitForDevice } from "../units/units.access.ts";
import { COMMANDS, type CommandName, commandListed, sendCommand } from "./commands.service.ts";

// Apart from commands.service.ts, which OTA itself imports: this one imports OTA.

/**
 * A command asked for by the unit itself, its creator or an admin (REST and the Telegram
 * bot alike): 404 for anyone else, 422 when the template does not list it, 503 when the
 * broker could not publish. Update goes through the OTA flow, so it is tracked too.
 */
export async function runCommand(
  deps: AppDeps,
  principal: Principal,
  unitUuid: string,
  command: CommandName,
): Promise<void> {
  const unit = await loadUnitForDevice(deps.database.db, principal, unitUuid);
  // Checked before anything is sent or recorded: an unlisted command changes nothing.
  if (!(await commandListed(deps, unit, command))) {
    throw unprocessable(`the unit's schema does not list ${COMMANDS[command]} in input_base_topic`);
  }
  if (command === "Update") {
    const result = await otaOf(deps).requestUpdate(unit.uuid);
    if (result.status === "Error") throw new HttpError(503, result.error);
    return;
  }
  try {
    await sendCommand(deps, unit, command);
  } catch (err) {
    throw new HttpError(503, `publish failed: ${err instanceof Error ? err.message : String(err)}`);
  }
}
