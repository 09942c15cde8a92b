import type { DeviceEnv } from "./unit-files.ts";

// The REST calls a device makes (device-protocol §5): base
// `{PU_HTTP_TYPE}://{PU_DOMAIN}{PU_APP_PREFIX}{PU_API_ACTUAL_PREFIX}`, the raw unit JWT in
// `x-auth-token`, and the unit's own uuid in every path.

export type DeviceRest = {
  env(): Promise<Record<string, unknown>>;
  schema(): Promise<Record<string, unknown>>;
  /** The firmware tgz exactly as the MicroPython client asks for it (wbits 9, level 9). */
  firmwareTgz(): Promise<Buffer>;
};

export class DeviceRestError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/**
 * `baseUrl` replaces `{PU_HTTP_TYPE}://{PU_DOMAIN}` when the domain in env.json is not
 * where this process reaches the instance (tests, a tunnel, a container network).
 */
export function createDeviceRest(env: DeviceEnv, unitUuid: string, baseUrl?: string): DeviceRest {
  const origin = (baseUrl ?? `${env.PU_HTTP_TYPE}://${env.PU_DOMAIN}`).replace(/\/+$/, "");
  const api = `${origin}${env.PU_APP_PREFIX}${env.PU_API_ACTUAL_PREFIX}`;

  async function get(pathAndQuery: string): Promise<Response> {
    const res = await fetch(`${api}${pathAndQuery}`, {
      headers: { "x-auth-token": env.PU_AUTH_TOKEN },
    });
    if (!res.ok) {
      const text = await res.text().catch(() => "");
      throw new DeviceRestError(
        res.status,
        `GET ${pathAndQuery}: ${res.status} ${text.slice(0, 300)}`,
      );
    }
    return res;
  }
  const json = async (p: string) => (await (await get(p)).json()) as Record<string, unknown>;

  return {
    env: () => json(`/units/env/${unitUuid}`),
    schema: () => json(`/units/get_current_schema/${unitUuid}`),
    async firmwareTgz() {
      const res = await get(`/units/firmware/tgz/${unitUuid}?wbits=9&level=9`);
      return Buffer.from(await res.arrayBuffer());
    },
  };
}
