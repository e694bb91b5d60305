/**
 * Our streaming XML tokenizer for XMPP streams (ltx's SAX interface; see stream-parser.ts for
 * the @xmpp/client stream parser built on it).
 *
 * XMPP needs a small, strict subset of XML: elements, attributes, text with the five
 * predefined entities and character references, CDATA, comments and processing
 * instructions (both skipped). DTDs are refused, as RFC 6120 §11.1 requires.
 *
 * Input arrives in arbitrary chunks. Every token may be cut anywhere, so the tokenizer is a
 * state machine that resumes where the last chunk stopped. Long runs (text, attribute
 * values, CDATA) are collected as a list of slices and joined once when they end, and
 * scanning uses `indexOf`, so parsing is linear in the input however it is cut.
 */

/** A well-formedness error. Once one is reported the tokenizer ignores further input. */
export class XmlSyntaxError extends Error {
  override readonly name = "XMLError";
}

/** Events of {@link XmlTokenizer} and their listeners' signatures. */
export interface TokenizerEvents {
  /** A start tag (or the start of a self-closing one) with its unescaped attributes. */
  startElement: (name: string, attrs: Record<string, string>) => void;
  /** An end tag; `selfClosing` when it came from `<name/>`. */
  endElement: (name: string, selfClosing: boolean) => void;
  /** Character data, unescaped (CDATA sections arrive as their own, verbatim, text events). */
  text: (text: string) => void;
  /** The input is not well-formed; nothing more is emitted. Thrown by `write` when nobody listens. */
  error: (err: XmlSyntaxError) => void;
}

type EventName = keyof TokenizerEvents;

// Tokenizer states.
const TEXT = 0;
/** After `<`. */
const OPEN = 1;
const START_NAME = 2;
/** Inside a start tag, between attributes. */
const IN_TAG = 3;
const ATTR_NAME = 4;
const ATTR_EQ = 5;
const ATTR_QUOTE = 6;
const ATTR_VALUE = 7;
/** After the `/` of `<name/`. */
const EMPTY_END = 8;
const END_NAME = 9;
const END_TAIL = 10;
/** After `<!`: comment, CDATA or a (refused) declaration. */
const BANG = 11;
/** Inside a comment or a processing instruction, skipped up to {@link XmlTokenizer.skipTo}. */
const SKIP = 12;
const CDATA = 13;
const DEAD = 14;

const GT = 62;
const SLASH = 47;
const EQ = 61;
const DQUOTE = 34;
const SQUOTE = 39;
const BANG_CHAR = 33;
const QUESTION = 63;

// ASCII character classes; everything from U+0080 up counts as a name character.
const NAME_CHAR = new Uint8Array(128);
const NAME_START = new Uint8Array(128);
const SPACE = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c);
  NAME_START[c] = /[A-Za-z_:]/.test(ch) ? 1 : 0;
  NAME_CHAR[c] = /[A-Za-z0-9_:.-]/.test(ch) ? 1 : 0;
  SPACE[c] = c === 32 || c === 9 || c === 10 || c === 13 ? 1 : 0;
}

const isNameStart = (c: number): boolean => c >= 128 || NAME_START[c] === 1;
const isSpace = (c: number): boolean => c < 128 && SPACE[c] === 1;

/** Index of the first non-name character of `data` at or after `pos`, or `data.length`. */
function nameEnd(data: string, pos: number): number {
  // isNameChar written out: a call per character is what an interpreted loop pays most for.
  const n = data.length;
  let i = pos;
  while (i < n) {
    const c = data.charCodeAt(i);
    if (c < 128 && NAME_CHAR[c] !== 1) break;
    i++;
  }
  return i;
}

const BANG_COMMENT = "--";
const BANG_CDATA = "[CDATA[";

/** Shows one character of input in an error message. */
function showChar(c: number): string {
  return c < 32 || c === 127 ? `U+${c.toString(16).padStart(4, "0").toUpperCase()}` : `'${String.fromCharCode(c)}'`;
}

