/**
 * osrfMessage codec: the JSON array inside `<body>` to and from the types of `types.ts`.
 *
 * Decoding is strict about the message envelope (so a bad peer gets a precise error, never a
 * crash) and lenient about what real peers vary on: Perl sends numbers where C sends strings,
 * `tz: null`, no `api_level`, and its own key order. Encoding reproduces the C library's output
 * byte for byte: its key order, string threadTrace/statusCode, and its JSON escaping (every
 * non-ASCII character as a lowercase `\uxxxx`), so bodies are pure ASCII.
 */
import { describeValue, ProtocolError } from "./errors.ts";
import type { JsonValue, MessageHeader, MessageType, OsrfMessage, ResultClass } from "./types.ts";

const MESSAGE_TYPES: readonly MessageType[] = ["CONNECT", "DISCONNECT", "REQUEST", "RESULT", "STATUS"];

const RESULT_CLASSES: readonly ResultClass[] = ["osrfResult", "osrfResultPartial", "osrfResultPartialComplete"];

// Integers travel as digit strings (C) or JSON numbers (Perl); nothing else is a valid form.
const DIGITS = /^[0-9]+$/;

type JsonObject = { [key: string]: JsonValue };

function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

// Own properties only: a body must not reach Object.prototype through a field name.
const hasOwn = Object.hasOwn;

function fail(field: string, expected: string, got: unknown): never {
  throw new ProtocolError(field, `expected ${expected}, got ${describeValue(got)}`);
}

// Error fields are `path + suffix`, joined only when something is wrong: building them for
// every field of every message cost more than the checks themselves (drones decode a body
// per request, mostly before their JIT is warm).

function nonNegativeInt(v: JsonValue | undefined, path: string, suffix: string): number {
  if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) return v;
  if (typeof v === "string" && DIGITS.test(v)) {
    const n = Number(v);
    if (Number.isSafeInteger(n)) return n;
  }
  return fail(path + suffix, "a non-negative integer (digit string or number)", v);
}

// locale, tz and ingress: absent or null (Perl) both mean "not set".
function optionalString(v: JsonValue | undefined, path: string, suffix: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === "string") return v;
  return fail(path + suffix, "a string or null", v);
}

function requireObject(v: JsonValue | undefined, path: string, suffix: string): JsonObject {
  if (isObject(v)) return v;
  return fail(path + suffix, "an object", v);
}

function requireString(v: JsonValue | undefined, path: string, suffix: string): string {
  if (typeof v === "string") return v;
  return fail(path + suffix, "a string", v);
}

const MESSAGE_CLASS = ["osrfMessage"] as const;
const METHOD_CLASS = ["osrfMethod"] as const;

/** Unwraps `{"__c": <class>, "__p": {...}}` at `path + suffix`, checking the class against `accept`. */
function unwrapClass(
  v: JsonValue | undefined,
  path: string,
  suffix: string,
  accept: readonly string[] | null,
): { className: string; body: JsonObject } {
  const obj = requireObject(v, path, suffix);
  const c = hasOwn(obj, "__c") ? obj.__c : undefined;
  if (accept === null) {
    if (typeof c !== "string" || c === "") fail(`${path}${suffix}.__c`, "a class name", c);
  } else if (typeof c !== "string" || !accept.includes(c)) {
    fail(`${path}${suffix}.__c`, accept.length === 1 ? `"${accept[0]}"` : `one of ${accept.join(", ")}`, c);
  }
  return { className: c, body: requireObject(hasOwn(obj, "__p") ? obj.__p : undefined, path, `${suffix}.__p`) };
}

/**
 * Decodes one class-hinted osrfMessage object (an element of the body array).
 *
 * @param obj The parsed JSON value, expected to be `{"__c":"osrfMessage","__p":{…}}`.
 * @param path Where `obj` sits in the body, used in error fields (e.g. `body[0]`).
 * @throws ProtocolError naming the first offending field.
 */
