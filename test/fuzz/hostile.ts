import fc from "fast-check";

// Inputs no client should send: control characters, huge and odd strings,
// boundary numbers, wrong types, deep nesting, broken JSON.

const controlChars = fc
  .array(fc.integer({ min: 0, max: 31 }), { minLength: 1, maxLength: 4 })
  .map((codes) => `a${String.fromCharCode(...codes)}b`);

export const hostileString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    "\u0000",
    "a\u0000b",
    "\u007f",
    "\r\n\r\n",
    "%00",
    "../../../../etc/passwd",
    "' OR 1=1 --",
    "<script>alert(1)</script>",
    "$" + "{jndi:ldap://x}",
    "\ud800", // a lone surrogate
    "\u202eevil",
    "🦄".repeat(200),
    "ｆｕｌｌｗｉｄｔｈ",
    "x".repeat(10_000),
    "",
    " ",
    "null",
    "00000000-0000-0000-0000-000000000000",
    "-1",
    "1e400",
  ),
  controlChars,
  fc.string({ unit: "binary", maxLength: 40 }),
);

export const hostileNumber: fc.Arbitrary<number> = fc.constantFrom(
  0,
  -1,
  -0,
  1.5,
  2 ** 31 - 1,
  2 ** 31,
  -(2 ** 31) - 1,
  2 ** 53,
  2 ** 64,
  1e308,
  -1e308,
  5e-324,
);

/** A value of any JSON type, mostly a wrong one. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  hostileString,
  hostileNumber,
  fc.constantFrom(null, true, false, [], {}, [null], { "": "" }),
  fc.jsonValue({ maxDepth: 3 }),
);

const deep = (n: number, open: string, close: string, leaf = "1") =>
  open.repeat(n) + leaf + close.repeat(n);

/** Raw request bodies that are not the JSON object a route expects. */
export const hostileBodyText: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    "",
    "{",
    '{"a":',
    "null",
    "[]",
    "1",
    '"text"',
    "true",
    "\u0000",
    "{}garbage",
    '{"__proto__":{"polluted":1}}',
    '{"constructor":{"prototype":{"polluted":1}}}',
    deep(5_000, "[", "]"),
    deep(2_000, '{"a":', "}"),
    `[${"1,".repeat(20_000)}1]`,
    `{"${"k".repeat(10_000)}":1}`,
    '{"a":1,"a":2}',
    "\ufeff{}",
  ),
  fc.string({ maxLength: 60 }),
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v) ?? "null"),
);

/** Path segments where a uuid is expected. */
export const hostilePathSegment: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    "not-a-uuid",
    "%00",
    "00000000-0000-0000-0000-000000000000",
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
    // Not ".." alone: the client normalizes it away (another route, not this one).
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "1",
    "-1",
    "null",
    "x".repeat(5_000),
    "%F0%9F%A6%84",
    "%ZZ",
    "%C0%AF",
    "12345678-1234-1234-1234-1234567890ab%00",
  ),
  hostileString.map(safeEncode),
);

/** encodeURIComponent, also for a lone surrogate (sent as its raw UTF-8-ish bytes). */
export function safeEncode(s: string): string {
  try {
    return encodeURIComponent(s);
  } catch {
    return "%ED%A0%80";
  }
}
