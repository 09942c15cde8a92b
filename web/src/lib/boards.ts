import type { components } from "./api-types.ts";

// The boards page without runes (testable in Node): the editor's drafts ↔ the API's
// items, moving items, the variable picker's search, and where a refusal belongs.

export type Board = components["schemas"]["Board"];
export type BoardItem = components["schemas"]["BoardItem"];
export type BoardItemBody = { unit_node_uuid: string; label?: string; values?: string[] };

/** One item in the editor: text fields, plus what the board says about its variable. */
export type DraftItem = {
  /** Stable across moves (a variable may sit on a board twice). */
  key: string;
  unit_node_uuid: string;
  label: string;
  /** The buttons, comma-separated (Inputs only). */
  values: string;
  /** The buttons as read: kept while the field is untouched (a value may hold a comma). */
  readValues: string[];
  type: "Input" | "Output" | null;
  title: string;
  available: boolean;
};

/** Where a variable comes from, as the picker and the editor name it. */
export type PickerVariable = {
  uuid: string;
  type: "Input" | "Output";
  topic_name: string;
  unit_name: string;
};

export const MAX_ITEMS = 30;
export const MAX_VALUES = 8;

let nextKey = 0;
const newKey = () => `item-${++nextKey}`;

export function titleOf(v: { unit_name: string | null; topic_name: string | null }): string {
  return v.unit_name && v.topic_name ? `${v.unit_name} · ${v.topic_name}` : "Unavailable variable";
}

/** What a board item is called on the board: its label, else unit · variable. */
export function itemName(item: BoardItem): string {
  return item.label ?? titleOf(item);
}

export function draftOf(item: BoardItem): DraftItem {
  return {
    key: newKey(),
    unit_node_uuid: item.unit_node_uuid,
    label: item.label ?? "",
    values: item.values.join(", "),
    readValues: item.values,
    type: item.type,
    title: titleOf(item),
    available: item.available,
  };
}

export function draftOfVariable(v: PickerVariable): DraftItem {
  return {
    key: newKey(),
    unit_node_uuid: v.uuid,
    label: "",
    values: "",
    readValues: [],
    type: v.type,
    title: titleOf(v),
    available: true,
  };
}

/** An item whose variable has gone since the board was read: nothing of it shown. */
export function goneItem(item: BoardItem): BoardItem {
  return {
    ...item,
    available: false,
    type: null,
    unit_name: null,
    topic_name: null,
    last_value: null,
    last_value_datetime: null,
  };
}

/** The newer of a live value and the one the board was read with (null: none yet). */
export function newerValue(
  known: { value: string; at: string } | undefined,
  item: Pick<BoardItem, "last_value" | "last_value_datetime">,
): { value: string; at: string } | null {
  const read =
    item.last_value === null
      ? null
      : { value: item.last_value, at: item.last_value_datetime ?? "" };
  if (!known) return read;
  if (!read) return known;
  return known.at >= read.at ? known : read;
}

/** "on, off,,  auto" → ["on", "off", "auto"]: empty entries and repeats dropped. */
export function parseValues(text: string): string[] {
  const out: string[] = [];
  for (const part of text.split(",")) {
    const v = part.trim();
    if (v && !out.includes(v)) out.push(v);
  }
  return out;
}

/** The buttons a draft stands for: as read while its field is untouched. */
export function draftValues(d: DraftItem): string[] {
  if (d.type !== "Input") return [];
  return d.values === d.readValues.join(", ") ? d.readValues : parseValues(d.values);
}

/** An item as the API takes it back, unchanged. */
export function itemBody(item: BoardItem): BoardItemBody {
  return {
    unit_node_uuid: item.unit_node_uuid,
    ...(item.label ? { label: item.label } : {}),
    ...(item.values.length ? { values: item.values } : {}),
  };
}

/** The API's items from the editor's drafts (no label, no values: left out). */
export function itemsBody(drafts: DraftItem[]): BoardItemBody[] {
  return drafts.map((d) => {
    const label = d.label.trim();
    const values = draftValues(d);
    return {
      unit_node_uuid: d.unit_node_uuid,
      ...(label ? { label } : {}),
      ...(values.length ? { values } : {}),
    };
  });
}

/** Per-item problems the browser can see before asking (the server has the last word). */
export function draftErrors(drafts: DraftItem[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const d of drafts) {
    if (d.label.trim().length > 64) out[d.key] = "A label has at most 64 characters.";
    const values = draftValues(d);
    if (values.length > MAX_VALUES) out[d.key] = `At most ${MAX_VALUES} buttons.`;
    else if (values.some((v) => v.length > 64)) out[d.key] = "A button has at most 64 characters.";
  }
  return out;
}

/** The list with item `i` moved by `delta` places (unchanged at either end). */
export function moved<T>(list: readonly T[], i: number, delta: -1 | 1): T[] {
  const j = i + delta;
  const a = list[i];
  const b = list[j];
  if (a === undefined || b === undefined) return [...list];
  const out = [...list];
  out[i] = b;
  out[j] = a;
  return out;
}

/** Variables whose unit or name holds every word of the query (case-insensitive), by unit then name. */
export function searchVariables<T extends PickerVariable>(
  all: T[],
  query: string,
  limit = 20,
): T[] {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  return all
    .filter((v) => {
      const text = `${v.unit_name} ${v.topic_name} ${v.type}`.toLowerCase();
      return words.every((w) => text.includes(w));
    })
    .sort(
      (a, b) => a.unit_name.localeCompare(b.unit_name) || a.topic_name.localeCompare(b.topic_name),
    )
    .slice(0, limit);
}

export type BoardErrors = { name?: string; items: Record<number, string>; form?: string };

type Issue = { loc?: unknown; msg?: unknown };

/** Which field a path names: "name", "items.3…" (a body path may start with "json"). */
function place(path: string[], msg: string, out: BoardErrors): boolean {
  const p = path[0] === "json" || path[0] === "body" ? path.slice(1) : path;
  if (p[0] === "name") {
    out.name ??= msg;
    return true;
  }
  if (p[0] === "items" && p[1] !== undefined && /^\d+$/.test(p[1])) {
    const n = Number(p[1]);
    const what = p[2] === "label" ? "Label: " : p[2] === "values" ? "Buttons: " : "";
    out.items[n] ??= `${what}${msg}`;
    return true;
  }
  return false;
}

/**
 * A refusal of a create or an edit, next to what it concerns: the name, the n-th item
 * ("items.2: unit node not found", or a validation issue at ["items", "2", "label"]),
 * else the form as a whole.
 */
export function boardErrors(detail: unknown, message: string): BoardErrors {
  const out: BoardErrors = { items: {} };
  if (typeof detail === "string") {
    const m = /^\s*((?:name|items\.\d+)[\w.]*):\s*(.+)$/s.exec(detail);
    if (m?.[1] && m[2] && place(m[1].split("."), m[2], out)) return out;
    out.form = message;
    return out;
  }
  if (Array.isArray(detail)) {
    const rest: string[] = [];
    for (const issue of detail as Issue[]) {
      const loc = Array.isArray(issue?.loc) ? issue.loc.map(String) : [];
      const msg = String(issue?.msg ?? "");
      if (!place(loc, msg, out)) rest.push(loc.length ? `${loc.join(".")}: ${msg}` : msg);
    }
    if (rest.length) out.form = rest.join("; ");
    return out;
  }
  out.form = message;
  return out;
}