export function decodeMessage(obj: unknown, path: string): OsrfMessage {
  const { body: p } = unwrapClass(obj as JsonValue, path, "", MESSAGE_CLASS);

  const type = hasOwn(p, "type") ? p.type : undefined;
  if (typeof type !== "string" || !(MESSAGE_TYPES as readonly string[]).includes(type)) {
    fail(`${path}.__p.type`, `one of ${MESSAGE_TYPES.join(", ")}`, type);
  }

  const header: MessageHeader = {
    threadTrace: nonNegativeInt(hasOwn(p, "threadTrace") ? p.threadTrace : undefined, path, ".__p.threadTrace"),
    apiLevel: 1,
  };
  const locale = optionalString(hasOwn(p, "locale") ? p.locale : undefined, path, ".__p.locale");
  if (locale !== undefined) header.locale = locale;
  const tz = optionalString(hasOwn(p, "tz") ? p.tz : undefined, path, ".__p.tz");
  if (tz !== undefined) header.tz = tz;
  const ingress = optionalString(hasOwn(p, "ingress") ? p.ingress : undefined, path, ".__p.ingress");
  if (ingress !== undefined) header.ingress = ingress;
  // Perl peers send no api_level; every 3.x peer speaks level 1.
  const apiLevel = hasOwn(p, "api_level") ? p.api_level : undefined;
  if (apiLevel !== undefined && apiLevel !== null) {
    header.apiLevel = nonNegativeInt(apiLevel, path, ".__p.api_level");
  }

  switch (type as MessageType) {
    case "CONNECT":
      return { ...header, type: "CONNECT" };
    case "DISCONNECT":
      return { ...header, type: "DISCONNECT" };
    case "REQUEST": {
      const { body } = unwrapClass(hasOwn(p, "payload") ? p.payload : undefined, path, ".__p.payload", METHOD_CLASS);
      const method = requireString(hasOwn(body, "method") ? body.method : undefined, path, ".__p.payload.__p.method");
      // C turns a null params into an empty array; do the same for absent.
      const rawParams = hasOwn(body, "params") ? body.params : undefined;
      let params: JsonValue[] = [];
      if (rawParams !== undefined && rawParams !== null) {
        if (!Array.isArray(rawParams)) fail(`${path}.__p.payload.__p.params`, "an array", rawParams);
        params = rawParams;
      }
      return { ...header, type: "REQUEST", payload: { method, params } };
    }
    case "RESULT": {
      const { className, body } = unwrapClass(
        hasOwn(p, "payload") ? p.payload : undefined,
        path,
        ".__p.payload",
        RESULT_CLASSES,
      );
      // The router answers with "status": null (sample E); treat absent the same way.
      const rawStatus = hasOwn(body, "status") ? body.status : undefined;
      let status: string | null = null;
      if (rawStatus !== undefined && rawStatus !== null) {
        status = requireString(rawStatus, path, ".__p.payload.__p.status");
      }
      const statusCode = nonNegativeInt(
        hasOwn(body, "statusCode") ? body.statusCode : undefined,
        path,
        ".__p.payload.__p.statusCode",
      );
      const content = (hasOwn(body, "content") ? body.content : undefined) ?? null;
      return {
        ...header,
        type: "RESULT",
        payload: { className: className as ResultClass, status, statusCode, content },
      };
    }
    case "STATUS": {
      const { className, body } = unwrapClass(hasOwn(p, "payload") ? p.payload : undefined, path, ".__p.payload", null);
      const status = requireString(hasOwn(body, "status") ? body.status : undefined, path, ".__p.payload.__p.status");
      const statusCode = nonNegativeInt(
        hasOwn(body, "statusCode") ? body.statusCode : undefined,
        path,
        ".__p.payload.__p.statusCode",
      );
      return { ...header, type: "STATUS", payload: { className, status, statusCode } };
    }
  }
}

/** `body[i]`, the error path of a body's i-th message; made once per index. */
const BODY_PATHS: string[] = [];
export function bodyPath(i: number): string {
  let p = BODY_PATHS[i];
  if (p === undefined) {
    p = `body[${i}]`;
    if (i < 64) BODY_PATHS[i] = p;
  }
  return p;
}

/**
 * Decodes a `<body>` text: a JSON array of class-hinted osrfMessage objects.
 *
 * Params and result content are returned untouched, including nested class-hinted objects
 * of other classes. Throws only {@link ProtocolError}, whatever the input.
 *
 * @param body The unescaped `<body>` text.
 * @throws ProtocolError naming the offending field (`body` for non-JSON or non-array input).
 */