function isXmlChar(cp: number): boolean {
  return (
    cp === 0x9 ||
    cp === 0xa ||
    cp === 0xd ||
    (cp >= 0x20 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd) ||
    (cp >= 0x10000 && cp <= 0x10ffff)
  );
}

const HEX = /^[0-9A-Fa-f]{1,8}$/;
const DEC = /^[0-9]{1,10}$/;
/** Longest reference body worth looking at (`#x10FFFF` plus slack); longer means no `;` of its own. */
const MAX_REF = 12;

function decodeReference(ref: string): string {
  switch (ref) {
    case "quot":
      return '"';
    case "amp":
      return "&";
    case "lt":
      return "<";
    case "gt":
      return ">";
    case "apos":
      return "'";
  }
  if (ref.charCodeAt(0) === 35 /* # */) {
    const hex = ref.charCodeAt(1) === 120; /* x */
    const digits = ref.slice(hex ? 2 : 1);
    if (hex ? HEX.test(digits) : DEC.test(digits)) {
      const cp = parseInt(digits, hex ? 16 : 10);
      if (!isXmlChar(cp)) throw new XmlSyntaxError(`Illegal XML character 0x${cp.toString(16)}`);
      return String.fromCodePoint(cp);
    }
  }
  throw new XmlSyntaxError(`Illegal XML entity &${ref};`);
}

/**
 * Replaces the predefined entities and character references of `raw`.
 * @throws XmlSyntaxError for an unknown entity, a bad or illegal character reference, or an
 *   `&` that starts no reference.
 */
export function unescapeXml(raw: string): string {
  if (raw.indexOf("&") === -1) return raw;
  // Servers re-serialize with `&quot;` for every `"` of a JSON body: those go in one native
  // pass (a replacement never makes a new `&`), the careful loop takes whatever `&` is left.
  const s = raw.includes("&quot;") ? raw.replaceAll("&quot;", '"') : raw;
  return s.indexOf("&") === -1 ? s : unescapeReferences(s);
}

/**
 * Decodes a body kept as XML text (`xmlBody`). `error` says what was wrong with one that
 * is not well-formed (an `&` starting no reference, an unknown entity); `body` is "" then.
 */
export function decodeXmlBody(xmlBody: string): { body: string; error?: string } {
  try {
    return { body: unescapeXml(xmlBody) };
  } catch (e) {
    return { body: "", error: (e as Error).message };
  }
}

/** {@link unescapeXml} one reference at a time, checking each. */
function unescapeReferences(raw: string): string {
  let amp = raw.indexOf("&");
  let out = "";
  let done = 0;
  while (amp !== -1) {
    const semi = raw.indexOf(";", amp + 1);
    if (semi === -1 || semi - amp > MAX_REF) {
      const shown = raw.slice(amp, Math.min(raw.length, amp + MAX_REF));
      throw new XmlSyntaxError(`Illegal XML entity ${shown}: '&' must start an entity or character reference`);
    }
    // Rope concatenation: the pieces are flattened once, when the result is first read.
    out += raw.slice(done, amp) + decodeReference(raw.slice(amp + 1, semi));
    done = semi + 1;
    amp = raw.indexOf("&", done);
  }
  return out + raw.slice(done);
}

/** CDATA content as the escaped text it stands for, for {@link XmlTokenizer.rawText}. */
function escapeCdata(text: string): string {
  return /[&<>]/.test(text) ? text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;") : text;
}

/**
 * Streaming XML tokenizer with the SAX interface ltx's parsers have (`write`, `end`, `on`),
 * so it serves both ltx's `parse(xml, {Parser})` and the XMPP stream parser.
 *
 * Events: `startElement(name, attrs)`, `endElement(name, selfClosing)`, `text(str)`,
 * `error(err)`. The stream header `<stream:stream …>` is an ordinary start tag; its end
 * tag closes the stream. `end()` does not judge completeness: the element builder knows
 * whether its document is finished.
 */
