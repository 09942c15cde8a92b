import { describe, expect, it } from "vitest";
import { FrameInspector, TokenBucket } from "../../src/broker/frame-guard.ts";
import { runHook } from "../../src/broker/hook-adapter.ts";
import { parseLogs, parseState, storedValue } from "../../src/broker/ingest-parse.ts";

// The broker's small parts on their own: frame inspection, the hook adapter, parsing.

describe("frame inspector", () => {
  const limits = { maxPacketBytes: 100, maxPerSecond: 1000 };

  it("follows packets split anywhere across chunks", () => {
    const ins = new FrameInspector(limits);
    // PUBLISH with remaining length 100 (at the limit), then a PINGREQ.
    const bytes = Buffer.concat([
      Buffer.from([0x30, 100]),
      Buffer.alloc(100, 1),
      Buffer.from([0xc0, 0x00]),
    ]);
    for (const b of bytes) expect(ins.inspect(Buffer.from([b]))).toBeNull();
  });

  it("refuses a packet over the limit as soon as its length is known", () => {
    const ins = new FrameInspector(limits);
    expect(ins.inspect(Buffer.from([0x30, 0xe5]))).toBeNull();
    expect(ins.inspect(Buffer.from([0x00]))).toMatch(/exceeds the limit/);
  });

  it("refuses a remaining length longer than four bytes", () => {
    const ins = new FrameInspector({ maxPacketBytes: 1e9, maxPerSecond: 10 });
    expect(ins.inspect(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff]))).toBe(
      "malformed remaining length",
    );
  });

  it("counts PUBLISH/SUBSCRIBE/UNSUBSCRIBE against the rate, not acks or pings", () => {
    const ins = new FrameInspector({ maxPacketBytes: 100, maxPerSecond: 3 });
    const puback = Buffer.from([0x40, 0x02, 0x00, 0x01]);
    for (let i = 0; i < 20; i++) expect(ins.inspect(puback)).toBeNull();
    const publish = Buffer.from([0x30, 0x03, 0x00, 0x01, 0x61]);
    expect(ins.inspect(Buffer.concat([publish, publish, publish]))).toBeNull();
    expect(ins.inspect(publish)).toMatch(/per second/);
  });

  it("refills the bucket over time", () => {
    const bucket = new TokenBucket(2, 2, 0);
    expect([bucket.take(0), bucket.take(0), bucket.take(0)]).toEqual([true, true, false]);
    expect(bucket.take(499)).toBe(false);
    expect(bucket.take(500)).toBe(true);
  });
});

describe("hook adapter", () => {
  const collect = () => {
    const calls: string[] = [];
    return {
      calls,
      ok: (v: unknown) => calls.push(`ok:${v}`),
      fail: (e: unknown) => calls.push(`fail:${(e as Error).message}`),
      cbErr: (e: unknown) => calls.push(`cb:${(e as Error).message}`),
    };
  };

  it("answers once for sync values, sync throws, async values and rejections", async () => {
    const c = collect();
    runHook(() => 1, c.ok, c.fail, c.cbErr);
    runHook(
      () => {
        throw new Error("boom");
      },
      c.ok,
      c.fail,
      c.cbErr,
    );
    runHook(async () => 2, c.ok, c.fail, c.cbErr);
    runHook(() => Promise.reject(new Error("late")), c.ok, c.fail, c.cbErr);
    await new Promise((r) => setTimeout(r, 10));
    expect(c.calls).toEqual(["ok:1", "fail:boom", "ok:2", "fail:late"]);
  });

  it("does not answer twice when the broker's callback itself throws", async () => {
    const c = collect();
    runHook(
      async () => 1,
      () => {
        c.calls.push("ok");
        throw new Error("callback broke");
      },
      c.fail,
      c.cbErr,
    );
    await new Promise((r) => setTimeout(r, 10));
    expect(c.calls).toEqual(["ok", "cb:callback broke"]);
  });
});

describe("device payload parsing", () => {
  it("keeps known state keys with usable values only", () => {
    const parsed = parseState(
      Buffer.from(
        JSON.stringify({
          millis: 5,
          freq: "x",
          mem_free: Number.MAX_VALUE,
          ifconfig: ["10.0.0.2", "bad\u0000nul"],
          pu_commit_version: "ABCDEF1234567",
          extra: { deep: true },
        }),
      ),
    );
    expect(parsed).toEqual({
      state: {
        millis: 5,
        mem_free: Number.MAX_VALUE,
        ifconfig: ["10.0.0.2", "badnul"],
        pu_commit_version: "abcdef1234567",
      },
      commit: "abcdef1234567",
    });
    expect(parseState(Buffer.from("[]"))).toBeNull();
    expect(parseState(Buffer.from([0xff, 0xfe]))).toBeNull();
    expect(parseState(Buffer.from('{"pu_commit_version":"not a sha"}'))?.commit).toBeNull();
  });

  it("reads logs leniently and places bad clocks at arrival time", () => {
    const now = new Date("2030-06-01T12:00:00.000Z");
    const hour = 3600_000;
    const logs = parseLogs(
      Buffer.from(
        JSON.stringify([
          { level: "eRRor", text: "a", create_datetime: "2030-06-01T11:30:00Z" },
          { level: "info", text: 42, create_datetime: "2030-06-01T11:45:00.123+00:00" },
          { level: "Info", text: "ms", create_datetime: Date.parse("2030-06-01T11:50:00Z") },
          { level: "Info", text: "future", create_datetime: "2031-01-01T00:00:00Z" },
          { level: "Info", text: "garbage time", create_datetime: "yesterday" },
          { level: "Info", text: "float time", create_datetime: 1.5 },
          { level: "Trace", text: "skipped" },
          { level: "Info", text: { nested: 1 } },
          { text: "no level" },
        ]),
      ),
      now,
      24 * hour,
    );
    expect(logs.map((l) => [l.level, l.text, l.createdAt.toISOString()])).toEqual([
      ["Error", "a", "2030-06-01T11:30:00.000Z"],
      ["Info", "42", "2030-06-01T11:45:00.123Z"],
      ["Info", "ms", "2030-06-01T11:50:00.000Z"],
      ["Info", "future", now.toISOString()],
      ["Info", "garbage time", now.toISOString()],
      ["Info", "float time", now.toISOString()],
    ]);
    expect(parseLogs(Buffer.from("not json"), now, hour)).toEqual([]);
  });

  it("stores opaque values as text without NUL characters", () => {
    expect(storedValue(Buffer.from("21.5"))).toBe("21.5");
    expect(storedValue(Buffer.from([0x61, 0x00, 0x62]))).toBe("ab");
  });
});