export function decodeBody(body: string): OsrfMessage[] {
  try {
    if (typeof body !== "string") fail("body", "a string", body);
    // C on Redis writes `"body":null` for a payload its own JSON parser refuses (e.g. `inf`):
    // say that nothing came rather than "Unexpected EOF".
    if (body.length === 0) throw new ProtocolError("body", "empty: the message carries no osrfMessage array");
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch (e) {
      throw new ProtocolError("body", `not valid JSON (${(e as Error).message})`, { cause: e });
    }
    if (!Array.isArray(parsed)) fail("body", "a JSON array of osrfMessage objects", parsed);
    return parsed.map((m, i) => decodeMessage(m, bodyPath(i)));
  } catch (e) {
    if (e instanceof ProtocolError) throw e;
    // Anything else (a stack overflow on some pathological input) is still a bad body.
    throw new ProtocolError("body", `could not be decoded (${String(e)})`, { cause: e });
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding

// C's buffer_append_utf8 writes every non-ASCII character (and DEL) as \uxxxx, lowercase hex;
// JSON.stringify already escapes the rest exactly as C does.
const NON_ASCII_RUN = /[\u007f-\uffff]+/g;
const HEX = "0123456789abcdef";
/** `\uxxxx` by UTF-16 code unit, built on first use (at most 65,408 short strings). */
const ESCAPED: string[] = [];

function escapeCodeUnit(c: number): string {
  let e = ESCAPED[c];
  if (e === undefined) ESCAPED[c] = e = `\\u${HEX[c >> 12]}${HEX[(c >> 8) & 15]}${HEX[(c >> 4) & 15]}${HEX[c & 15]}`;
  return e;
}

function escapeNonAscii(json: string): string {
  // Mostly there is nothing to escape: a native UTF-8 length check proves it ~100× faster
  // than a regex scan (2 ms for a 1 MB result).
  if (Buffer.byteLength(json, "utf8") === json.length && !json.includes("\u007f")) return json;
  // Runs of escaped characters are written in a loop from a table: a replace callback
  // formatting each character took ~100 ms for a megabyte of accented text, this ~10 ms.
  let out = "";
  let done = 0;
  NON_ASCII_RUN.lastIndex = 0;
  for (let m = NON_ASCII_RUN.exec(json); m !== null; m = NON_ASCII_RUN.exec(json)) {
    let run = "";
    for (let i = m.index, end = m.index + m[0].length; i < end; i++) run += escapeCodeUnit(json.charCodeAt(i));
    out += json.slice(done, m.index) + run;
    done = m.index + m[0].length;
  }
  return out + json.slice(done);
}

// JSC's JSON.stringify is linear only up to ~25k levels: beyond, its generic path checks each
// level against every enclosing one for cycles (quadratic: 0.6 s at 28k levels, 2.5 s before
// it gives up with a RangeError at 40k). Deeper values than this go to stringifyDeep at once.
const NATIVE_MAX_DEPTH = 10_000;

/** True when arrays and objects nest more than `limit` levels deep in `root`. */
function nestsDeeperThan(root: object, limit: number): boolean {
  // (container, depth) pairs on an explicit stack: no recursion limit applies.
  const stack: unknown[] = [root, 1];
  while (stack.length > 0) {
    const depth = stack.pop() as number;
    const v = stack.pop() as object;
    if (depth > limit) return true;
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const x: unknown = v[i];
        if (typeof x === "object" && x !== null) stack.push(x, depth + 1);
      }
    } else {
      for (const k in v) {
        const x: unknown = (v as Record<string, unknown>)[k];
        if (typeof x === "object" && x !== null) stack.push(x, depth + 1);
      }
    }
  }
  return false;
}