export class XmlTokenizer {
  /**
   * Hand character data on as it stands in the input, entity and character references not
   * replaced (CDATA sections escaped to match), for a reader that passes text on unread and
   * decodes it only if ever needed (`unescapeXml`, which then also does the checking skipped
   * here). Attribute values are always unescaped. May be switched between events.
   */
  rawText = false;
  private state = TEXT;
  /** Slices of the token being read when it spans chunks. */
  private parts: string[] = [];
  /** Up to two characters before the current chunk, for `-->`, `]]>`, `?>` cut between chunks. */
  private carry = "";
  /** Delimiter characters that were in `carry` when the last seek found its delimiter. */
  private overlap = 0;
  private bang = "";
  /** What ends the comment or processing instruction being skipped. */
  private skipTo = "";
  private tagName = "";
  private attrName = "";
  private attrs: Record<string, string> = {};
  private quote = 0;
  /** Whitespace since the tag name or the last attribute (XML requires it between attributes). */
  private spaced = false;
  private ended = false;
  private decoder: TextDecoder | undefined;
  private readonly onStart: Array<TokenizerEvents["startElement"]> = [];
  private readonly onEnd: Array<TokenizerEvents["endElement"]> = [];
  private readonly onText: Array<TokenizerEvents["text"]> = [];
  private readonly onError: Array<TokenizerEvents["error"]> = [];

  /** Adds a listener. */
  on<E extends EventName>(event: E, listener: TokenizerEvents[E]): this {
    this.listeners(event).push(listener as never);
    return this;
  }

  /** Removes a listener added with {@link on}. */
  off<E extends EventName>(event: E, listener: TokenizerEvents[E]): this {
    const list = this.listeners(event) as unknown[];
    const i = list.indexOf(listener);
    if (i >= 0) list.splice(i, 1);
    return this;
  }

  /** Alias of {@link off}, for EventEmitter-style callers. */
  removeListener<E extends EventName>(event: E, listener: TokenizerEvents[E]): this {
    return this.off(event, listener);
  }

  private listeners(event: EventName): unknown[] {
    switch (event) {
      case "startElement":
        return this.onStart;
      case "endElement":
        return this.onEnd;
      case "text":
        return this.onText;
      case "error":
        return this.onError;
      default:
        throw new TypeError(`XmlTokenizer has no event ${String(event)}`);
    }
  }

  /**
   * Feeds the next chunk. Bytes are decoded as UTF-8, keeping characters cut between chunks.
   * @throws XmlSyntaxError when the input is not well-formed and no `error` listener is set.
   */
  write(chunk: string | Uint8Array): void {
    if (this.ended || this.state === DEAD) return;
    let data: string;
    if (typeof chunk === "string") data = chunk;
    else {
      this.decoder ??= new TextDecoder("utf-8");
      data = this.decoder.decode(chunk, { stream: true });
    }
    try {
      this.run(data);
    } catch (e) {
      if (!(e instanceof XmlSyntaxError)) throw e;
      this.state = DEAD;
      this.parts = [];
      if (this.onError.length === 0) throw e;
      for (const fn of this.onError.slice()) fn(e);
    }
  }

  /** Feeds a last chunk, if given; later writes are ignored. */
  end(chunk?: string | Uint8Array): void {
    if (chunk !== undefined && chunk.length > 0) this.write(chunk);
    this.ended = true;
  }

