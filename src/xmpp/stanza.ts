import type { XmlElement } from "@xmpp/xml";
import parse from "ltx/lib/parse.js";
import { StanzaDecodeError } from "./errors.ts";
import { LinearSax } from "./sax.ts";
import type { OutgoingStanza, Stanza, StanzaError } from "./types.ts";

const STANZAS_NS = "urn:ietf:params:xml:ns:xmpp-stanzas";

const TEXT_ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;" };
const ATTR_ESCAPES: Record<string, string> = { ...TEXT_ESCAPES, '"': "&quot;" };

/** Escape element text. Fast path: most bodies only need `&`, `<`, `>` checks. */
export function escapeText(s: string): string {
  return /[&<>]/.test(s) ? s.replace(/[&<>]/g, (c) => TEXT_ESCAPES[c]!) : s;
}

function escapeAttr(s: string): string {
  return /[&<>"]/.test(s) ? s.replace(/[&<>"]/g, (c) => ATTR_ESCAPES[c]!) : s;
}

/** Fill in the defaults of an outgoing stanza: empty router fields and xid, `from` as given. */
export function completeStanza(out: OutgoingStanza, from: string): Stanza {
  return {
    from,
    thread: "",
    body: "",
    routerFrom: "",
    routerTo: "",
    routerClass: "",
    routerCommand: "",
    xid: "",
    ...out,
  };
}

/**
 * Serialize an OpenSRF message exactly as the C library writes it: double quotes,
 * `<opensrf>` with all five attributes, then `<thread>`, then `<body>`.
 */
export function encodeStanza(s: Stanza): string {
  return (
    `<message to="${escapeAttr(s.to)}" from="${escapeAttr(s.from)}">` +
    `<opensrf router_from="${escapeAttr(s.routerFrom)}" router_to="${escapeAttr(s.routerTo)}"` +
    ` router_class="${escapeAttr(s.routerClass)}" router_command="${escapeAttr(s.routerCommand)}"` +
    ` osrf_xid="${escapeAttr(s.xid)}"/>` +
    (s.thread ? `<thread>${escapeText(s.thread)}</thread>` : "") +
    `<body>${escapeText(s.body)}</body></message>`
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
const ILLEGAL_CHAR = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const BARE_AMP = /&(?!#[0-9]+;|#x[0-9a-fA-F]+;|[A-Za-z_:][-\w.:]*;)/;
// Where `&` may appear literally.
const LITERAL_SECTIONS = /<!\[CDATA\[[\s\S]*?\]\]>|<!--[\s\S]*?-->|<\?[\s\S]*?\?>/g;

function checkCharacters(xml: string): void {
  const bad = ILLEGAL_CHAR.exec(xml);
  if (bad) {
    const code = bad[0].charCodeAt(0).toString(16).padStart(4, "0");
    throw new StanzaDecodeError(`not well-formed XML: illegal character U+${code.toUpperCase()} at offset ${bad.index}`, xml.slice(0, 200));
  }
  if (xml.includes("&") && BARE_AMP.test(xml.includes("<!") || xml.includes("<?") ? xml.replace(LITERAL_SECTIONS, "") : xml)) {
    throw new StanzaDecodeError("not well-formed XML: '&' not starting an entity or character reference", xml.slice(0, 200));
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
  if (a.type === "error") stanza.error = decodeError(el);
  return stanza;
}

/** Parse one stanza from XML text (tests, captured samples, raw peers). */
export function parseStanza(xml: string): Stanza {
  checkCharacters(xml);
  let el: XmlElement;
  try {
    el = parse(xml, { Parser: LinearSax });
  } catch (e) {
    throw new StanzaDecodeError(`not well-formed XML: ${(e as Error).message}`, xml.slice(0, 200));
  }
  return decodeStanza(el);
}
