/**
 * The one-pass reader of Redis bus elements: it must read every element JSON.parse reads the
 * same way (body kept as its own text), hand back nothing for what is not one JSON object,
 * and never be fooled by look-alike keys, escaped quotes or brackets inside strings.
 */
import { describe, expect, test } from "bun:test";
import { decodeEnvelope, EnvelopeError } from "../../src/redis/envelope.ts";
import { RawJson, scanEnvelope } from "../../src/redis/envelope-scan.ts";

// As C and Perl push them (a MONITOR capture of OpenSRF main): C's key order with
// `"osrf_xid":null` and `"tz":null`, Perl's keys in any order.
const C_REQUEST =
  '{"to":"opensrf:service:_:_:opensrf.dbmath","from":"opensrf:client:opensrf:localhost:vm:8828:636c1379",' +
  '"thread":"1796156020.322823.17961560208828","osrf_xid":"179615602088440","body":[{"__c":"osrfMessage",' +
  '"__p":{"threadTrace":"1","locale":"en-US","ingress":"srfsh","api_level":1,"type":"REQUEST","payload":' +
  '{"__c":"osrfMethod","__p":{"method":"add","params":[2,2]}}}}]}';
const PERL_REQUEST =
  '{"body":[{"__c":"osrfMessage","__p":{"api_level":1,"payload":{"__p":{"params":[3,4],"method":"add"},' +
  '"__c":"osrfMethod"},"ingress":"opensrf","locale":"en-US","tz":null,"threadTrace":"1","type":"REQUEST"}}],' +
  '"from":"opensrf:client:opensrf:localhost:vm:8860:1880160","thread":"1796156023.299695175.1128696843",' +
  '"to":"opensrf:client:opensrf:localhost:vm:8828:636c1379","osrf_xid":"179615602288571"}';
const C_REGISTER =
  '{"to":"opensrf:router:router:localhost","from":"opensrf:client:opensrf:localhost:vm:8837:5a78483e",' +
  '"thread":"","osrf_xid":null,"router_to":"","router_class":"opensrf.dbmath","router_command":"register","body":"[]"}';

/** What the element reads as through JSON.parse, the reference the scanner must agree with. */
function reference(text: string) {
  const o = JSON.parse(text);
  const s = (v: unknown) => (v === undefined || v === null ? "" : String(v));
  return {
    to: s(o.to),
    from: s(o.from),
    thread: s(o.thread),
    xid: s(o.osrf_xid),
    routerTo: s(o.router_to),
    routerClass: s(o.router_class),
    routerCommand: s(o.router_command),
    body: typeof o.body === "string" ? o.body : o.body === undefined || o.body === null ? undefined : o.body,
  };
}

const AGREES: Array<[string, string]> = [
  ["C's request", C_REQUEST],
  ["Perl's request, body first and osrf_xid last", PERL_REQUEST],
  ["C's registration, body the string []", C_REGISTER],
  ["white space everywhere JSON allows it", ` \n{ "from" :\t"a" ,\r\n "thread": "t" , "body" : [ { "x" : [ ] } ] }\n `],
  ["escaped quotes and backslashes in fields", String.raw`{"from":"a\"b\\","thread":"t\\\"x\\\\","body":[]}`],
  ["a field ending in an escaped backslash", String.raw`{"from":"x\\","thread":"y","body":[]}`],
  ["unicode escapes", String.raw`{"from":"caf\u00e9","thread":"\ud83d\ude00","body":["\u005d\u007d"]}`],
  [
    "look-alike keys inside the body, before the real ones",
    '{"body":[{"from":"evil","thread":"evil","body":[{"to":"evil"}]}],"from":"good","thread":"t"}',
  ],
  ["brackets and quotes inside body strings", String.raw`{"from":"a","body":["]}", "{[", "\"]", "\\", "\\\"}"]}`],
  ["a numeric thread and xid", '{"from":"a","thread":12,"osrf_xid":-1.5e2,"body":[]}'],
  [
    "nulls for every field (C's osrf_xid, Perl's tz)",
    '{"from":"a","to":null,"thread":null,"osrf_xid":null,"body":null}',
  ],
  ["a key given twice: the last one counts", '{"from":"first","thread":"t","from":"second","body":[1],"body":[2]}'],
  [
    "keys this bus does not know, of every type",
    '{"x":{"from":"no"},"y":[true,false,null],"z":-0.5,"w":"s","from":"a"}',
  ],
  ["a __proto__ key", '{"__proto__":{"from":"no"},"from":"yes","body":[]}'],
  ["an empty object body", '{"from":"a","thread":"t"}'],
  ["non-ASCII text unescaped", '{"from":"a","thread":"é—😀","body":["ü"]}'],
];