  private run(data: string): void {
    const len = data.length;
    let pos = 0;
    while (pos < len) {
      switch (this.state) {
        case TEXT: {
          const lt = data.indexOf("<", pos);
          if (lt === -1) {
            this.parts.push(pos === 0 ? data : data.slice(pos));
            return;
          }
          if (lt > pos || this.parts.length > 0) {
            const raw = this.take(data, pos, lt);
            if (raw.length > 0) this.emitText(this.rawText ? raw : unescapeXml(raw));
          }
          pos = lt + 1;
          this.state = OPEN;
          break;
        }
        case OPEN: {
          const c = data.charCodeAt(pos);
          if (c === SLASH) {
            pos++;
            this.state = END_NAME;
          } else if (c === BANG_CHAR) {
            pos++;
            this.bang = "";
            this.state = BANG;
          } else if (c === QUESTION) {
            pos++;
            this.carry = "";
            this.skipTo = "?>";
            this.state = SKIP;
          } else if (isNameStart(c)) {
            this.state = START_NAME;
          } else {
            throw new XmlSyntaxError(`${showChar(c)} cannot start a tag name`);
          }
          break;
        }
        case START_NAME: {
          const i = nameEnd(data, pos);
          if (i === len) {
            this.parts.push(data.slice(pos));
            return;
          }
          this.tagName = this.take(data, pos, i);
          this.attrs = {};
          this.spaced = false;
          this.state = IN_TAG;
          pos = i;
          break;
        }
        case IN_TAG: {
          let c = data.charCodeAt(pos);
          while (isSpace(c)) {
            this.spaced = true;
            if (++pos === len) return;
            c = data.charCodeAt(pos);
          }
          if (c === GT) {
            pos++;
            this.state = TEXT;
            this.emitStart(this.tagName, this.attrs);
          } else if (c === SLASH) {
            pos++;
            this.state = EMPTY_END;
          } else if (isNameStart(c) && this.spaced) {
            pos = this.attribute(data, pos);
          } else if (isNameStart(c)) {
            throw new XmlSyntaxError(`<${this.tagName}>: whitespace is required between attributes`);
          } else {
            throw new XmlSyntaxError(`<${this.tagName}>: unexpected ${showChar(c)} in a start tag`);
          }
          break;
        }
        case ATTR_NAME: {
          const i = nameEnd(data, pos);
          if (i === len) {
            this.parts.push(data.slice(pos));
            return;
          }
          this.attrName = this.take(data, pos, i);
          this.state = ATTR_EQ;
          pos = i;
          break;
        }
        case ATTR_EQ: {
          const c = data.charCodeAt(pos);
          if (c === EQ) this.state = ATTR_QUOTE;
          else if (!isSpace(c)) throw new XmlSyntaxError(`<${this.tagName}>: attribute ${this.attrName} has no value`);
          pos++;
          break;
        }
        case ATTR_QUOTE: {
          const c = data.charCodeAt(pos);
          if (c === DQUOTE || c === SQUOTE) {
            this.quote = c;
            this.state = ATTR_VALUE;
          } else if (!isSpace(c)) {
            throw new XmlSyntaxError(`<${this.tagName}>: the value of ${this.attrName} must be quoted`);
          }
          pos++;
          break;
        }
        case ATTR_VALUE: {
          const q = data.indexOf(this.quote === DQUOTE ? '"' : "'", pos);
          if (q === -1) {
            this.parts.push(data.slice(pos));
            return;
          }
          this.setAttribute(this.attrName, this.take(data, pos, q));
          this.state = IN_TAG;
          pos = q + 1;
          break;
        }
        case EMPTY_END: {
          if (data.charCodeAt(pos) !== GT) throw new XmlSyntaxError(`<${this.tagName}>: '/' not followed by '>'`);
          pos++;
          this.state = TEXT;
          this.emitStart(this.tagName, this.attrs);
          this.emitEnd(this.tagName, true);
          break;
        }
        case END_NAME: {
          const i = nameEnd(data, pos);
          if (i === len) {
            this.parts.push(data.slice(pos));
            return;
          }
          this.tagName = this.take(data, pos, i);
          if (this.tagName === "") throw new XmlSyntaxError(`${showChar(data.charCodeAt(i))} cannot start a tag name`);
          this.state = END_TAIL;
          pos = i;
          break;
        }
        case END_TAIL: {
          const c = data.charCodeAt(pos++);
          if (c === GT) {
            this.state = TEXT;
            this.emitEnd(this.tagName, false);
          } else if (!isSpace(c)) {
            throw new XmlSyntaxError(`</${this.tagName}>: unexpected ${showChar(c)} in an end tag`);
          }
          break;
        }
        case BANG: {
          while (pos < len && this.bang.length < BANG_CDATA.length) {
            this.bang += data[pos++];
            if (this.bang === BANG_COMMENT) {
              this.carry = "";
              this.skipTo = "-->";
              this.state = SKIP;
              break;
            }
            if (this.bang === BANG_CDATA) {
              this.carry = "";
              this.state = CDATA;
              break;
            }
            if (!BANG_COMMENT.startsWith(this.bang) && !BANG_CDATA.startsWith(this.bang)) {
              throw new XmlSyntaxError(`<!${this.bang}…: document type declarations are not allowed in XMPP`);
            }
          }
          break;
        }
        case SKIP: {
          const end = this.seek(data, pos, this.skipTo);
          if (end === -1) return;
          pos = end;
          this.state = TEXT;
          break;
        }
        case CDATA: {
          const end = this.seek(data, pos, "]]>");
          if (end === -1) {
            this.parts.push(data.slice(pos));
            return;
          }
          const overlap = this.overlap;
          let content = this.take(data, pos, overlap > 0 ? pos : end - 3);
          // The first characters of "]]>" ended the previous chunk and were recorded as content.
          if (overlap > 0) content = content.slice(0, content.length - overlap);
          pos = end;
          this.state = TEXT;
          if (content.length > 0) this.emitText(this.rawText ? escapeCdata(content) : content);
          break;
        }
      }
    }
  }

