/**
 * Sizing of outgoing replies, shared by servers (sending) and clients (receiving):
 * - bundling: several small messages share one `<body>` array (C's response buffer);
 * - chunking: one large result is cut into `osrfResultPartial` pieces that the client
 *   concatenates back (C's `osrfSendChunkedResult` / `_osrf_app_request_push_queue`).
 */
import { bodyPath, encodeJson, encodeMessage } from "./codec.ts";
import { describeValue, ProtocolError } from "./errors.ts";
import { type HeaderOptions, makeHeader } from "./messages.ts";
import { StatusCode, Texts } from "./status.ts";
import type { JsonValue, OsrfMessage, ResultMessage } from "./types.ts";

/** What {@link Bundler.addEncoded} returns when nothing is to be sent yet. */
const NOTHING: readonly string[] = Object.freeze([]);

/** C's default limit for one bundled `<body>` array, in bytes (osrf_app_session.h). */
export const OSRF_MSG_BUNDLE_SIZE = 25600;

/** C's default limit above which one result is chunked, in (XML-escaped) bytes. */
export const OSRF_MSG_CHUNK_SIZE = 51200;

// Extra characters C's osrfXmlEscapingLength charges per character; its own unit test pins
// `<tag attr="attribute value">a &amp; b</tag>` at 38, which these weights reproduce.
function escapeExtra(code: number): number {
  switch (code) {
    case 0x3c: // <
    case 0x3e: // >
      return 3;
    case 0x26: // &
      return 4;
    case 0x22: // "
      return 11;
    default:
      return 0;
  }
}

/** The most one character can cost (a `"`); smaller chunk sizes cannot always make progress. */
export const MIN_CHUNK_SIZE = 12;

