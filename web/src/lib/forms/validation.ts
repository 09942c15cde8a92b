import type { FieldErrors } from "../api-errors.ts";

// Checks mirror the API's own validators (see the OpenAPI document) so most
// mistakes are caught before a round trip; the server stays the authority.

export const LOGIN_RE = /^[A-Za-z0-9_.-]{3,64}$/;
export const UNIT_NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;
export const COMMIT_RE = /^[0-9a-fA-F]{7,40}$/;
export const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export const VISIBILITIES = ["Public", "Internal", "Private"] as const;
export type Visibility = (typeof VISIBILITIES)[number];

/** Levels not more open than `max` (a child is never more open than its parent). */
export function visibilitiesUpTo(max: Visibility): Visibility[] {
  return VISIBILITIES.slice(VISIBILITIES.indexOf(max));
}

export function hasErrors(errors: FieldErrors): boolean {
  return Object.keys(errors).length > 0;
}
