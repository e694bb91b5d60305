/**
 * The Redis bus's transport message: one JSON object per list element,
 * `{"to","from","thread","osrf_xid","router_to","router_class","router_command","body"}`,
 * `body` a real JSON array of osrfMessages (the string `"[]"` in registrations). Written in C's
 * key order; read in any order (Perl's are random), with `null` for absent values (C sends
 * `"osrf_xid":null` in router messages). Pure: no I/O.
 */
import type { BusMessage, OutgoingBusMessage } from "../bus/types.ts";
import { RawJson, type ScannedEnvelope, scanEnvelope } from "./envelope-scan.ts";

/** A list element that is not an OpenSRF transport message; `reason` says why, in one line. */
export class EnvelopeError extends Error {
  constructor(readonly reason: string) {
    super(`malformed Redis bus message: ${reason}`);
    this.name = "EnvelopeError";
  }
}

/**
 * The list element for `m` (sender `from` when `m.from` is unset). `m.body` must be the JSON
 * text of the osrfMessage array (what encodeBody writes): it is spliced in as is, not
 * re-encoded. Router commands carry their body as a JSON string, `"[]"` when empty, as C and
 * Perl listeners send them.
 */
export function encodeEnvelope(m: OutgoingBusMessage, from: string): string {
  let out = `{"to":${JSON.stringify(m.to)},"from":${JSON.stringify(m.from || from)},"thread":${JSON.stringify(m.thread ?? "")}`;
  out += `,"osrf_xid":${JSON.stringify(m.xid ?? "")}`;
  if (m.routerTo) out += `,"router_to":${JSON.stringify(m.routerTo)}`;
  if (m.routerClass) out += `,"router_class":${JSON.stringify(m.routerClass)}`;
  if (m.routerCommand) {
    out += `,"router_command":${JSON.stringify(m.routerCommand)},"body":${JSON.stringify(m.body || "[]")}`;
  } else {
    out += `,"body":${m.body?.trim() ? m.body : "[]"}`;
  }
  return `${out}}`;
}

/**
 * The {@link BusMessage} in a list element. The body comes back as JSON text (a string body,
 * as registrations have, as that string): for an array, the element's own text of it, never
 * parsed nor written again (envelope-scan.ts), so a body whose inner syntax is broken is
 * found by whoever decodes it. `routerFrom` is always "" (Redis has no such field).
 * @param withBody False: leave `body` "" (a router that forwards the element as it was
 *   need not read it).
 * @throws EnvelopeError for text that is not a JSON object, a field of the wrong type, or a
 *   message without `from` (nobody could be answered).
 */
export function decodeEnvelope(text: string, withBody = true): BusMessage {
  // What the scanner does not take on itself, JSON.parse reads, or says what is wrong with.
  const o = scanEnvelope(text) ?? parseObject(text);
  const m: BusMessage = {
    to: scalar(o.to, "to"),
    from: scalar(o.from, "from"),
    thread: scalar(o.thread, "thread"),
    body: "",
    routerFrom: "",
    routerTo: scalar(o.router_to, "router_to"),
    routerClass: scalar(o.router_class, "router_class"),
    routerCommand: scalar(o.router_command, "router_command"),
    xid: scalar(o.osrf_xid, "osrf_xid"),
  };
  if (!m.from) throw new EnvelopeError(`no "from" (thread "${m.thread}"): nobody to answer`);
  if (!withBody) return m;
  const body = o.body;
  if (typeof body === "string") m.body = body;
  else if (body instanceof RawJson && body.kind === "array") m.body = body.text;
  else if (Array.isArray(body)) m.body = JSON.stringify(body);
  else if (body !== undefined && body !== null) throw new EnvelopeError(`"body" is a ${typeOf(body)}, not an array`);
  return m;
}

function parseObject(text: string): Partial<ScannedEnvelope> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new EnvelopeError(`not JSON (${(e as Error).message})`);
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    throw new EnvelopeError(`a JSON ${Array.isArray(v) ? "array" : v === null ? "null" : typeof v}, not an object`);
  }
  return v as Partial<ScannedEnvelope>;
}

function scalar(v: unknown, key: string): string {
  if (v === undefined || v === null) return "";
  if (typeof v === "string") return v;
  if (typeof v === "number") return String(v);
  throw new EnvelopeError(`"${key}" is a ${typeOf(v)}, not a string`);
}

/** A value's JSON type as the errors name it (`typeof`, with arrays told apart). */
function typeOf(v: unknown): string {
  if (v instanceof RawJson) return v.kind;
  return Array.isArray(v) ? "array" : typeof v;
}
