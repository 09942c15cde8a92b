import { describe, expect, it } from "vitest";
import {
  type BoardItem,
  boardErrors,
  draftErrors,
  draftOf,
  draftOfVariable,
  goneItem,
  itemBody,
  itemName,
  itemsBody,
  moved,
  newerValue,
  parseValues,
  searchVariables,
} from "../../web/src/lib/boards.ts";
import { hrefOf, parseHash } from "../../web/src/lib/routes.ts";

// The boards page's logic: routes, the editor's drafts ↔ the API's items, moving,
// the variable search, which value a read-out shows, and where a refusal belongs.

const U1 = "0b4f3c2e-1111-4222-8333-444455556661";
const U2 = "0b4f3c2e-1111-4222-8333-444455556662";

function item(over: Partial<BoardItem> = {}): BoardItem {
  return {
    unit_node_uuid: U1,
    label: null,
    values: [],
    available: true,
    type: "Output",
    unit_name: "greenhouse",
    topic_name: "temperature",
    last_value: null,
    last_value_datetime: null,
    ...over,
  };
}

describe("board routes", () => {
  it("#/boards and #/boards/<uuid> round-trip; anything else is the graph", () => {
    expect(parseHash("#/boards")).toEqual({ name: "boards", uuid: null });
    expect(parseHash(`#/boards/${U1.toUpperCase()}`)).toEqual({ name: "boards", uuid: U1 });
    expect(hrefOf({ name: "boards", uuid: U1 })).toBe(`#/boards/${U1}`);
    expect(hrefOf({ name: "boards", uuid: null })).toBe("#/boards");
    expect(parseHash("#/boards/nope")).toEqual({ name: "graph", focus: null });
  });
});

describe("board drafts", () => {
  it("values are split on commas, trimmed, without empties or repeats", () => {
    expect(parseValues(" on, off,, on ,auto ")).toEqual(["on", "off", "auto"]);
    expect(parseValues("  ")).toEqual([]);
  });

  it("an item round-trips through its draft; empty label and values are left out", () => {
    const input = item({ unit_node_uuid: U2, type: "Input", label: "Fan", values: ["on", "off"] });
    expect(itemsBody([draftOf(input), draftOf(item())])).toEqual([
      { unit_node_uuid: U2, label: "Fan", values: ["on", "off"] },
      { unit_node_uuid: U1 },
    ]);
    // An Output never sends buttons, whatever its field holds.
    const out = { ...draftOf(item()), values: "on", label: "  " };
    expect(itemsBody([out])).toEqual([{ unit_node_uuid: U1 }]);
  });

  it("buttons read with a comma in them survive an edit that leaves their field alone", () => {
    const input = item({ type: "Input", values: ["1,5", "2"] });
    const d = draftOf(input);
    expect(itemsBody([d])[0]?.values).toEqual(["1,5", "2"]);
    expect(itemsBody([{ ...d, values: "1, 2" }])[0]?.values).toEqual(["1", "2"]);
    expect(itemBody(input)).toEqual({ unit_node_uuid: U1, values: ["1,5", "2"] });
    expect(itemBody(item({ label: "T" }))).toEqual({ unit_node_uuid: U1, label: "T" });
  });

  it("a variable from the picker starts without label or buttons", () => {
    const d = draftOfVariable({ uuid: U2, type: "Input", topic_name: "relay", unit_name: "pump" });
    expect(d).toMatchObject({ unit_node_uuid: U2, label: "", values: "", title: "pump · relay" });
    expect(d.key).not.toBe(
      draftOfVariable({ ...d, uuid: U2, type: "Input", topic_name: "relay", unit_name: "pump" })
        .key,
    );
  });

  it("too many or too long buttons, and too long a label, are caught before sending", () => {
    const d = draftOf(item({ type: "Input" }));
    expect(draftErrors([{ ...d, values: "a,b,c,d,e,f,g,h" }])).toEqual({});
    expect(draftErrors([{ ...d, values: "a,b,c,d,e,f,g,h,i" }])[d.key]).toMatch(/8/);
    expect(draftErrors([{ ...d, values: "x".repeat(65) }])[d.key]).toMatch(/64/);
    expect(draftErrors([{ ...d, label: "x".repeat(65) }])[d.key]).toMatch(/label/i);
  });

  it("moving swaps with the neighbour and stays put at either end", () => {
    expect(moved(["a", "b", "c"], 2, -1)).toEqual(["a", "c", "b"]);
    expect(moved(["a", "b", "c"], 0, 1)).toEqual(["b", "a", "c"]);
    expect(moved(["a", "b", "c"], 0, -1)).toEqual(["a", "b", "c"]);
    expect(moved(["a", "b", "c"], 2, 1)).toEqual(["a", "b", "c"]);
  });

  it("an item gone since the board was read keeps its place and label, nothing else", () => {
    const gone = goneItem(item({ label: "Temp", last_value: "20", last_value_datetime: "t" }));
    expect(gone).toMatchObject({ label: "Temp", available: false, type: null, last_value: null });
    expect(gone.unit_name ?? gone.topic_name ?? gone.last_value_datetime).toBeNull();
  });

  it("an item is called by its label, else unit · variable, and a gone one says so", () => {
    expect(itemName(item({ label: "Temp" }))).toBe("Temp");
    expect(itemName(item())).toBe("greenhouse · temperature");
    expect(itemName(item({ available: false, unit_name: null, topic_name: null }))).toBe(
      "Unavailable variable",
    );
  });
});

