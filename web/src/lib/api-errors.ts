// The API answers every error as {"detail": ...}: a sentence, or for a 422 from
// validation a list of {loc, msg}. These helpers turn either into what a form shows.

export type FieldErrors = Record<string, string>;

type Issue = { loc?: unknown; msg?: unknown };

function isIssueList(detail: unknown): detail is Issue[] {
  return Array.isArray(detail) && detail.every((d) => typeof d === "object" && d !== null);
}

/** One sentence for a banner or an inline message. */
export function errorText(detail: unknown, status?: number): string {
  if (typeof detail === "string" && detail) return detail;
  if (isIssueList(detail) && detail.length > 0) {
    return detail
      .map((i) => {
        const loc = Array.isArray(i.loc) ? i.loc.join(".") : "";
        return loc ? `${loc}: ${String(i.msg)}` : String(i.msg);
      })
      .join("; ");
  }
  if (status === 401) return "Please log in again.";
  if (status === 403) return "You are not allowed to do this.";
  if (status === 404) return "Not found (or not visible to you).";
  return status ? `The server answered ${status}.` : "The server could not be reached.";
}

/** Field name → message, from a validation 422 (loc[0] is the body field). */
export function fieldErrorsOf(detail: unknown): FieldErrors {
  const out: FieldErrors = {};
  if (!isIssueList(detail)) return out;
  for (const issue of detail) {
    const loc = Array.isArray(issue.loc) ? issue.loc.map(String) : [];
    const key = loc.join(".");
    if (key && !(key in out)) out[key] = String(issue.msg);
  }
  return out;
}

/** An API refusal carried as an exception: status, the detail as text, and per-field messages. */
export class ApiError extends Error {
  readonly status: number;
  readonly detail: unknown;
  readonly fields: FieldErrors;
  constructor(status: number, detail: unknown) {
    super(errorText(detail, status));
    this.status = status;
    this.detail = detail;
    this.fields = fieldErrorsOf(detail);
  }
}

/** Whether an error says the endpoint itself does not exist (not a missing entity). */
export function isMissingEndpoint(err: unknown): boolean {
  return (
    err instanceof ApiError &&
    (err.status === 405 || (err.status === 404 && err.detail === "not found"))
  );
}
