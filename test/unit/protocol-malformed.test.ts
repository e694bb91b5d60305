/**
 * Hostile and broken bodies: decodeBody must return well-formed messages or throw
 * ProtocolError, never anything else, and must point at the right field.
 */

import { describe, expect, test } from "bun:test";
import { decodeBody, encodeBody } from "../../src/protocol/codec.ts";
import { ProtocolError } from "../../src/protocol/errors.ts";
import { complete, connect, methodException, request, result } from "../../src/protocol/messages.ts";
import type { OsrfMessage } from "../../src/protocol/types.ts";
import { prng } from "../harness/prng.ts";

const { int, pick } = prng(20250101);

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

interface Case {
  kind: string;
  body: string;
  /** Wire path of the mutated part, when the case mutates exactly one place. */
  mutated?: string;
  /** The mutation is inside params/content, which are opaque: decoding must succeed. */
  opaque?: boolean;
}

const SEED_MESSAGES: OsrfMessage[][] = [
  [request(1, "opensrf.system.echo", ["hello", 42, { __c: "aou", __p: [1, "x"] }], { ingress: "srfsh", tz: "UTC" })],
  [result(1, { a: [1, 2, { b: null }] }), complete(1)],
  [connect(0)],
  [methodException(3, 404, "Method [x] not found for service y")],
];
const SEED_BODIES = SEED_MESSAGES.map((m) => encodeBody(m));
// Perl form: numbers for codes, tz null, no api_level, different key order.
SEED_BODIES.push(
  '[{"__c":"osrfMessage","__p":{"payload":{"__p":{"status":"OK","content":[1],"statusCode":200},"__c":"osrfResult"},' +
    '"threadTrace":"1","ingress":"opensrf","type":"RESULT","tz":null,"locale":"en-US"}}]',
);

const WRONG_VALUES: Json[] = [
  null,
  true,
  false,
  0,
  -1,
  1.5,
  1e300,
  "",
  "x",
  "-3",
  "9007199254740993",
  [],
  [1],
  {},
  { __c: "x" },
];

/** Every (path, holder, key) inside the parsed body, with wire-style paths. */
function* places(
  v: Json,
  path: string,
): Generator<{ path: string; holder: Json[] | { [k: string]: Json }; key: string | number }> {
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      yield { path: `${path}[${i}]`, holder: v, key: i };
      yield* places(v[i] as Json, `${path}[${i}]`);
    }
  } else if (v !== null && typeof v === "object") {
    for (const k of Object.keys(v)) {
      yield { path: `${path}.${k}`, holder: v, key: k };
      yield* places(v[k] as Json, `${path}.${k}`);
    }
  }
}