describe("variable search", () => {
  const all = [
    { uuid: "1", type: "Output" as const, topic_name: "temperature", unit_name: "sensor-b" },
    { uuid: "2", type: "Input" as const, topic_name: "relay", unit_name: "pump" },
    { uuid: "3", type: "Output" as const, topic_name: "humidity", unit_name: "sensor-a" },
    { uuid: "4", type: "Output" as const, topic_name: "temperature", unit_name: "sensor-a" },
  ];
  it("every word must match unit, variable or type; sorted by unit then variable; capped", () => {
    expect(searchVariables(all, "").map((v) => v.uuid)).toEqual(["2", "3", "4", "1"]);
    expect(searchVariables(all, "TEMP sensor-a").map((v) => v.uuid)).toEqual(["4"]);
    expect(searchVariables(all, "input").map((v) => v.uuid)).toEqual(["2"]);
    expect(searchVariables(all, "sensor", 2)).toHaveLength(2);
    expect(searchVariables(all, "nothing")).toEqual([]);
  });
});

describe("read-out value", () => {
  it("the newer of the live value and the board's", () => {
    const read = item({ last_value: "20", last_value_datetime: "2026-01-01T10:00:00.000Z" });
    expect(newerValue(undefined, read)).toEqual({ value: "20", at: "2026-01-01T10:00:00.000Z" });
    expect(newerValue({ value: "21", at: "2026-01-01T10:00:01.000Z" }, read)?.value).toBe("21");
    expect(newerValue({ value: "19", at: "2026-01-01T09:00:00.000Z" }, read)?.value).toBe("20");
    expect(newerValue({ value: "5", at: "x" }, item())?.value).toBe("5");
    expect(newerValue(undefined, item())).toBeNull();
  });
});

describe("board refusals", () => {
  it("a service sentence naming an item goes to that item", () => {
    expect(boardErrors("items.2: unit node not found", "x")).toEqual({
      items: { 2: "unit node not found" },
    });
  });
  it("validation issues go to the name or the item (label, buttons); others to the form", () => {
    const detail = [
      { loc: ["name"], msg: "Too small" },
      { loc: ["items", "1", "values", "0"], msg: "Too big" },
      { loc: ["json", "items", "0", "label"], msg: "control characters are not allowed" },
      { loc: ["items"], msg: "Too many" },
    ];
    expect(boardErrors(detail, "x")).toEqual({
      name: "Too small",
      items: { 0: "Label: control characters are not allowed", 1: "Buttons: Too big" },
      form: "items: Too many",
    });
  });
  it("anything else is the form's", () => {
    expect(boardErrors("board not found", "board not found")).toEqual({
      items: {},
      form: "board not found",
    });
    expect(boardErrors(null, "The server could not be reached.").form).toMatch(/reached/);
  });
});
