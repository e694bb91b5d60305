/**
 * The stanza layer against real OpenSRF 3.3 traffic (test/fixtures/wire/opensrf-3.3-wire.txt):
 * every captured `<message>` decodes, the C form and the ejabberd-delivered form of one message
 * decode to the same Stanza, encodeStanza writes exactly what C writes, and malformed XML only
 * ever raises StanzaDecodeError.
 */

import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { BUS_MESSAGE_FIELDS } from "../../src/bus/message.ts";
import { decodeBody, encodeBody } from "../../src/protocol/codec.ts";
import { ProtocolError } from "../../src/protocol/errors.ts";
import { StanzaDecodeError } from "../../src/xmpp/errors.ts";
import { completeStanza, encodeOutgoing, encodeStanza, parseStanza } from "../../src/xmpp/stanza.ts";
import type { OutgoingStanza, Stanza } from "../../src/xmpp/types.ts";
import { prng } from "../harness/prng.ts";

const FIXTURE = join(import.meta.dir, "../fixtures/wire/opensrf-3.3-wire.txt");
const TEXT = readFileSync(FIXTURE, "utf8");

interface WireLine {
  /** Section letter of the capture (A, B, …). */
  section: string;
  conn: string;
  dir: "C->S" | "S->C";
  bytes: number;
  xml: string;
}

function wireLines(): WireLine[] {
  const out: WireLine[] = [];
  let section = "";
  for (const line of TEXT.split("\n")) {
    const h = /^== ([A-Z])\. /.exec(line);
    if (h) {
      section = h[1]!;
      continue;
    }
    const m = /^\s*[\d.]+ (c\d+)\s+(C->S|S->C) (\d+)B: (<message[ >].*)$/.exec(line);
    if (m) out.push({ section, conn: m[1]!, dir: m[2] as WireLine["dir"], bytes: Number(m[3]), xml: m[4]! });
  }
  return out;
}

const LINES = wireLines();
/** Written by a C process: C quotes attributes with `"` (Perl and ejabberd use `'`). */
const isC = (l: WireLine) => l.dir === "C->S" && l.xml.startsWith('<message to="');
const C_LINES = LINES.filter(isC);
const PERL = LINES.find((l) => l.section === "M" && l.conn === "c17")!;

function line(section: string, conn: string, dir: WireLine["dir"], nth = 0): WireLine {
  const found = LINES.filter((l) => l.section === section && l.conn === conn && l.dir === dir)[nth];
  if (!found) throw new Error(`no line ${section} ${conn} ${dir} #${nth} in the fixture`);
  return found;
}

const CLIENT = "opensrf@localhost/_vm_1795547651.056703_28979";
const MATH_LISTENER = "opensrf@localhost/opensrf.math_listener_vm_1795547578.318649_28589";
const MATH_DRONE = "opensrf@localhost/opensrf.math_drone_vm_1795547578.326919_28594";

describe("the wire fixture", () => {
  test("is the capture with its header, holding 28 <message> lines", () => {
    expect(TEXT.startsWith("# Real OpenSRF 3.3.0 (XMPP era) stanzas")).toBe(true);
    expect(TEXT).toContain("Data for tests and for reading; not produced by this project.");
    expect(LINES).toHaveLength(28);
    expect(C_LINES).toHaveLength(22);
    expect(LINES.filter((l) => l.dir === "S->C")).toHaveLength(5);
    expect(PERL.xml.startsWith("<message to='opensrf@localhost/c_launcher_vm_")).toBe(true);
  });

  test("recorded sizes match the stored C and ejabberd stanzas byte for byte", () => {
    // The Perl line (M c17) is left out: its recorded size is not the size of the stored text.
    for (const l of LINES.filter((x) => x !== PERL))
      expect({ conn: l.conn, bytes: Buffer.byteLength(l.xml) }).toEqual({ conn: l.conn, bytes: l.bytes });
  });
});