describe("decodeEnvelope through the scanner", () => {
  test.each(AGREES)("agrees with JSON.parse: %s", (_what, text) => {
    expect(scanEnvelope(text)).toBeDefined();
    const m = decodeEnvelope(text);
    const want = reference(text);
    expect({
      to: m.to,
      from: m.from,
      thread: m.thread,
      xid: m.xid,
      routerTo: m.routerTo,
      routerClass: m.routerClass,
      routerCommand: m.routerCommand,
    }).toEqual({ ...want, body: undefined } as never);
    if (want.body === undefined) expect(m.body).toBe("");
    else if (typeof want.body === "string") expect(m.body).toBe(want.body);
    else expect(JSON.parse(m.body)).toEqual(want.body);
  });

  test("the body is the element's own text of it, not written again", () => {
    const m = decodeEnvelope(C_REQUEST);
    expect(m.body).toBe(C_REQUEST.slice(C_REQUEST.indexOf('"body":') + 7, -1));
    const spaced = '{"from":"a","body":[ 1 ,\n2 ]}';
    expect(decodeEnvelope(spaced).body).toBe("[ 1 ,\n2 ]");
  });

  test("a body broken inside is handed on as it is, for the decoder to refuse", () => {
    // The listener only routes: the drone's host answers such a body with an error.
    expect(decodeEnvelope('{"from":"a","thread":"t","body":[1,,2]}').body).toBe("[1,,2]");
    expect(decodeEnvelope('{"from":"a","body":[{"x":1]]}').body).toBe('[{"x":1]]');
  });

  test("deep nesting costs no recursion", () => {
    const deep = `${"[".repeat(100_000)}${"]".repeat(100_000)}`;
    expect(decodeEnvelope(`{"from":"a","body":${deep}}`).body.length).toBe(200_000);
  });

  test("a megabyte body with many escaped quotes is read in one pass", () => {
    const body = JSON.stringify(['x"'.repeat(500_000)]);
    const m = decodeEnvelope(`{"from":"a","thread":"t","body":${body}}`);
    expect(m.body).toBe(body);
    expect(m.thread).toBe("t");
  });
});

describe("scanEnvelope refuses, so that JSON.parse says what is wrong", () => {
  test.each([
    ["empty text", ""],
    ["not JSON", "{not json"],
    ["an array", "[1,2]"],
    ["a string", '"x"'],
    ["null", "null"],
    ["cut short in a string", '{"from":"opensrf:cli'],
    ["cut short in the body", '{"from":"a","body":[{"x":"y"}'],
    ["an unterminated string in the body", '{"from":"a","body":["x]}'],
    ["text after the object", '{"from":"a"} x'],
    ["two objects", '{"from":"a"}{"from":"b"}'],
    ["a key without quotes", '{from:"a"}'],
    ["a missing colon", '{"from" "a"}'],
    ["a missing comma", '{"from":"a" "thread":"t"}'],
    ["a trailing comma", '{"from":"a",}'],
    ["a raw control character in a string", '{"from":"a\nb"}'],
    ["a bad escape", String.raw`{"from":"a\qb"}`],
    ["a bad number", '{"from":"a","thread":01}'],
    ["a bare word", '{"from":"a","thread":nope}'],
    ["a stray closing bracket", '{"from":"a","body":]}'],
  ])("%s", (_what, text) => {
    expect(scanEnvelope(text)).toBeUndefined();
    expect(() => decodeEnvelope(text)).toThrow(EnvelopeError);
  });

  test("the errors are JSON.parse's and the type checks' one-line reasons", () => {
    const reason = (text: string) => {
      try {
        decodeEnvelope(text);
      } catch (e) {
        return (e as EnvelopeError).reason;
      }
      return "accepted";
    };
    expect(reason("{not json")).toMatch(/^not JSON \(/);
    expect(reason('{"from":"a\nb"}')).toMatch(/^not JSON \(/);
    expect(reason("[1]")).toBe("a JSON array, not an object");
    expect(reason('{"from":[],"body":[]}')).toBe('"from" is a array, not a string');
    expect(reason('{"from":"a","thread":true}')).toBe('"thread" is a boolean, not a string');
    expect(reason('{"from":"a","body":{"x":1}}')).toBe('"body" is a object, not an array');
    expect(reason('{"from":"a","body":7}')).toBe('"body" is a number, not an array');
    expect(reason('{"to":"x","body":[]}')).toBe('no "from" (thread ""): nobody to answer');
  });
});

test("arrays and objects come back as their text", () => {
  const o = scanEnvelope('{"body":[{"a":"]"}],"from":{"x":[1]}}');
  if (!o) throw new Error("not scanned");
  expect(o.body).toBeInstanceOf(RawJson);
  expect((o.body as RawJson).text).toBe('[{"a":"]"}]');
  expect((o.body as RawJson).kind).toBe("array");
  expect((o.from as RawJson).kind).toBe("object");
});
