import { Add } from "@fedify/vocab";
import { Temporal } from "@js-temporal/polyfill";
import { describe, expect, it } from "vitest";
import { Reading, ReadingBatch } from "../../federation-vocab/vocab.ts";
import { parseBatch, ReadingsAdd, serializeBatch } from "../../src/federation/readings.ts";

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
});
