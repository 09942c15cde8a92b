import { API_BASE } from "./api.ts";

// Endpoints of the device plane arrive over time. The server's OpenAPI
// document says which exist; controls for the others stay hidden. A call that
// still answers 404/405 hides its control too (see isMissingEndpoint).

export class Capabilities {
  paths = $state.raw<Record<string, string[]>>({});
  loaded = $state(false);
  /** Endpoints found missing at run time (404/405), hidden from then on. */
  missing = $state.raw<Set<string>>(new Set());

  async load(): Promise<void> {
    try {
      const res = await fetch(`${API_BASE}/openapi.json`);
      const doc = (await res.json()) as { paths?: Record<string, Record<string, unknown>> };
      const out: Record<string, string[]> = {};
      for (const [p, ops] of Object.entries(doc.paths ?? {})) out[p] = Object.keys(ops);
      this.paths = out;
    } catch {
      this.paths = {};
    }
    this.loaded = true;
  }

  /** e.g. has("post", "/units/{uuid}/update") */
  has(method: string, path: string): boolean {
    const key = `${method.toLowerCase()} ${path}`;
    if (this.missing.has(key)) return false;
    return this.paths[path]?.includes(method.toLowerCase()) ?? false;
  }

  markMissing(method: string, path: string): void {
    this.missing = new Set([...this.missing, `${method.toLowerCase()} ${path}`]);
  }
}

export const capabilities = new Capabilities();

/** The optional endpoints the UI knows how to use. */
export const OPTIONAL = {
  unitUpdate: ["post", "/units/{uuid}/update"],
  sendCommand: ["post", "/units/send_command_to_input_base_topic/{uuid}"],
  unitLogs: ["get", "/units/{uuid}/logs"],
  setInput: ["patch", "/unit_nodes/set_state_input/{uuid}"],
  standardRepos: ["post", "/admin/standard_repos"],
} as const;