  /**
   * An attribute starting at `pos`: one written `name='value'` (or with double quotes)
   * entirely in this chunk is read here at once, with the same checks as in the states it
   * would pass through ({@link setAttribute}); any other (spaces around `=`, cut between
   * chunks) is left to those states. Five turns of the state loop per attribute were most of
   * what a process still on the interpreter paid to read a stanza (a new drone, its
   * session's requests).
   * @returns where reading goes on.
   */
  private attribute(data: string, pos: number): number {
    const eq = nameEnd(data, pos);
    const open = eq + 1;
    const quote = data.charCodeAt(open);
    if (data.charCodeAt(eq) === EQ && (quote === DQUOTE || quote === SQUOTE)) {
      const close = data.indexOf(quote === DQUOTE ? '"' : "'", open + 1);
      if (close !== -1) {
        this.setAttribute(data.slice(pos, eq), data.slice(open + 1, close));
        return close + 1;
      }
    }
    this.state = ATTR_NAME;
    return pos;
  }

  /** Stores an attribute of the tag being read, its value unescaped; refuses `<` in it and a repeated name. */
  private setAttribute(name: string, raw: string): void {
    if (raw.includes("<")) throw new XmlSyntaxError(`<${this.tagName}>: '<' in the value of ${name}`);
    if (Object.hasOwn(this.attrs, name)) throw new XmlSyntaxError(`<${this.tagName}>: attribute ${name} given twice`);
    this.attrs[name] = unescapeXml(raw);
    this.spaced = false;
  }

  /** The recorded slices plus `data[start, end)`, as one string; clears the record. */
  private take(data: string, start: number, end: number): string {
    if (this.parts.length === 0) return data.slice(start, end);
    this.parts.push(data.slice(start, end));
    const joined = this.parts.join("");
    this.parts = [];
    return joined;
  }

  /**
   * Index just past the first `delim` at or after `pos`, counting one that began in the
   * previous chunk (then {@link overlap} says how many of its characters were there), or -1.
   */
  private seek(data: string, pos: number, delim: string): number {
    const carry = this.carry;
    for (let k = Math.min(carry.length, delim.length - 1); k >= 1; k--) {
      if (carry.endsWith(delim.slice(0, k)) && data.startsWith(delim.slice(k), pos)) {
        this.overlap = k;
        return pos + delim.length - k;
      }
    }
    const i = data.indexOf(delim, pos);
    if (i !== -1) {
      this.overlap = 0;
      return i + delim.length;
    }
    const keep = delim.length - 1;
    this.carry = (carry + data.slice(Math.max(pos, data.length - keep))).slice(-keep);
    return -1;
  }

  private emitStart(name: string, attrs: Record<string, string>): void {
    const fns = this.onStart;
    for (let i = 0; i < fns.length; i++) fns[i]!(name, attrs);
  }

  private emitEnd(name: string, selfClosing: boolean): void {
    const fns = this.onEnd;
    for (let i = 0; i < fns.length; i++) fns[i]!(name, selfClosing);
  }

  private emitText(text: string): void {
    const fns = this.onText;
    for (let i = 0; i < fns.length; i++) fns[i]!(text);
  }
}