describe("parseStanza on real traffic", () => {
  test("every captured message parses", () => {
    for (const l of LINES) {
      const s = parseStanza(l.xml);
      expect(s.to).toMatch(/^(opensrf|router)@localhost\//);
      expect(s.from).toMatch(/^(opensrf|router)@localhost\//);
    }
  });

  test("C: unregister, as written by C and as delivered by ejabberd, is the same stanza", () => {
    const expected: Stanza = {
      to: "router@localhost/router",
      from: MATH_LISTENER,
      thread: "",
      body: "unregistering",
      routerFrom: "",
      routerTo: "",
      routerClass: "opensrf.math",
      routerCommand: "unregister",
      xid: "",
    };
    expect(parseStanza(line("C", "c1", "C->S").xml)).toEqual(expected);
    expect(parseStanza(line("C", "c2", "S->C").xml)).toEqual(expected);
  });

  test("D: register, both forms", () => {
    const expected: Stanza = {
      to: "router@localhost/router",
      from: MATH_LISTENER,
      thread: "",
      body: "registering",
      routerFrom: "",
      routerTo: "",
      routerClass: "opensrf.math",
      routerCommand: "register",
      xid: "",
    };
    expect(parseStanza(line("D", "c1", "C->S").xml)).toEqual(expected);
    expect(parseStanza(line("D", "c2", "S->C").xml)).toEqual(expected);
  });

  test("F: the router's forward, C form and ejabberd form (&quot; body, <thread> after <body>)", () => {
    const c = line("F", "c5", "C->S");
    const delivered = line("F", "c1", "S->C");
    // The delivered form really is the re-serialized one.
    expect(delivered.xml).toContain("&quot;__c&quot;");
    expect(delivered.xml).toContain(" xml:lang='en'");
    expect(delivered.xml.indexOf("<thread>")).toBeGreaterThan(delivered.xml.indexOf("</body>"));
    const expected: Stanza = {
      to: MATH_LISTENER,
      from: "router@localhost/opensrf.math",
      thread: "1795547651.059807.179554765128979",
      body:
        '[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","ingress":"srfsh","api_level":1,' +
        '"type":"REQUEST","payload":{"__c":"osrfMethod","__p":{"method":"add","params":[2,2]}}}}]',
      routerFrom: CLIENT,
      routerTo: "",
      routerClass: "",
      routerCommand: "",
      xid: "1795547651289791",
    };
    expect(parseStanza(c.xml)).toEqual(expected);
    expect(parseStanza(delivered.xml)).toEqual(expected);
    // The forwarded body is the caller's body, unchanged.
    expect(parseStanza(line("F", "c25", "C->S").xml).body).toBe(expected.body);
  });

  test("H: the drone's bundled reply, both forms", () => {
    const c = parseStanza(line("H", "c26", "C->S").xml);
    const delivered = parseStanza(line("H", "c25", "S->C").xml);
    expect(delivered).toEqual(c);
    expect(c).toEqual({
      to: CLIENT,
      from: MATH_DRONE,
      thread: "1795547651.059807.179554765128979",
      body:
        '[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","api_level":1,"type":"RESULT",' +
        '"payload":{"__c":"osrfResult","__p":{"status":"OK","statusCode":"200","content":4}}}},' +
        '{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","api_level":1,"type":"STATUS",' +
        '"payload":{"__c":"osrfConnectStatus","__p":{"status":"Request Complete","statusCode":"205"}}}}]',
      routerFrom: "",
      routerTo: "",
      routerClass: "",
      routerCommand: "",
      xid: "1795547651289791",
    });
    expect(JSON.parse(delivered.body)).toEqual(JSON.parse(c.body));
  });

  test("L: the ejabberd bounce carries the error, the original router data, thread and body", () => {
    const sent = parseStanza(line("L", "c25", "C->S").xml);
    const bounce = parseStanza(line("L", "c25", "S->C").xml);
    expect(bounce).toEqual({
      to: CLIENT,
      from: "router@localhost/opensrf.nosuchservice",
      thread: "1795547651.065597.179554765128979",
      body: sent.body,
      routerFrom: "",
      routerTo: "",
      routerClass: "",
      routerCommand: "",
      xid: "1795547651289795",
      error: { type: "cancel", condition: "service-unavailable", text: "User session not found" },
    });
    expect(sent.error).toBeUndefined();
    expect(sent.to).toBe(bounce.from);
    expect(sent.from).toBe(bounce.to);
  });

  test("M: Perl's <opensrf> with three attributes leaves the missing ones empty", () => {
    expect(PERL.xml).toContain("<opensrf router_command='' router_class='' osrf_xid=''/>");
    expect(PERL.xml).not.toContain("router_from");
    const s = parseStanza(PERL.xml);
    expect({ ...s, body: "" }).toEqual({
      to: "opensrf@localhost/c_launcher_vm_1795547649.023390_28969",
      from: "opensrf@localhost/opensrf.settings_drone_at_localhost_28049",
      thread: "1795547649.025364.179554764928969",
      body: "",
      routerFrom: "",
      routerTo: "",
      routerClass: "",
      routerCommand: "",
      xid: "",
    });
    // The same Perl form with values set: the attributes present are read, the others are "".
    const perlRegister =
      "<message to='router@localhost/router' from='opensrf@localhost/opensrf.perl_listener_h_1_2'>" +
      "<opensrf router_command='register' router_class='opensrf.perl' osrf_xid='17'/>" +
      "<thread>t-1</thread><body>registering</body></message>";
    expect(parseStanza(perlRegister)).toEqual({
      to: "router@localhost/router",
      from: "opensrf@localhost/opensrf.perl_listener_h_1_2",
      thread: "t-1",
      body: "registering",
      routerFrom: "",
      routerTo: "",
      routerClass: "opensrf.perl",
      routerCommand: "register",
      xid: "17",
    });
  });

  test("router data on <message> itself is the fallback when there is no <opensrf> child", () => {
    const s = parseStanza(
      `<message to='a@b/c' from='d@b/e' router_from='x@b/y' router_class='k' router_command='register' osrf_xid='9'><body>b</body></message>`,
    );
    expect(s).toEqual({
      to: "a@b/c",
      from: "d@b/e",
      thread: "",
      body: "b",
      routerFrom: "x@b/y",
      routerTo: "",
      routerClass: "k",
      routerCommand: "register",
      xid: "9",
    });
  });

  test("a bounce without <error> gets undefined-condition; one without text has no text", () => {
    expect(parseStanza(`<message type='error' from='a@b/c' to='d@b/e'/>`).error).toEqual({
      type: "cancel",
      condition: "undefined-condition",
    });
    expect(
      parseStanza(
        `<message type='error' from='a@b/c' to='d@b/e'><error type='wait'><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`,
      ).error,
    ).toEqual({ type: "wait", condition: "resource-constraint" });
  });

  test("an <error> child without type='error' is a bounce too (the C router's lost-last-node answer)", () => {
    // osrf_router.c sends the caller's own message back with set_msg_error("cancel", 501),
    // which writes <error type="cancel" code="501"/> and no type on <message>; libopensrf
    // (transport_session.c) takes any <error> element for a bounce.
    const body = '[{"__c":"osrfMessage","__p":{"threadTrace":"1","type":"REQUEST"}}]';
    const xml =
      "<message to='opensrf@localhost/_vm_1' from='router@localhost/opensrf.dbmath'>" +
      "<error type='cancel' code='501'/><opensrf router_from='' router_to='' router_class='' router_command=''" +
      ` osrf_xid='42'/><thread>t-1</thread><body>${body.replace(/"/g, "&quot;")}</body></message>`;
    const s = parseStanza(xml);
    expect(s.error).toEqual({ type: "cancel", condition: "undefined-condition" });
    expect([s.from, s.thread, s.body, s.xid]).toEqual(["router@localhost/opensrf.dbmath", "t-1", body, "42"]);
    // A message without any <error> is not one.
    expect(parseStanza(xml.replace("<error type='cancel' code='501'/>", "")).error).toBeUndefined();
  });

  test("CDATA and character references in the body are read as text", () => {
    const s = parseStanza(
      `<message to="a@b/c" from="d@b/e"><body><![CDATA[[1,"a&b<c"]]]></body><thread>&#x31;&#50;</thread></message>`,
    );
    expect(s.body).toBe('[1,"a&b<c"]');
    expect(s.thread).toBe("12");
  });
});

describe("encodeStanza writes what C writes", () => {
  test("every C-written stanza of the capture re-encodes byte for byte", () => {
    for (const l of C_LINES) expect(encodeStanza(parseStanza(l.xml))).toBe(l.xml);
  });

  test("the ejabberd-delivered forms re-encode to the C form of the same message", () => {
    expect(encodeStanza(parseStanza(line("F", "c1", "S->C").xml))).toBe(line("F", "c5", "C->S").xml);
    expect(encodeStanza(parseStanza(line("H", "c25", "S->C").xml))).toBe(line("H", "c26", "C->S").xml);
    expect(encodeStanza(parseStanza(line("D", "c2", "S->C").xml))).toBe(line("D", "c1", "C->S").xml);
  });

  test("completeStanza fills C's empty defaults: sample D's register from its parts", () => {
    const d = line("D", "c1", "C->S").xml;
    const out = completeStanza(
      { to: "router@localhost/router", routerClass: "opensrf.math", routerCommand: "register", body: "registering" },
      MATH_LISTENER,
    );
    expect(encodeStanza(out)).toBe(d);
  });

  test("encodeOutgoing writes what encodeStanza writes of the completed stanza, whatever is left out", () => {
    const d = line("D", "c1", "C->S").xml;
    const register = {
      to: "router@localhost/router",
      routerClass: "opensrf.math",
      routerCommand: "register",
      body: "registering",
    };
    expect(encodeOutgoing(register, MATH_LISTENER)).toBe(d);
    const full = parseStanza(line("H", "c26", "C->S").xml);
    const fields = ["from", "thread", "body", "routerFrom", "routerTo", "routerClass", "routerCommand", "xid"] as const;
    // Every subset of the optional fields, with characters to escape.
    for (let mask = 0; mask < 1 << fields.length; mask++) {
      const out: OutgoingStanza = { to: full.to };
      fields.forEach((f, i) => {
        if (mask & (1 << i)) out[f] = `${full[f]}<&">`;
      });
      expect(encodeOutgoing(out, "me@localhost/x&y")).toBe(encodeStanza(completeStanza(out, "me@localhost/x&y")));
    }
  });

  test("escaping round-trips: quotes, <, >, & in attributes and text", () => {
    const s: Stanza = {
      to: 'a"b@c/<d>',
      from: "x&y@z/'q'",
      thread: "t<&>",
      body: '[{"a":"<&>\\"\'"}]',
      routerFrom: '"',
      routerTo: "&amp;",
      routerClass: "<",
      routerCommand: ">",
      xid: "'",
    };
    const xml = encodeStanza(s);
    expect(xml).toContain('to="a&quot;b@c/&lt;d&gt;"');
    expect(xml).toContain(`<body>[{"a":"&lt;&amp;&gt;\\"'"}]</body>`);
    expect(parseStanza(xml)).toEqual(s);
  });
});

describe("bodies of the capture", () => {
  test("every C body decodes and re-encodes to the same text", () => {
    let json = 0;
    for (const l of C_LINES) {
      const { body } = parseStanza(l.xml);
      if (body === "registering" || body === "unregistering") continue;
      json++;
      expect(encodeBody(decodeBody(body))).toBe(body);
    }
    expect(json).toBe(20);
  });

  test("the &quot;-escaped deliveries unescape to the same JSON as their C originals", () => {
    for (const [cLine, sLine] of [
      [line("F", "c5", "C->S"), line("F", "c1", "S->C")],
      [line("H", "c26", "C->S"), line("H", "c25", "S->C")],
      [line("L", "c25", "C->S"), line("L", "c25", "S->C")],
    ] as const) {
      const delivered = parseStanza(sLine.xml).body;
      expect(delivered).not.toContain("&quot;");
      expect(delivered).toBe(parseStanza(cLine.xml).body);
      expect(encodeBody(decodeBody(delivered))).toBe(delivered);
    }
  });

  test('E: the router\'s RESULT has status null and statusCode "0", then a separate 205', () => {
    const [r] = decodeBody(parseStanza(line("E", "c2", "C->S", 0).xml).body);
    expect(r).toEqual({
      type: "RESULT",
      threadTrace: 1,
      locale: "en-US",
      apiLevel: 1,
      payload: {
        className: "osrfResult",
        status: null,
        statusCode: 0,
        content: ["opensrf.settings", "opensrf.cslow", "opensrf.math", "opensrf.dbmath"],
      },
    });
    expect(decodeBody(parseStanza(line("E", "c2", "C->S", 1).xml).body)).toEqual([
      {
        type: "STATUS",
        threadTrace: 1,
        locale: "en-US",
        apiLevel: 1,
        payload: { className: "osrfConnectStatus", status: "Request Complete", statusCode: 205 },
      },
    ]);
  });

  test("M: Perl's body (numeric statusCode, tz null, its own key order) decodes, and re-encodes in C's form", () => {
    const body = parseStanza(PERL.xml).body;
    const msgs = decodeBody(body);
    expect(msgs.map((m) => m.type)).toEqual(["RESULT", "STATUS"]);
    const [res, st] = msgs;
    if (res?.type !== "RESULT" || st?.type !== "STATUS") throw new Error("unexpected types");
    expect(res.threadTrace).toBe(1);
    expect(res.tz).toBeUndefined();
    expect(res.ingress).toBe("opensrf");
    expect(res.payload.statusCode).toBe(200);
    expect(res.payload.status).toBe("OK");
    expect((res.payload.content as { activeapps: unknown }).activeapps).toEqual({
      appname: ["opensrf.settings", "opensrf.math", "opensrf.dbmath", "opensrf.cslow"],
    });
    expect(st).toEqual({
      type: "STATUS",
      threadTrace: 1,
      locale: "en-US",
      ingress: "opensrf",
      apiLevel: 1,
      payload: { className: "osrfConnectStatus", status: "Request Complete", statusCode: 205 },
    });
    const reencoded = encodeBody(msgs);
    expect(reencoded).not.toBe(body);
    expect(reencoded).toContain('"statusCode":"205"');
    expect(decodeBody(reencoded)).toEqual(msgs);
  });

  test("register/unregister bodies are not osrfMessages: decodeBody says so with a ProtocolError", () => {
    for (const b of ["registering", "unregistering"]) {
      expect(() => decodeBody(b)).toThrow(ProtocolError);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Malformed input

const { int, pick } = prng(33);

const insertAfter = (xml: string, marker: string, what: string): string => {
  const i = xml.indexOf(marker);
  if (i < 0) throw new Error(`marker ${marker} not in ${xml.slice(0, 80)}`);
  return xml.slice(0, i + marker.length) + what + xml.slice(i + marker.length);
};

interface Bad {
  kind: string;
  xml: string;
}

function malformedCases(): Bad[] {
  const out: Bad[] = [];
  const sources = LINES.map((l) => l.xml);

  // Truncations: every proper prefix of a one-root document is incomplete.
  for (const xml of sources) {
    const cuts = new Set([
      0,
      1,
      8,
      xml.length - 1,
      xml.length - 2,
      xml.length - "</message>".length,
      xml.indexOf("<body>") + 3,
    ]);
    while (cuts.size < 14) cuts.add(int(xml.length));
    for (const cut of cuts) out.push({ kind: "truncated", xml: xml.slice(0, cut) });
  }

  // Bad entity and character references, in text and in attribute values.
  const badRefs = [
    "&foo;",
    "&;",
    "&#;",
    "&#x;",
    "&#xZZ;",
    "&#0;",
    "&#x1;",
    "&#xD800;",
    "&#1114112;",
    "&#x110000;",
    "&#xFFFE;",
    "&nbsp;",
    "&copy;",
    "&amp",
    "& ",
    "&lt",
    "&#65",
    "&quot",
    "&#-1;",
    "&&amp;",
  ];
  for (const ref of badRefs) {
    const xml = pick(sources);
    out.push({ kind: `entity ${ref} in body`, xml: insertAfter(xml, "<body>", ref) });
    out.push({ kind: `entity ${ref} in attribute`, xml: xml.replace(/osrf_xid=(["'])/, `osrf_xid=$1${ref}`) });
    out.push({ kind: `entity ${ref} in to`, xml: xml.replace(/ to=(["'])/, ` to=$1${ref}`) });
  }

  // Unclosed and mismatched tags.
  for (const xml of sources) {
    out.push({ kind: "no </body>", xml: xml.replace("</body>", "") });
    out.push({ kind: "no </message>", xml: xml.replace("</message>", "") });
    out.push({ kind: "<opensrf> not self-closed", xml: xml.replace(/(<opensrf[^>]*)\/>/, "$1>") });
    out.push({
      kind: "closing tags swapped",
      xml: xml.replace("</body>", "").replace("</message>", "</message></body>"),
    });
    out.push({ kind: "misspelt </message>", xml: xml.replace("</message>", "</messag>") });
  }
  out.push({ kind: "unterminated comment", xml: "<message><!-- x </message>" });
  out.push({ kind: "unterminated CDATA", xml: "<message><body><![CDATA[x</body></message>" });
  out.push({ kind: "unterminated PI", xml: "<message><?pi x </message>" });

  // Wrong root element.
  for (const root of [
    "iq",
    "presence",
    "Message",
    "messages",
    "stream:features",
    "body",
    "x:message",
    "opensrf",
    "thread",
    "error",
  ]) {
    const xml = pick(sources);
    out.push({
      kind: `root <${root}>`,
      xml: xml.replace(/^<message/, `<${root}`).replace(/<\/message>$/, `</${root}>`),
    });
  }
  out.push({ kind: "deep wrong root", xml: `<iq>${"<a>".repeat(100_000)}${"</a>".repeat(100_000)}</iq>` });
  out.push({ kind: "self-closed wrong root", xml: "<presence/>" });

  // Characters XML does not allow, raw.
  const illegal = [
    ...Array.from({ length: 0x20 }, (_, i) => i).filter((c) => c !== 0x9 && c !== 0xa && c !== 0xd),
    0xfffe,
    0xffff,
    0xd800,
    0xdbff,
    0xdc00,
    0xdfff,
  ];
  for (const code of illegal) {
    const ch = String.fromCharCode(code);
    const xml = pick(sources);
    out.push({ kind: `U+${code.toString(16)} in body`, xml: insertAfter(xml, "<body>", `a${ch}b`) });
    out.push({ kind: `U+${code.toString(16)} in an attribute`, xml: xml.replace(/ from=(["'])/, ` from=$1${ch}`) });
  }
  out.push({ kind: "reversed surrogate pair", xml: insertAfter(sources[0]!, "<body>", "\udc00\ud800") });

  // Huge attributes, unterminated or with bad content. (ltx takes quadratic time over an
  // unterminated attribute value or text run, so those stay at 100 kB.)
  const big = "x".repeat(1_000_000);
  const unterminated = "x".repeat(100_000);
  out.push({ kind: "huge unterminated attribute", xml: `<message to="${unterminated}><body>b</body></message>` });
  out.push({ kind: "huge attribute, bad entity", xml: `<message to="${big}&foo;${big}"><body>b</body></message>` });
  out.push({ kind: "huge attribute, raw NUL", xml: `<message to="${big}\u0000"><body>b</body></message>` });
  out.push({ kind: "huge attribute name, no value", xml: `<message ${big}><body>b</body></message>` });
  out.push({ kind: "huge attribute, never closed tag", xml: `<message to="${big}"` });
  out.push({ kind: "huge body, unclosed", xml: `<message><body>${unterminated}` });
  out.push({ kind: "huge body, then a bad entity", xml: `<message><body>${big}&bogus;</body></message>` });

  // Not XML at all.
  for (const junk of [
    "",
    " ",
    "\n",
    "x",
    "<",
    ">",
    "</message>",
    "<message",
    "<message>",
    '{"a":1}',
    '[{"__c":"osrfMessage"}]',
    "<<message/>",
    "< message/>",
    "<!DOCTYPE message>",
  ]) {
    out.push({ kind: `junk ${JSON.stringify(junk)}`, xml: junk });
  }
  return out;
}

describe("malformed XML", () => {
  const cases = malformedCases();

  test(`${cases.length} generated cases (truncations, entities, tags, roots, characters, sizes) all raise StanzaDecodeError`, () => {
    expect(cases.length).toBeGreaterThan(400);
    const failures: string[] = [];
    for (const c of cases) {
      try {
        const s = parseStanza(c.xml);
        failures.push(`${c.kind}: accepted as ${JSON.stringify(s).slice(0, 120)}`);
      } catch (e) {
        if (!(e instanceof StanzaDecodeError)) {
          failures.push(`${c.kind}: ${(e as Error).name}: ${(e as Error).message.slice(0, 120)}`);
          continue;
        }
        if (
          e.name !== "StanzaDecodeError" ||
          !e.message.startsWith("malformed OpenSRF stanza: ") ||
          e.raw.length > 200
        ) {
          failures.push(`${c.kind}: badly formed error ${e.name} ${e.message.slice(0, 120)}`);
        }
      }
    }
    expect(failures).toEqual([]);
  });

  test("the reasons name the problem", () => {
    const reason = (xml: string) => {
      try {
        parseStanza(xml);
      } catch (e) {
        if (e instanceof StanzaDecodeError) return e.reason;
        throw e;
      }
      throw new Error("accepted");
    };
    expect(reason("<iq type='result'/>")).toBe("expected <message>, got <iq>");
    expect(reason("<message><body>&foo;</body></message>")).toBe("not well-formed XML: Illegal XML entity &foo;");
    expect(reason("<message><body>&#0;</body></message>")).toBe("not well-formed XML: Illegal XML character 0x0");
    expect(reason("<message><body>a\u0001</body></message>")).toBe(
      "not well-formed XML: illegal character U+0001 at offset 16",
    );
    expect(reason("<message><body>a & b</body></message>")).toBe(
      "not well-formed XML: '&' not starting an entity or character reference",
    );
    expect(reason("<message><body>")).toBe("not well-formed XML: Incomplete document");
  });

  test("random byte-level mutations of real stanzas: a Stanza of strings or StanzaDecodeError, nothing else", () => {
    const noise = [
      "<",
      ">",
      "/",
      "'",
      '"',
      "&",
      ";",
      "=",
      " ",
      "\u0000",
      "\uffff",
      "é",
      "&quot;",
      "<body>",
      "</body>",
      "<thread>",
      "</opensrf>",
      "<![CDATA[",
      "]]>",
      "<!--",
      "-->",
    ];
    let accepted = 0;
    let rejected = 0;
    for (let i = 0; i < 600; i++) {
      let xml = pick(LINES).xml;
      for (let k = 1 + int(3); k > 0; k--) {
        const at = int(xml.length);
        const op = int(3);
        if (op === 0) xml = xml.slice(0, at) + xml.slice(at + 1 + int(5));
        else if (op === 1) xml = xml.slice(0, at) + pick(noise) + xml.slice(at);
        else xml = xml.slice(0, at) + pick(noise) + xml.slice(at + 1);
      }
      try {
        const s = parseStanza(xml);
        accepted++;
        for (const k of BUS_MESSAGE_FIELDS) {
          expect(typeof s[k]).toBe("string");
        }
      } catch (e) {
        if (!(e instanceof StanzaDecodeError))
          throw new Error(`mutation ${i} raised ${(e as Error).name}: ${(e as Error).message}\n${xml.slice(0, 300)}`);
        rejected++;
      }
    }
    // Both outcomes occur, so the loop really exercises both paths.
    expect(accepted).toBeGreaterThan(20);
    expect(rejected).toBeGreaterThan(200);
  });

  test("well-formed but odd input is accepted: deep nesting inside the body, huge attribute values", () => {
    const deep = parseStanza(
      `<message to="a@b/c"><body>${"<x>".repeat(50_000)}${"</x>".repeat(50_000)}[]</body></message>`,
    );
    expect(deep.body).toBe("[]");
    const huge = "y".repeat(2_000_000);
    const s = parseStanza(`<message to="${huge}" from='f@b/c'><opensrf osrf_xid="${huge}"/><body>[]</body></message>`);
    expect(s.to.length).toBe(2_000_000);
    expect(s.xid.length).toBe(2_000_000);
    expect(s.routerFrom).toBe("");
  });
});
