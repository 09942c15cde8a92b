import createClient from "openapi-fetch";
import { ApiError } from "./api-errors.ts";
import type { components, paths } from "./api-types.ts";

// One typed client for the whole SPA (types generated from the server's
// OpenAPI document by `npm run web:types`). The session's token rides on every
// request as x-auth-token.

export type Schemas = components["schemas"];
export type User = Schemas["User"];
export type Repo = Schemas["Repo"];
export type Unit = Schemas["Unit"];
export type UnitNode = Schemas["UnitNode"];
export type UnitNodeEdge = Schemas["UnitNodeEdge"];
/** A link whose both ends the viewer may see (input_uuid is null only in the owner's view). */
export type VisibleLink = UnitNodeEdge & { input_uuid: string };
export type RepoVersions = Schemas["RepoVersions"];
export type InstanceSettings = Schemas["InstanceSettings"];
export type Visibility = Schemas["Visibility"];

export const API_BASE = "/pepeunit/api/v1";

let currentToken: string | null = null;

/** Set by the session; read by every request. */
export function setApiToken(token: string | null): void {
  currentToken = token;
}

export const api = createClient<paths>({ baseUrl: API_BASE });
api.use({
  onRequest({ request }) {
    if (currentToken) request.headers.set("x-auth-token", currentToken);
    return request;
  },
});

type Result<T> = { data?: T; error?: unknown; response: Response };

/** The data of a successful call, or an ApiError with the server's detail. */
export async function unwrap<T>(call: Promise<Result<T>>): Promise<T> {
  let res: Result<T>;
  try {
    res = await call;
  } catch {
    throw new ApiError(0, "The server could not be reached.");
  }
  if (res.response.ok) return res.data as T;
  const detail = (res.error as { detail?: unknown } | undefined)?.detail ?? res.error;
  throw new ApiError(res.response.status, detail);
}

/**
 * A request with any body (YAML, CSV, a file) and the token; the answer parsed as JSON
 * when it is JSON, else its text. Failures throw an ApiError with the server's detail.
 */
export async function callRaw(
  method: "GET" | "POST" | "PATCH" | "DELETE",
  path: string,
  body?: BodyInit,
  contentType?: string,
): Promise<unknown> {
  const headers: Record<string, string> = {};
  if (currentToken) headers["x-auth-token"] = currentToken;
  if (contentType) headers["content-type"] = contentType;
  let res: Response;
  try {
    res = await fetch(`${API_BASE}${path}`, { method, headers, body });
  } catch {
    throw new ApiError(0, "The server could not be reached.");
  }
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {}
  if (!res.ok) {
    const detail = (parsed as { detail?: unknown } | null)?.detail ?? parsed;
    throw new ApiError(res.status, detail);
  }
  return parsed;
}

/**
 * An endpoint of the device plane that may not exist on this instance yet
 * (not in the generated types): untyped on purpose, and callers hide their
 * control when it answers 404/405 (see isMissingEndpoint).
 */
export async function callOptional(
  method: "GET" | "POST" | "PATCH" | "DELETE",
  path: string,
  body?: unknown,
): Promise<unknown> {
  return body === undefined
    ? callRaw(method, path)
    : callRaw(method, path, JSON.stringify(body), "application/json");
}

/** Every page of a list endpoint (limit ≤ 500 per call). */
export async function fetchAll<T>(
  page: (limit: number, offset: number) => Promise<{ count: number; items: T[] }>,
): Promise<T[]> {
  const limit = 500;
  const out: T[] = [];
  for (let offset = 0; ; offset += limit) {
    const { count, items } = await page(limit, offset);
    out.push(...items);
    if (items.length < limit || out.length >= count) return out;
  }
}

/**
 * Downloads an authenticated file (the browser cannot add the token to a plain link),
 * named as the server says unless `name` is given.
 */
export async function downloadFile(
  path: string,
  fallbackName: string,
  name?: string,
): Promise<void> {
  const headers: Record<string, string> = {};
  if (currentToken) headers["x-auth-token"] = currentToken;
  const res = await fetch(`${API_BASE}${path}`, { headers });
  if (!res.ok) {
    let detail: unknown = null;
    try {
      detail = ((await res.json()) as { detail?: unknown }).detail;
    } catch {}
    throw new ApiError(res.status, detail);
  }
  const disposition = res.headers.get("content-disposition") ?? "";
  const fileName = name ?? /filename="?([^";]+)"?/.exec(disposition)?.[1] ?? fallbackName;
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = fileName;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