// A walk with its own stack, so any value JSON.parse produced (100k levels and more) can be
// written back. Same rules as JSON.stringify.
function stringifyDeep(root: unknown): string {
  const out: string[] = [];
  const onPath = new Set<object>();
  type Frame = { kind: "value"; value: unknown } | { kind: "text"; text: string } | { kind: "leave"; obj: object };
  const stack: Frame[] = [{ kind: "value", value: root }];

  while (stack.length > 0) {
    const f = stack.pop() as Frame;
    if (f.kind === "text") {
      out.push(f.text);
      continue;
    }
    if (f.kind === "leave") {
      onPath.delete(f.obj);
      continue;
    }
    let v = f.value;
    if (v !== null && typeof v === "object" && typeof (v as { toJSON?: unknown }).toJSON === "function") {
      v = (v as { toJSON: () => unknown }).toJSON();
    }
    if (v === null || v === undefined || typeof v === "function" || typeof v === "symbol") {
      out.push("null");
    } else if (typeof v === "number") {
      out.push(Number.isFinite(v) ? JSON.stringify(v) : "null");
    } else if (typeof v === "string" || typeof v === "boolean") {
      out.push(JSON.stringify(v));
    } else if (typeof v === "bigint") {
      throw new TypeError("cannot serialize a BigInt");
    } else {
      const obj = v as object;
      if (onPath.has(obj)) throw new TypeError("cannot serialize a cyclic structure");
      onPath.add(obj);
      // Frames are pushed in reverse so they pop in document order.
      const frames: Frame[] = [];
      if (Array.isArray(obj)) {
        frames.push({ kind: "text", text: "[" });
        obj.forEach((item, i) => {
          if (i > 0) frames.push({ kind: "text", text: "," });
          frames.push({ kind: "value", value: item });
        });
        frames.push({ kind: "text", text: "]" });
      } else {
        frames.push({ kind: "text", text: "{" });
        let first = true;
        for (const key of Object.keys(obj)) {
          const item = (obj as Record<string, unknown>)[key];
          if (item === undefined || typeof item === "function" || typeof item === "symbol") continue;
          frames.push({ kind: "text", text: `${first ? "" : ","}${JSON.stringify(key)}:` });
          frames.push({ kind: "value", value: item });
          first = false;
        }
        frames.push({ kind: "text", text: "}" });
      }
      frames.push({ kind: "leave", obj });
      for (let i = frames.length - 1; i >= 0; i--) stack.push(frames[i] as Frame);
    }
  }
  return out.join("");
}

/**
 * Serializes a JSON value the way OpenSRF's C library does: compact, keys in insertion order,
 * every non-ASCII character escaped as lowercase `\uxxxx` (surrogate pairs for astral ones).
 * The result is pure ASCII, so its length is its size in bytes. Handles nesting of any depth.
 *
 * @param value A JSON value (`undefined` members are skipped, as JSON.stringify does).
 * @throws TypeError for cyclic structures or BigInts.
 */
export function encodeJson(value: JsonValue): string {
  let text: string | undefined;
  if (typeof value === "object" && value !== null && nestsDeeperThan(value, NATIVE_MAX_DEPTH)) {
    text = stringifyDeep(value);
  } else {
    try {
      text = JSON.stringify(value);
    } catch (e) {
      // Still possible: a toJSON can return deeper values than the walk above saw.
      if (!(e instanceof RangeError)) throw e;
      text = stringifyDeep(value);
    }
  }
  return escapeNonAscii(text ?? "null");
}

