/**
 * OpenSRF `<message>` stanzas as XML: encoded exactly as the C library writes them, decoded from an
 * element tree, from tokenizer events (StanzaReader) or from text.
 */
import type { XmlElement } from "@xmpp/xml";
import parse from "ltx/lib/parse.js";
import { completeBusMessage } from "../bus/message.ts";
import { StanzaDecodeError } from "./errors.ts";
import type { ChildReader } from "./stream-parser.ts";
import type { OutgoingStanza, Stanza, StanzaError } from "./types.ts";
import { decodeXmlBody, unescapeXml, XmlTokenizer } from "./xml-tokenizer.ts";

const STANZAS_NS = "urn:ietf:params:xml:ns:xmpp-stanzas";

const TEXT_ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;" };
const ATTR_ESCAPES: Record<string, string> = { ...TEXT_ESCAPES, '"': "&quot;" };

// Made once: a regex literal inside a function is a new RegExp object at every call, and a
// drone writes eight of these checks per reply stanza.
const TEXT_SPECIAL = /[&<>]/;
const TEXT_SPECIALS = /[&<>]/g;
const ATTR_SPECIAL = /[&<>"]/;
const ATTR_SPECIALS = /[&<>"]/g;

/** Escape element text. Fast path: most bodies only need `&`, `<`, `>` checks. */
export function escapeText(s: string): string {
  return TEXT_SPECIAL.test(s) ? s.replace(TEXT_SPECIALS, (c) => TEXT_ESCAPES[c]!) : s;
}

function escapeAttr(s: string): string {
  // Replies leave the four router attributes empty.
  if (s === "" || !ATTR_SPECIAL.test(s)) return s;
  return s.replace(ATTR_SPECIALS, (c) => ATTR_ESCAPES[c]!);
}

/** Fill in the defaults of an outgoing stanza: empty router fields and xid, `from` as given. */
export function completeStanza(out: OutgoingStanza, from: string): Stanza {
  return completeBusMessage(out, from);
}

/**
 * Serialize an OpenSRF message exactly as the C library writes it: double quotes,
 * `<opensrf>` with all five attributes, then `<thread>`, then `<body>`.
 */
export function encodeStanza(s: Stanza): string {
  return encodeOutgoing(s, s.from);
}

/**
 * {@link encodeStanza} of `completeStanza(out, from)`, without making the completed
 * object: what a connection writes for every message it sends.
 */
export function encodeOutgoing(out: OutgoingStanza, from: string): string {
  const thread = out.thread ?? "";
  return (
    `<message to="${escapeAttr(out.to)}" from="${escapeAttr(out.from ?? from)}">` +
    `<opensrf router_from="${escapeAttr(out.routerFrom ?? "")}" router_to="${escapeAttr(out.routerTo ?? "")}"` +
    ` router_class="${escapeAttr(out.routerClass ?? "")}" router_command="${escapeAttr(out.routerCommand ?? "")}"` +
    ` osrf_xid="${escapeAttr(out.xid ?? "")}"/>` +
    (thread ? `<thread>${escapeText(thread)}</thread>` : "") +
    `<body>${escapeText(out.body ?? "")}</body></message>`
  );
}

function decodeError(el: XmlElement): StanzaError {
  const err = el.getChild("error");
  if (!err) return { type: "cancel", condition: "undefined-condition" };
  let condition = "undefined-condition";
  let text: string | undefined;
  for (const child of err.children) {
    if (typeof child === "string") continue;
    if (child.name === "text") text = child.getText();
    else if (child.attrs.xmlns === STANZAS_NS || !child.attrs.xmlns) condition = child.name;
  }
  return text === undefined
    ? { type: err.attrs.type ?? "cancel", condition }
    : { type: err.attrs.type ?? "cancel", condition, text };
}

/** The start of an element's XML for error reports; ltx's recursive toString overflows on deep trees. */
function preview(el: XmlElement): string {
  try {
    return el.toString().slice(0, 200);
  } catch {
    return `<${el.name}>`;
  }
}

// Characters outside XML 1.0's Char production (raw control characters, U+FFFE/U+FFFF, lone
// surrogates) and `&` not starting a reference: ltx lets both through, an XMPP server would
// reject them, and re-encoding such a stanza would get our own stream closed.
const ILLEGAL_CHAR =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: these are the characters XML 1.0 forbids
  /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const BARE_AMP = /&(?!#[0-9]+;|#x[0-9a-fA-F]+;|[A-Za-z_:][-\w.:]*;)/;
// Where `&` may appear literally.
const LITERAL_SECTIONS = /<!\[CDATA\[[\s\S]*?\]\]>|<!--[\s\S]*?-->|<\?[\s\S]*?\?>/g;

function checkCharacters(xml: string): void {
  const bad = ILLEGAL_CHAR.exec(xml);
  if (bad) {
    const code = bad[0].charCodeAt(0).toString(16).padStart(4, "0");
    throw new StanzaDecodeError(
      `not well-formed XML: illegal character U+${code.toUpperCase()} at offset ${bad.index}`,
      xml.slice(0, 200),
    );
  }
  if (
    xml.includes("&") &&
    BARE_AMP.test(xml.includes("<!") || xml.includes("<?") ? xml.replace(LITERAL_SECTIONS, "") : xml)
  ) {
    throw new StanzaDecodeError(
      "not well-formed XML: '&' not starting an entity or character reference",
      xml.slice(0, 200),
    );
  }
}

/**
 * Read an OpenSRF message from a parsed `<message>` element, whatever quoting, entity
 * escaping and child order the server delivered it with. Router data is read from the
 * `<opensrf>` child; attributes on `<message>` itself are a fallback for old peers.
 */
export function decodeStanza(el: XmlElement): Stanza {
  if (el.name !== "message") {
    throw new StanzaDecodeError(`expected <message>, got <${el.name}>`, preview(el));
  }
  const a = el.attrs;
  const o = el.getChild("opensrf")?.attrs ?? a;
  const stanza: Stanza = {
    to: a.to ?? "",
    from: a.from ?? "",
    thread: el.getChildText("thread") ?? "",
    body: el.getChildText("body") ?? "",
    routerFrom: o.router_from ?? "",
    routerTo: o.router_to ?? "",
    routerClass: o.router_class ?? "",
    routerCommand: o.router_command ?? "",
    xid: o.osrf_xid ?? "",
  };
  // libopensrf takes any <error> child for a bounce: the C router's "lost the last node"
  // answer is a plain <message> with <error type="cancel" code="501"/> and no type="error".
  if (a.type === "error" || el.getChild("error")) stanza.error = decodeError(el);
  return stanza;
}

/** Local name of a possibly prefixed element name, as ltx's `getName()` gives it. */
function localName(name: string): string {
  const colon = name.indexOf(":");
  return colon === -1 ? name : name.slice(colon + 1);
}

/** Which direct child of `<message>` a {@link StanzaReader} is inside. */
enum Child {
  None,
  Thread,
  Body,
  Error,
  Other,
}

/**
 * Builds a {@link Stanza} straight from the tokenizer events of one `<message>` element, with
 * no element tree: what {@link decodeStanza} reads from the tree, read as it streams by. The
 * connection uses it for every incoming message; the result is the same as
 * `decodeStanza(tree)` (first `<opensrf>`, `<thread>`, `<body>` and `<error>` child, direct
 * text only, names matched without prefix).
 */
export class StanzaReader implements ChildReader {
  /** Lazy bodies: the tokenizer hands text over undecoded (see {@link StanzaReaderOptions}). */
  readonly rawText: boolean;
  private attrs: Record<string, string> = {};
  private router: Record<string, string> | undefined;
  private thread: string | undefined;
  private body: string | undefined;
  private in = Child.None;
  private errorSeen = false;
  private errorType: string | undefined;
  private condition = "undefined-condition";
  private errorText: string | undefined;
  private inErrorText = false;

  constructor(
    private readonly deliver: (stanza: Stanza) => void,
    opts: StanzaReaderOptions = {},
  ) {
    this.rawText = opts.lazyBody === true;
  }

  start(name: string, attrs: Record<string, string>, depth: number): void {
    if (depth === 0) {
      this.attrs = attrs;
    } else if (depth === 1) {
      switch (localName(name)) {
        case "opensrf":
          this.router ??= attrs;
          this.in = Child.Other;
          return;
        case "thread":
          this.in = this.thread === undefined ? Child.Thread : Child.Other;
          if (this.in === Child.Thread) this.thread = "";
          return;
        case "body":
          this.in = this.body === undefined ? Child.Body : Child.Other;
          if (this.in === Child.Body) this.body = "";
          return;
        case "error":
          this.in = this.errorSeen ? Child.Other : Child.Error;
          if (!this.errorSeen) this.errorType = attrs.type;
          this.errorSeen = true;
          return;
        default:
          this.in = Child.Other;
      }
    } else if (depth === 2 && this.in === Child.Error) {
      if (name === "text") {
        this.errorText = "";
        this.inErrorText = true;
      } else if (attrs.xmlns === STANZAS_NS || !attrs.xmlns) {
        this.condition = name;
      }
    }
  }

  text(text: string, depth: number): void {
    if (depth === 1) {
      // With lazy bodies only the body stays as received; the rest is decoded here (and
      // a bad reference in it fails the stream, as the tokenizer would have).
      if (this.in === Child.Body) this.body += text;
      else if (this.in === Child.Thread) this.thread += this.rawText ? unescapeXml(text) : text;
    } else if (depth === 2 && this.inErrorText) {
      this.errorText += this.rawText ? unescapeXml(text) : text;
    }
  }

  end(depth: number): void {
    if (depth === 1) this.in = Child.None;
    else if (depth === 2) this.inErrorText = false;
  }

  finish(): void {
    const a = this.attrs;
    const o = this.router ?? a;
    const stanza: Stanza = this.rawText
      ? lazyBodyStanza(a, o, this.thread ?? "", this.body ?? "")
      : {
          to: a.to ?? "",
          from: a.from ?? "",
          thread: this.thread ?? "",
          body: this.body ?? "",
          routerFrom: o.router_from ?? "",
          routerTo: o.router_to ?? "",
          routerClass: o.router_class ?? "",
          routerCommand: o.router_command ?? "",
          xid: o.osrf_xid ?? "",
        };
    // Any <error> child makes a bounce, as in libopensrf (see decodeStanza).
    if (a.type === "error" || this.errorSeen) {
      const type = this.errorType ?? "cancel";
      stanza.error = !this.errorSeen
        ? { type: "cancel", condition: "undefined-condition" }
        : this.errorText === undefined
          ? { type, condition: this.condition }
          : { type, condition: this.condition, text: this.errorText };
    }
    this.deliver(stanza);
  }
}

/** Options of {@link StanzaReader}. */
export interface StanzaReaderOptions {
  /**
   * Keep the body as it was on the wire (`xmlBody`, still XML-escaped) and decode it only
   * when `body` is first read: for a process that hands most bodies on unread (the
   * listener passes them to a drone, which decodes them: {@link decodeXmlBody}).
   */
  lazyBody?: boolean;
}

/**
 * A stanza whose `body` is decoded from `xmlBody` on first read. Own enumerable accessors,
 * so spreading or serializing it gives the decoded body like any other stanza. A body the
 * server should never have sent (a bad reference) reads as "" rather than throwing into
 * whoever looked; the drone that gets it says why ({@link decodeXmlBody}).
 */
function lazyBodyStanza(a: Record<string, string>, o: Record<string, string>, thread: string, xmlBody: string): Stanza {
  let decoded: string | undefined = xmlBody.indexOf("&") === -1 ? xmlBody : undefined;
  return {
    to: a.to ?? "",
    from: a.from ?? "",
    thread,
    get body(): string {
      if (decoded === undefined) decoded = decodeXmlBody(xmlBody).body;
      return decoded;
    },
    set body(v: string) {
      decoded = v;
    },
    routerFrom: o.router_from ?? "",
    routerTo: o.router_to ?? "",
    routerClass: o.router_class ?? "",
    routerCommand: o.router_command ?? "",
    xid: o.osrf_xid ?? "",
    xmlBody,
  };
}

/** Parse one stanza from XML text (tests, captured samples, raw peers). */
export function parseStanza(xml: string): Stanza {
  checkCharacters(xml);
  let el: XmlElement;
  try {
    el = parse(xml, { Parser: XmlTokenizer });
  } catch (e) {
    throw new StanzaDecodeError(`not well-formed XML: ${(e as Error).message}`, xml.slice(0, 200));
  }
  return decodeStanza(el);
}
