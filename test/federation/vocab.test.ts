import { Add } from "@fedify/vocab";
import { Temporal } from "@js-temporal/polyfill";
import { describe, expect, it } from "vitest";
import { Reading, ReadingBatch, ReadingTable } from "../../federation-vocab/vocab.ts";
import {
  parseBatch,
  ReadingsAdd,
  serializeBatch,
  serializeTable,
  UnsupportedReadingFormat,
} from "../../src/federation/readings.ts";

// The project's ActivityStreams extension, generated from federation-vocab/*.yaml by
// Fedify's vocabulary tools: serialized and parsed back, alone and inside an Add.

describe("federation vocabulary (generated)", () => {
  it("a Reading round-trips through JSON-LD", async () => {
    const r = new Reading({
      variable: new URL("https://b.example/ap/actors/0b0e7c8e-5a1a-4f5e-9b9a-2f0e3f1c2d3e"),
      value: "21.5",
      observedTime: Temporal.Instant.from("2026-01-02T03:04:05.678Z"),
      sequenceNumber: 1_790_000_000_000_123,
    });
    const json = (await r.toJsonLd()) as Record<string, unknown>;
    expect(json.type).toBe("Reading");
    expect(json.value).toBe("21.5");
    const back = await Reading.fromJsonLd(json);
    expect(back.variable?.href).toBe(r.variable?.href);
    expect(back.value).toBe("21.5");
    expect(back.observedTime?.toString()).toBe("2026-01-02T03:04:05.678Z");
    expect(back.sequenceNumber).toBe(1_790_000_000_000_123);
  });

  it("a batch keeps its readings in order, text and binary payloads alike", async () => {
    const variable = new URL("https://b.example/ap/actors/v");
    const payloads = [Buffer.from("a"), Buffer.from([0, 255, 7]), Buffer.from("ü")];
    const json = await serializeBatch(
      payloads.map((p, i) => ({ variable, payload: p, observedAt: 1_000 + i, sequence: 10 + i })),
    );
    expect(json.type).toEqual(["Object", "ReadingBatch"]);
    const batch = await ReadingBatch.fromJsonLd(json);
    expect(batch.readings.map((r) => r.sequenceNumber)).toEqual([10, 11, 12]);
    expect(batch.readings[1]?.encoding).toBe("base64");
    // Inside an Add, as peers receive it.
    const add = new ReadingsAdd({
      id: new URL("https://b.example/ap/activities/1"),
      actor: new URL("https://b.example/ap/actors/instance"),
    });
    add.batchJson = json;
    const wire = await add.toJsonLd({ format: "compact" });
    // Fedify's own parser accepts the envelope…
    expect(await Add.fromJsonLd(wire)).toBeInstanceOf(Add);
    // …and the generated classes read the readings back.
    const readings = await parseBatch(wire);
    expect(readings?.map((r) => r.sequence)).toEqual([10, 11, 12]);
    expect(readings?.map((r) => r.payload)).toEqual(payloads);
  });

  it("anything that is not a ReadingBatch yields no readings", async () => {
    expect(
      await parseBatch({
        "@context": "https://www.w3.org/ns/activitystreams",
        type: "Add",
        object: { type: "Note" },
      }),
    ).toBeNull();
    expect(await parseBatch(null)).toBeNull();
  });

  it("format 2: one ReadingTable node for the batch, readings back in order", async () => {
    const v1 = new URL("https://b.example/ap/actors/v1");
    const v2 = new URL("https://b.example/ap/actors/v2");
    const readings = [
      { variable: v1, payload: Buffer.from("a"), observedAt: 1_000, sequence: 10 },
      { variable: v2, payload: Buffer.from([0, 255, 7]), observedAt: 1_001, sequence: 20 },
      { variable: v1, payload: Buffer.from("ü"), observedAt: 1_002, sequence: 11 },
      { variable: v2, payload: Buffer.from(""), observedAt: 1_003, sequence: 21 },
    ];
    const json = await serializeTable(readings);
    expect(json.type).toEqual(["Object", "ReadingTable"]);
    // One node: the readings are a string property, not nested nodes.
    expect(typeof json.readingColumns).toBe("string");
    const table = await ReadingTable.fromJsonLd(json);
    expect(table.formatVersion).toBe(2);
    expect(table.variables.map((u) => u.href)).toEqual([v1.href, v2.href]);
    const add = new ReadingsAdd({
      id: new URL("https://b.example/ap/activities/2"),
      actor: new URL("https://b.example/ap/actors/instance"),
    });
    add.batchJson = json;
    const wire = await add.toJsonLd({ format: "compact" });
    expect(await Add.fromJsonLd(wire)).toBeInstanceOf(Add);
    const back = await parseBatch(wire);
    expect(back?.map((r) => [r.variable.href, r.sequence, r.observedAt])).toEqual(
      readings.map((r) => [r.variable.href, r.sequence, r.observedAt]),
    );
    expect(back?.map((r) => r.payload)).toEqual(readings.map((r) => r.payload));
  });

  it("format 2: invalid entries are skipped, an unknown format version is refused", async () => {
    const json = await serializeTable([
      {
        variable: new URL("https://b.example/v"),
        payload: Buffer.from("x"),
        observedAt: 1,
        sequence: 5,
      },
    ]);
    const cols = JSON.parse(String(json.readingColumns));
    const broken = {
      ...json,
      readingColumns: JSON.stringify({
        variable: [0, 7, 0, 0],
        sequence: [5, 6, 1.5, 8],
        observed: cols.observed,
        value: ["x", "y", "z", 42],
      }),
    };
    expect((await parseBatch({ object: broken }))?.map((r) => r.sequence)).toEqual([5]);
    expect(await parseBatch({ object: { ...json, readingColumns: "not json" } })).toBeNull();
    await expect(parseBatch({ object: { ...json, formatVersion: 3 } })).rejects.toThrow(
      UnsupportedReadingFormat,
    );
    await expect(parseBatch({ object: { ...json, formatVersion: 3 } })).rejects.toThrow(
      /formatVersion 3 is not supported; this instance reads readings formats 1, 2/,
    );
  });
});