// params elements and content (any value at all) are passed through unchecked
const isOpaque = (path: string) => /\.params\[|\.content($|\[|\.)/.test(path);

function mutateEach(
  body: string,
  kind: string,
  edit: (holder: Json[] | { [k: string]: Json }, key: string | number) => void,
): Case[] {
  const count = [...places(JSON.parse(body) as Json, "body")].length;
  const out: Case[] = [];
  for (let n = 0; n < count; n++) {
    const copy = JSON.parse(body) as Json;
    const place = [...places(copy, "body")][n];
    if (!place) continue;
    edit(place.holder, place.key);
    out.push({ kind, body: JSON.stringify(copy), mutated: place.path, opaque: isOpaque(place.path) });
  }
  return out;
}

function generateCases(): Case[] {
  const cases: Case[] = [];

  // Truncations at random points (every proper prefix of a JSON array is invalid JSON).
  for (const body of SEED_BODIES) {
    for (let i = 0; i < 20; i++) cases.push({ kind: "truncated", body: body.slice(0, int(body.length)) });
  }

  // Wrong types at every field.
  for (const body of SEED_BODIES) {
    for (const wrong of WRONG_VALUES) {
      for (const c of mutateEach(body, "wrong type", (h, k) => ((h as Record<string, Json>)[k] = wrong))) {
        // a new `type` switches which payload is checked, so the error may land elsewhere
        if (c.mutated?.endsWith(".type")) delete c.mutated;
        cases.push(c);
      }
    }
  }

  // Missing fields: delete each object key (array elements are left alone).
  for (const body of SEED_BODIES) {
    cases.push(
      ...mutateEach(body, "missing field", (h, k) => {
        if (!Array.isArray(h)) delete h[k as string];
      }),
    );
  }

  // Bad class hints.
  const hints: Json[] = [
    "osrfmessage",
    "OSRFMESSAGE",
    "osrfMessage ",
    "",
    null,
    5,
    "osrfResult",
    "osrfMethod",
    "osrfConnectStatus",
    ["osrfMessage"],
  ];
  for (const body of SEED_BODIES) {
    for (const hint of hints) {
      for (const c of mutateEach(body, "class hint", (h, k) => {
        if (k === "__c") (h as Record<string, Json>)[k] = hint;
      })) {
        if (c.mutated?.endsWith(".__c")) cases.push(c);
      }
    }
  }

  // Unknown or wrong types, and types that do not match the payload.
  for (const type of [
    "FOO",
    "connect",
    "REQUEST ",
    "",
    "RESULTS",
    "CONNECT",
    "DISCONNECT",
    "REQUEST",
    "RESULT",
    "STATUS",
  ]) {
    for (const body of SEED_BODIES) {
      const copy = JSON.parse(body) as { __p: { type: string } }[];
      (copy[0] as { __p: { type: string } }).__p.type = type;
      cases.push({ kind: "type", body: JSON.stringify(copy) });
    }
  }

  // Huge strings.
  const huge = "x".repeat(5_000_000);
  cases.push(
    { kind: "huge", body: encodeBody([request(1, huge, [huge])]) },
    { kind: "huge", body: encodeBody([result(1, huge, { locale: huge })]) },
    { kind: "huge", body: `[{"__c":"osrfMessage","__p":{"threadTrace":"${"9".repeat(100_000)}","type":"CONNECT"}}]` },
    { kind: "huge", body: `[{"__c":"osrfMessage","__p":{"threadTrace":"1","type":"${huge}"}}]` },
    { kind: "huge", body: `["${huge}"]` },
    { kind: "huge", body: `[${"1,".repeat(200_000)}1]` },
  );

  // Deep nesting: 100k levels in every position, closed and unclosed.
  const deep = 100_000;
  const deepArr = `${"[".repeat(deep)}${"]".repeat(deep)}`;
  const deepObj = `${'{"a":'.repeat(deep)}1${"}".repeat(deep)}`;
  cases.push(
    { kind: "deep", body: deepArr },
    { kind: "deep", body: `[${deepObj}]` },
    { kind: "deep", body: "[".repeat(deep) },
    { kind: "deep", body: '{"a":'.repeat(deep) },
    {
      kind: "deep",
      body: `[{"__c":"osrfMessage","__p":{"threadTrace":"1","type":"REQUEST","payload":{"__c":"osrfMethod","__p":{"method":"m","params":[${deepArr},${deepObj}]}}}}]`,
    },
    {
      kind: "deep",
      body: `[{"__c":"osrfMessage","__p":{"threadTrace":"1","type":"RESULT","payload":{"__c":"osrfResult","__p":{"status":"OK","statusCode":"200","content":${deepObj}}}}}]`,
    },
    { kind: "deep", body: `[{"__c":"osrfMessage","__p":${deepObj}}]` },
    { kind: "deep", body: `[{"__c":"osrfMessage","__p":{"threadTrace":${deepArr},"type":"CONNECT"}}]` },
  );

  // Invalid surrogates and escapes.
  for (const s of [
    "\\ud800",
    "\\udfff",
    "\\udc00\\ud800",
    "\\ud83d",
    "\\u12",
    "\\x41",
    "\\",
    "\ud800",
    "\udfff",
    "\u0000",
    "\\u0000",
  ]) {
    cases.push(
      {
        kind: "surrogate",
        body: `[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"${s}","type":"REQUEST","payload":{"__c":"osrfMethod","__p":{"method":"${s}","params":["${s}"]}}}}]`,
      },
      { kind: "surrogate", body: `[{"__c":"osrfMessage${s}","__p":{"threadTrace":"1","type":"CONNECT"}}]` },
    );
  }

  // Not arrays, not JSON.
  for (const b of [
    "",
    " ",
    "{}",
    "null",
    "1",
    '"[]"',
    "true",
    "[",
    "]",
    "[,]",
    "[1,]",
    "\ufeff[]",
    "[]\u0000",
    "[{}]",
    "[null]",
    "[[]]",
    "[1]",
    '["osrfMessage"]',
    "NaN",
    "[Infinity]",
    "registering",
    "<body>[]</body>",
  ]) {
    cases.push({ kind: "not array", body: b });
  }

  // Random character replacements in valid bodies.
  const noise = ['"', "{", "}", "[", "]", ":", ",", "\\", "0", "a", " ", "\u00e9", "\ud800", "-", "e"];
  for (let i = 0; i < 300; i++) {
    const body = pick(SEED_BODIES);
    const chars = [...body];
    for (let j = 1 + int(3); j > 0; j--) chars[int(chars.length)] = pick(noise);
    cases.push({ kind: "noise", body: chars.join("") });
  }

  return cases;
}

function checkDecoded(msgs: OsrfMessage[]): void {
  const types = ["CONNECT", "DISCONNECT", "REQUEST", "RESULT", "STATUS"];
  for (const m of msgs) {
    expect(Number.isSafeInteger(m.threadTrace) && m.threadTrace >= 0).toBe(true);
    expect(Number.isSafeInteger(m.apiLevel) && m.apiLevel >= 0).toBe(true);
    expect(types).toContain(m.type);
    for (const k of ["locale", "tz", "ingress"] as const) {
      if (k in m) expect(typeof m[k]).toBe("string");
    }
    if (m.type === "REQUEST") {
      expect(typeof m.payload.method).toBe("string");
      expect(Array.isArray(m.payload.params)).toBe(true);
    } else if (m.type === "RESULT") {
      expect(["osrfResult", "osrfResultPartial", "osrfResultPartialComplete"]).toContain(m.payload.className);
      expect(m.payload.status === null || typeof m.payload.status === "string").toBe(true);
      expect(Number.isSafeInteger(m.payload.statusCode)).toBe(true);
      expect(m.payload.content).not.toBeUndefined();
    } else if (m.type === "STATUS") {
      expect(typeof m.payload.className).toBe("string");
      expect(typeof m.payload.status).toBe("string");
      expect(Number.isSafeInteger(m.payload.statusCode)).toBe(true);
    }
  }
}

describe("malformed bodies", () => {
  const cases = generateCases();

  test("at least 500 generated cases, of every kind", () => {
    expect(cases.length).toBeGreaterThanOrEqual(500);
    const kinds = new Set(cases.map((c) => c.kind));
    for (const k of [
      "truncated",
      "wrong type",
      "missing field",
      "class hint",
      "type",
      "huge",
      "deep",
      "surrogate",
      "not array",
      "noise",
    ]) {
      expect(kinds.has(k)).toBe(true);
    }
  });

  test("each decodes to valid messages or throws ProtocolError at the mutated place", () => {
    let decoded = 0;
    let rejected = 0;
    for (const c of cases) {
      let msgs: OsrfMessage[] | undefined;
      let err: unknown;
      try {
        msgs = decodeBody(c.body);
      } catch (e) {
        err = e;
      }
      if (msgs) {
        decoded++;
        checkDecoded(msgs);
        // what we accept we can also send on
        expect(typeof encodeBody(msgs)).toBe("string");
      } else {
        rejected++;
        if (!(err instanceof ProtocolError)) {
          throw new Error(`${c.kind} case threw ${String(err)} for body ${c.body.slice(0, 200)}`);
        }
        expect(err.field.startsWith("body")).toBe(true);
        expect(err.message.startsWith(`bad osrfMessage at ${err.field}: `)).toBe(true);
        expect(err.message.length).toBeLessThan(500);
        if (c.opaque) throw new Error(`opaque mutation at ${c.mutated} was rejected: ${err.message}`);
        if (c.mutated !== undefined) {
          const related = err.field.startsWith(c.mutated) || c.mutated.startsWith(err.field);
          if (!related) throw new Error(`mutation at ${c.mutated} reported at ${err.field}`);
        }
      }
    }
    // both outcomes are exercised
    expect(decoded).toBeGreaterThan(50);
    expect(rejected).toBeGreaterThan(300);
  });

  test("a non-string input is a ProtocolError too", () => {
    for (const v of [undefined, null, 5, {}, ["[]"]]) {
      expect(() => decodeBody(v as unknown as string)).toThrow(ProtocolError);
    }
  });
});

describe("field paths of hand-picked cases", () => {
  const msg = (p: Record<string, unknown>) => ({ __c: "osrfMessage", __p: p });
  const fieldOf = (body: unknown): string => {
    try {
      decodeBody(typeof body === "string" ? body : JSON.stringify(body));
    } catch (e) {
      if (e instanceof ProtocolError) return e.field;
      throw e;
    }
    throw new Error("decoded without error");
  };
  const ok = msg({ threadTrace: "1", type: "CONNECT" });

  test("envelope", () => {
    expect(fieldOf("{}")).toBe("body");
    expect(fieldOf("[1,")).toBe("body");
    expect(fieldOf([null])).toBe("body[0]");
    expect(fieldOf([ok, { __c: "osrfMessag", __p: {} }])).toBe("body[1].__c");
    expect(fieldOf([ok, ok, { __c: "osrfMessage", __p: [] }])).toBe("body[2].__p");
    expect(fieldOf(`[${"[".repeat(100_000)}${"]".repeat(100_000)}]`)).toBe("body[0]");
  });

  test("header fields", () => {
    expect(fieldOf([msg({ threadTrace: "9".repeat(30), type: "CONNECT" })])).toBe("body[0].__p.threadTrace");
    expect(fieldOf([msg({ threadTrace: " 1", type: "CONNECT" })])).toBe("body[0].__p.threadTrace");
    expect(fieldOf([msg({ threadTrace: "1", type: "CONNECT", tz: 5 })])).toBe("body[0].__p.tz");
    expect(fieldOf([msg({ threadTrace: "1", type: "CONNECT", locale: [] })])).toBe("body[0].__p.locale");
    expect(fieldOf([msg({ threadTrace: "1", type: "CONNECT", ingress: {} })])).toBe("body[0].__p.ingress");
    expect(fieldOf([msg({ threadTrace: "1", type: "CONNECT", api_level: "x" })])).toBe("body[0].__p.api_level");
    expect(fieldOf([ok, msg({ threadTrace: "1", type: "connect" })])).toBe("body[1].__p.type");
  });

  test("payload fields", () => {
    const req = (p: unknown) => [msg({ threadTrace: "1", type: "REQUEST", payload: p })];
    expect(fieldOf([msg({ threadTrace: "1", type: "REQUEST" })])).toBe("body[0].__p.payload");
    expect(fieldOf(req({ __c: "osrfResult", __p: {} }))).toBe("body[0].__p.payload.__c");
    expect(fieldOf(req({ __c: "osrfMethod", __p: { method: "m", params: "x" } }))).toBe(
      "body[0].__p.payload.__p.params",
    );
    expect(fieldOf(req({ __c: "osrfMethod", __p: { params: [] } }))).toBe("body[0].__p.payload.__p.method");
    const res = (p: unknown) => [msg({ threadTrace: "1", type: "RESULT", payload: p })];
    expect(fieldOf(res({ __c: "osrfMethod", __p: {} }))).toBe("body[0].__p.payload.__c");
    expect(fieldOf(res({ __c: "osrfResult", __p: { status: "OK", statusCode: "abc" } }))).toBe(
      "body[0].__p.payload.__p.statusCode",
    );
    expect(fieldOf(res({ __c: "osrfResult", __p: { status: 5, statusCode: "200" } }))).toBe(
      "body[0].__p.payload.__p.status",
    );
    const st = (p: unknown) => [msg({ threadTrace: "1", type: "STATUS", payload: p })];
    expect(fieldOf(st({ __c: "osrfConnectStatus", __p: { statusCode: "205" } }))).toBe(
      "body[0].__p.payload.__p.status",
    );
    expect(fieldOf(st({ __c: 7, __p: { status: "x", statusCode: "205" } }))).toBe("body[0].__p.payload.__c");
    expect(fieldOf(st({ __c: "osrfConnectStatus", __p: null }))).toBe("body[0].__p.payload.__p");
  });

  test("messages describe what was found, briefly", () => {
    try {
      decodeBody(JSON.stringify([msg({ threadTrace: "1", type: "x".repeat(10_000) })]));
      throw new Error("decoded");
    } catch (e) {
      expect(e).toBeInstanceOf(ProtocolError);
      const err = e as ProtocolError;
      expect(err.reason).toBe(`expected one of CONNECT, DISCONNECT, REQUEST, RESULT, STATUS, got "${"x".repeat(40)}…"`);
    }
  });
});
