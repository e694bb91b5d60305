/**
 * A one-pass reader of the top level of a Redis bus element: each key's value as JSON.parse
 * would give it, except that an array or object value stays the JSON text it was
 * ({@link RawJson}). A process that routes messages (the listener) then never builds a body's
 * osrfMessage array, nor writes it back to text to hand it on: the body is a slice of the
 * element. Nested values are skipped by matching brackets and strings only, so their own
 * syntax is checked by whoever decodes them (the drone answers a bad body). Pure: no I/O.
 */

/** An array or object value of the top level, as its JSON text. */
export class RawJson {
  constructor(
    /** The value's JSON text, from its `[` or `{` to the matching bracket. */
    readonly text: string,
  ) {}

  /** `"array"` or `"object"`, as a type error names it. */
  get kind(): "array" | "object" {
    return this.text.charCodeAt(0) === BRACKET ? "array" : "object";
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const BRACE = 0x7b;
const BRACE_END = 0x7d;
const BRACKET = 0x5b;
const BRACKET_END = 0x5d;

/**
 * The transport fields of a Redis bus element, each as JSON.parse would give it (strings,
 * numbers, booleans, `null`; arrays and objects as {@link RawJson}), undefined when absent.
 * Keys of other names are skipped.
 */
export interface ScannedEnvelope {
  to: unknown;
  from: unknown;
  thread: unknown;
  osrf_xid: unknown;
  router_to: unknown;
  router_class: unknown;
  router_command: unknown;
  body: unknown;
}

/**
 * The transport fields of the JSON object `text` ({@link ScannedEnvelope}). A key repeated
 * reads as its last value, as with JSON.parse. Undefined for anything this reader does not
 * take on itself — text that is not one JSON object, a broken string or an unclosed bracket
 * anywhere — so that the caller can let JSON.parse say exactly what is wrong.
 */
export function scanEnvelope(text: string): ScannedEnvelope | undefined {
  let i = skipSpace(text, 0);
  if (text.charCodeAt(i) !== BRACE) return undefined;
  // One shape for every element, filled in as the keys come.
  const out: ScannedEnvelope = {
    to: undefined,
    from: undefined,
    thread: undefined,
    osrf_xid: undefined,
    router_to: undefined,
    router_class: undefined,
    router_command: undefined,
    body: undefined,
  };
  i = skipSpace(text, i + 1);
  if (text.charCodeAt(i) === BRACE_END) return skipSpace(text, i + 1) === text.length ? out : undefined;
  for (;;) {
    if (text.charCodeAt(i) !== QUOTE) return undefined;
    const keyEnd = stringEnd(text, i);
    if (keyEnd < 0) return undefined;
    const key = stringValue(text, i, keyEnd);
    if (key === undefined) return undefined;
    i = skipSpace(text, keyEnd + 1);
    if (text.charCodeAt(i) !== COLON) return undefined;
    i = skipSpace(text, i + 1);
    const c = text.charCodeAt(i);
    let end: number;
    let value: unknown;
    if (c === QUOTE) {
      const close = stringEnd(text, i);
      if (close < 0) return undefined;
      value = stringValue(text, i, close);
      if (value === undefined) return undefined;
      end = close + 1;
    } else if (c === BRACKET || c === BRACE) {
      end = nestedEnd(text, i);
      if (end < 0) return undefined;
      value = new RawJson(text.slice(i, end));
    } else {
      end = primitiveEnd(text, i);
      value = primitive(text.slice(i, end));
      if (value === NOT_PRIMITIVE) return undefined;
    }
    switch (key) {
      case "to":
        out.to = value;
        break;
      case "from":
        out.from = value;
        break;
      case "thread":
        out.thread = value;
        break;
      case "osrf_xid":
        out.osrf_xid = value;
        break;
      case "router_to":
        out.router_to = value;
        break;
      case "router_class":
        out.router_class = value;
        break;
      case "router_command":
        out.router_command = value;
        break;
      case "body":
        out.body = value;
        break;
    }
    i = skipSpace(text, end);
    const d = text.charCodeAt(i);
    if (d === COMMA) {
      i = skipSpace(text, i + 1);
      continue;
    }
    if (d === BRACE_END) return skipSpace(text, i + 1) === text.length ? out : undefined;
    return undefined;
  }
}

function skipSpace(text: string, i: number): number {
  for (;;) {
    const c = text.charCodeAt(i);
    // JSON's four white-space characters: space, tab, line feed, carriage return.
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return i;
    i++;
  }
}

/** Index of the quote closing the string that opens at `start`, or -1. */
function stringEnd(text: string, start: number): number {
  let from = start + 1;
  for (;;) {
    const q = text.indexOf('"', from);
    if (q < 0) return -1;
    // Escaped when an odd number of backslashes precede it (the opening quote stops the count).
    let k = q - 1;
    while (text.charCodeAt(k) === BACKSLASH) k--;
    if ((q - 1 - k) % 2 === 0) return q;
    from = q + 1;
  }
}

/** The string between the quotes at `start` and `end`, or undefined when it is not valid JSON. */
function stringValue(text: string, start: number, end: number): string | undefined {
  let verbatim = true;
  for (let i = start + 1; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c === BACKSLASH) {
      verbatim = false;
      break;
    }
  }
  if (verbatim) return text.slice(start + 1, end);
  try {
    return JSON.parse(text.slice(start, end + 1)) as string;
  } catch {
    return undefined;
  }
}

/**
 * Index just past the bracket closing the one at `start`, or -1 when none does. Brackets are
 * counted, not paired by kind: a body with `[` closed by `}` is the decoder's to refuse.
 */
function nestedEnd(text: string, start: number): number {
  let depth = 0;
  for (let i = start; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      i = stringEnd(text, i);
      if (i < 0) return -1;
    } else if (c === BRACKET || c === BRACE) {
      depth++;
    } else if (c === BRACKET_END || c === BRACE_END) {
      if (--depth === 0) return i + 1;
    }
  }
  return -1;
}

/** Index just past a number, `true`, `false` or `null` that starts at `start`. */
function primitiveEnd(text: string, start: number): number {
  let i = start;
  for (;;) {
    const c = text.charCodeAt(i);
    if (
      Number.isNaN(c) ||
      c === COMMA ||
      c === BRACE_END ||
      c === BRACKET_END ||
      c === 0x20 ||
      c === 0x09 ||
      c === 0x0a ||
      c === 0x0d
    )
      return i;
    i++;
  }
}

const NOT_PRIMITIVE = Symbol("not a JSON primitive");

function primitive(token: string): number | boolean | null | typeof NOT_PRIMITIVE {
  if (token === "null") return null;
  if (token === "true") return true;
  if (token === "false") return false;
  const c = token.charCodeAt(0);
  // A number starts with "-" or a digit; JSON.parse checks the rest of its grammar.
  if (c !== 0x2d && (c < 0x30 || c > 0x39)) return NOT_PRIMITIVE;
  try {
    const v: unknown = JSON.parse(token);
    return typeof v === "number" ? v : NOT_PRIMITIVE;
  } catch {
    return NOT_PRIMITIVE;
  }
}