// What C charges extra for: only these four characters cost more than one.
const ESCAPABLE = /[<>&"]/g;

/**
 * C's estimate (`osrfXmlEscapingLength`) of how many characters XML escaping adds to `text`:
 * 3 per `<` or `>`, 4 per `&`, 11 per `"`.
 */
export function xmlEscapingExtra(text: string): number {
  // The native regex scan skips plain runs; a megabyte result has few escapable characters.
  let extra = 0;
  ESCAPABLE.lastIndex = 0;
  for (let m = ESCAPABLE.exec(text); m !== null; m = ESCAPABLE.exec(text))
    extra += escapeExtra(text.charCodeAt(m.index));
  return extra;
}

/** `text.length` plus the escaping estimate: what C compares against the chunk size. */
export function escapedSize(text: string): number {
  return text.length + xmlEscapingExtra(text);
}

const isHigh = (c: number) => c >= 0xd800 && c <= 0xdbff;
const isLow = (c: number) => c >= 0xdc00 && c <= 0xdfff;

/**
 * Cuts `text` into consecutive pieces whose {@link escapedSize} is at most `chunkSize`,
 * never between the two halves of a surrogate pair. Joining the pieces gives `text` back.
 *
 * C cuts at a fixed, escape-scaled stride; cutting greedily by each piece's own cost keeps
 * every piece under the limit even when escapable characters cluster.
 *
 * @throws RangeError if `chunkSize` is not an integer ≥ {@link MIN_CHUNK_SIZE}.
 */
export function chunkText(text: string, chunkSize: number): string[] {
  if (!Number.isSafeInteger(chunkSize) || chunkSize < MIN_CHUNK_SIZE) {
    throw new RangeError(`chunk size must be an integer >= ${MIN_CHUNK_SIZE}, got ${chunkSize}`);
  }
  const chunks: string[] = [];
  let start = 0; // where the current piece begins
  let size = 0; // its cost so far
  let at = 0; // first character not yet counted
  // Greedy, as if character by character, but plain runs (cost 1 each) are counted whole
  // between the escapable characters the regex finds.
  ESCAPABLE.lastIndex = 0;
  for (;;) {
    const m = ESCAPABLE.exec(text);
    const next = m === null ? text.length : m.index;
    while (size + (next - at) > chunkSize) {
      let cut = at + (chunkSize - size);
      if (isLow(text.charCodeAt(cut)) && cut - 1 > start && isHigh(text.charCodeAt(cut - 1))) cut--;
      chunks.push(text.slice(start, cut));
      start = cut;
      at = cut;
      size = 0;
    }
    size += next - at;
    if (m === null) break;
    const cost = 1 + escapeExtra(text.charCodeAt(next));
    if (size + cost > chunkSize) {
      chunks.push(text.slice(start, next));
      start = next;
      size = 0;
    }
    size += cost;
    at = next + 1;
  }
  if (start < text.length) chunks.push(text.slice(start));
  return chunks;
}

/**
 * Decides whether one result must be chunked and, if so, builds the messages that carry it.
 *
 * Returns null when the content's JSON (C encoding) fits: its escaped size is at most
 * `chunkSize`; send a normal RESULT then. Otherwise returns RESULT `osrfResultPartial`
 * "Partial Response" 206 messages whose content is a piece of that JSON text, followed by
 * RESULT `osrfResultPartialComplete` "Partial Response Finalized" 204 with null content.
 * Send each in its own `<body>`, after flushing anything bundled before.
 *
 * @param threadTrace The request's threadTrace.
 * @param content The result.
 * @param header Header fields for the messages.
 * @param chunkSize Limit in escaped bytes (C's `max_chunk_size`).
 */
export function splitResult(
  threadTrace: number,
  content: JsonValue,
  header: HeaderOptions = {},
  chunkSize: number = OSRF_MSG_CHUNK_SIZE,
): ResultMessage[] | null {
  return splitEncodedResult(threadTrace, encodeJson(content), header, chunkSize);
}

/**
 * {@link splitResult} for a result whose JSON text (`encodeJson`) the caller already has:
 * a RESULT that fits is then sent with that text (`encodeMessageTail`'s `contentJson`), not
 * encoded a second time.
 */
export function splitEncodedResult(
  threadTrace: number,
  text: string,
  header: HeaderOptions = {},
  chunkSize: number = OSRF_MSG_CHUNK_SIZE,
): ResultMessage[] | null {
  // No character costs more than 12: short texts fit without counting.
  if (text.length * 12 <= chunkSize || escapedSize(text) <= chunkSize) return null;
  const h = makeHeader(threadTrace, header);
  const msgs: ResultMessage[] = chunkText(text, chunkSize).map((piece) => ({
    ...h,
    type: "RESULT",
    payload: {
      className: "osrfResultPartial",
      status: Texts.partialResponse,
      statusCode: StatusCode.PARTIAL,
      content: piece,
    },
  }));
  msgs.push({
    ...h,
    type: "RESULT",
    payload: {
      className: "osrfResultPartialComplete",
      status: Texts.partialFinalized,
      statusCode: StatusCode.NOCONTENT,
      content: null,
    },
  });
  return msgs;
}

/** What {@link PartialAssembler.add} returns: nothing yet, or one complete result. */
export type Assembled = { done: false } | { done: true; content: JsonValue };

/**
 * Client side of chunking: collects `osrfResultPartial` pieces per threadTrace and yields the
 * parsed result when `osrfResultPartialComplete` arrives. Plain `osrfResult` passes through.
 */
export class PartialAssembler {
  private readonly parts = new Map<number, { pieces: string[]; length: number }>();
  private readonly maxLength: number;

  /**
   * @param options.maxLength Cap on one reassembled text, in characters, so a peer cannot
   *   make the client buffer without end (default: no cap).
   */
  constructor(options: { maxLength?: number } = {}) {
    this.maxLength = options.maxLength ?? Number.POSITIVE_INFINITY;
  }

  /**
   * Adds one RESULT message.
   *
   * A partial-complete with nothing buffered before it yields nothing, as in C.
   *
   * @returns `{done: false}` while pieces accumulate; `{done: true, content}` for a plain
   *   result or a completed reassembly.
   * @throws ProtocolError if a piece is not a string, the cap is exceeded, or the joined
   *   text is not JSON (the buffered pieces of that threadTrace are dropped).
   */
  add(msg: ResultMessage): Assembled {
    const { className, content } = msg.payload;
    const trace = msg.threadTrace;
    if (className === "osrfResult") return { done: true, content };

    if (className === "osrfResultPartial") {
      if (typeof content !== "string") {
        this.parts.delete(trace);
        throw new ProtocolError(
          "payload.__p.content",
          `expected a string piece of a partial response, got ${describeValue(content)}`,
        );
      }
      let entry = this.parts.get(trace);
      if (entry === undefined) {
        entry = { pieces: [], length: 0 };
        this.parts.set(trace, entry);
      }
      entry.pieces.push(content);
      entry.length += content.length;
      if (entry.length > this.maxLength) {
        this.parts.delete(trace);
        throw new ProtocolError("payload.__p.content", `partial response exceeds ${this.maxLength} characters`);
      }
      return { done: false };
    }

    // osrfResultPartialComplete
    const entry = this.parts.get(trace);
    this.parts.delete(trace);
    if (entry === undefined) return { done: false };
    const text = entry.pieces.join("");
    try {
      return { done: true, content: JSON.parse(text) as JsonValue };
    } catch (e) {
      throw new ProtocolError("payload.__p.content", "reassembled partial response is not valid JSON", {
        cause: e,
      });
    }
  }

  /** Drops buffered pieces of one threadTrace (e.g. its request failed), or of all. */
  reset(threadTrace?: number): void {
    if (threadTrace === undefined) this.parts.clear();
    else this.parts.delete(threadTrace);
  }

  /** Number of threadTraces with pieces buffered. */
  get pending(): number {
    return this.parts.size;
  }
}

/**
 * Server side of bundling: collects outgoing messages into `<body>` arrays that stay under
 * `bundleSize` bytes, as C's response buffer does. Bodies are pure ASCII (see `encodeJson`),
 * so characters are bytes.
 */
export class Bundler {
  // "[" + the messages joined by ",": the body minus its closing "]"; "" when empty. One
  // string grown in place, not an array joined at the end: a drone bundles the replies of
  // every request, mostly before its JIT is warm.
  private text = "";
  private n = 0;

  /** @param bundleSize Upper bound of a bundled body in bytes (C's `max_bundle_size`). */
  constructor(readonly bundleSize: number = OSRF_MSG_BUNDLE_SIZE) {}

  /**
   * Queues a message.
   *
   * @returns Bodies to send now, in order: the pending bundle when this message would make
   *   it reach `bundleSize`, and this message alone when it reaches the limit by itself.
   * @throws ProtocolError if the message cannot be encoded.
   */
  add(msg: OsrfMessage): readonly string[] {
    return this.addEncoded(encodeMessage(msg, bodyPath(this.n)));
  }

  /** {@link add} for a message already encoded (`encodeMessage`'s text). */
  addEncoded(json: string): readonly string[] {
    let out: string[] | undefined;
    if (this.n > 0 && this.text.length + 1 + json.length + 1 >= this.bundleSize) {
      out = [this.flush() as string];
    }
    if (json.length + 2 >= this.bundleSize) {
      const alone = `[${json}]`;
      if (out === undefined) return [alone];
      out.push(alone);
      return out;
    }
    this.text = this.n === 0 ? `[${json}` : `${this.text},${json}`;
    this.n++;
    return out ?? NOTHING;
  }

  /** Returns the pending messages as one body and empties the bundle; null when empty. */
  flush(): string | null {
    if (this.n === 0) return null;
    const body = `${this.text}]`;
    this.text = "";
    this.n = 0;
    return body;
  }

  /** Number of messages waiting. */
  get count(): number {
    return this.n;
  }
}