/** Printable ASCII with no `"` or `\\`: JSON.stringify would only add the quotes. */
const PLAIN_STRING = /^[ !#-[\]-~]*$/;

function encodeString(s: string): string {
  // Locales, class names, status texts and method names are nearly always plain.
  if (PLAIN_STRING.test(s)) return `"${s}"`;
  return escapeNonAscii(JSON.stringify(s));
}

/** As the decoders: the error field is `path + suffix`, joined only on failure. */
function checkInt(n: number, path: string, suffix: string): void {
  if (!Number.isSafeInteger(n) || n < 0) fail(path + suffix, "a non-negative integer", n);
}

/**
 * Encodes one message as the C library's `{"__c":"osrfMessage","__p":{…}}` text: keys in C's
 * order, threadTrace and statusCode as strings, locale always present (C falls back to
 * "en-US"), tz and ingress only when set, api_level only when positive.
 *
 * @param m The message.
 * @param path Where the message will sit in the body, for error fields.
 * @throws ProtocolError if the message cannot be represented (e.g. a fractional threadTrace).
 * @throws TypeError if params/content are cyclic.
 */
export function encodeMessage(m: OsrfMessage, path = "body[0]"): string {
  return encodeHeaderPrefix(m, path) + encodeMessageTail(m, path);
}

/**
 * The first part of {@link encodeMessage}'s text, from the header alone: everything up to
 * and including `"type":`. The replies of one request share it: encode it once, then each
 * message's {@link encodeMessageTail}.
 */
export function encodeHeaderPrefix(h: MessageHeader, path = "body[0]"): string {
  const last = lastPrefix;
  if (
    last !== undefined &&
    h.threadTrace === last.threadTrace &&
    h.locale === last.locale &&
    h.tz === last.tz &&
    h.ingress === last.ingress &&
    h.apiLevel === last.apiLevel
  ) {
    return last.text;
  }
  const text = headerPrefixText(h, path);
  lastPrefix = {
    threadTrace: h.threadTrace,
    locale: h.locale,
    tz: h.tz,
    ingress: h.ingress,
    apiLevel: h.apiLevel,
    text,
  };
  return text;
}

// The last header prefix made: consecutive requests to a drone mostly share every header field
// (a stateless call is threadTrace 1 in the en-US locale from C and Perl clients alike).
let lastPrefix: (Record<keyof MessageHeader, unknown> & { text: string }) | undefined;

function headerPrefixText(h: MessageHeader, path: string): string {
  checkInt(h.threadTrace, path, ".__p.threadTrace");
  let s = `{"__c":"osrfMessage","__p":{"threadTrace":"${h.threadTrace}","locale":${encodeString(h.locale ?? "en-US")}`;
  if (h.tz !== undefined) s += `,"tz":${encodeString(h.tz)}`;
  if (h.ingress !== undefined) s += `,"ingress":${encodeString(h.ingress)}`;
  if (h.apiLevel > 0) {
    checkInt(h.apiLevel, path, ".__p.api_level");
    s += `,"api_level":${h.apiLevel}`;
  }
  return `${s},"type":`;
}

/**
 * The rest of {@link encodeMessage}'s text after {@link encodeHeaderPrefix}: the type, the
 * payload, the closing braces. The header fields of `m` are not read.
 *
 * @param contentJson A RESULT's content already encoded ({@link encodeJson}), so that a reply
 *   whose size was measured is not encoded twice; ignored for other types.
 */
export function encodeMessageTail(m: OsrfMessage, path = "body[0]", contentJson?: string): string {
  switch (m.type) {
    case "CONNECT":
    case "DISCONNECT":
      return `"${m.type}"}}`;
    case "REQUEST":
      if (!Array.isArray(m.payload.params)) fail(`${path}.__p.payload.__p.params`, "an array", m.payload.params);
      return (
        `"REQUEST","payload":{"__c":"osrfMethod","__p":{"method":${encodeString(m.payload.method)}` +
        `,"params":${encodeJson(m.payload.params)}}}}}`
      );
    case "RESULT": {
      const r = m.payload;
      if (!RESULT_CLASSES.includes(r.className)) {
        fail(`${path}.__p.payload.__c`, `one of ${RESULT_CLASSES.join(", ")}`, r.className);
      }
      checkInt(r.statusCode, path, ".__p.payload.__p.statusCode");
      const status = r.status === null ? "null" : encodeString(r.status);
      return (
        `"RESULT","payload":{"__c":"${r.className}","__p":{"status":${status}` +
        `,"statusCode":"${r.statusCode}","content":${contentJson ?? encodeJson(r.content)}}}}}`
      );
    }
    case "STATUS": {
      const st = m.payload;
      if (typeof st.className !== "string" || st.className === "") {
        fail(`${path}.__p.payload.__c`, "a class name", st.className);
      }
      checkInt(st.statusCode, path, ".__p.payload.__p.statusCode");
      return (
        `"STATUS","payload":{"__c":${encodeString(st.className)},"__p":{"status":${encodeString(st.status)}` +
        `,"statusCode":"${st.statusCode}"}}}}`
      );
    }
    default:
      return fail(`${path}.__p.type`, `one of ${MESSAGE_TYPES.join(", ")}`, (m as { type: unknown }).type);
  }
}

/**
 * Encodes messages as a `<body>` text (before XML escaping), exactly as the C library would.
 *
 * @param msgs Messages in sending order.
 * @throws ProtocolError if a message cannot be represented; TypeError for cyclic content.
 */
export function encodeBody(msgs: readonly OsrfMessage[]): string {
  return `[${msgs.map((m, i) => encodeMessage(m, bodyPath(i))).join(",")}]`;
}
