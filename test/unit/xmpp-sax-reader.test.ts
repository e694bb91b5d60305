/**
 * The connection's hot path: StreamParser with a StanzaReader turns each `<message>` into a
 * Stanza straight from tokenizer events. It must give exactly what decodeStanza gives on the
 * element @xmpp/xml builds, however the stream is chunked, and leave other stanzas alone.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type XmlElement, Parser as XmppParser } from "@xmpp/xml";
import { parseListenerMessage, requestMessage } from "../../src/prefork/ipc.ts";
import { decodeStanza, StanzaReader } from "../../src/xmpp/stanza.ts";
import { StreamParser } from "../../src/xmpp/stream-parser.ts";
import type { Stanza } from "../../src/xmpp/types.ts";
import { decodeXmlBody } from "../../src/xmpp/xml-tokenizer.ts";
import { randomCuts } from "../harness/chunks.ts";

const WIRE = readFileSync(join(import.meta.dir, "../fixtures/wire/opensrf-3.3-wire.txt"), "utf8");
const MESSAGES = WIRE.split("\n")
  .map((l) => /^\s*[\d.]+ c\d+\s+(?:C->S|S->C) \d+B: (<message.*)$/.exec(l)?.[1])
  .filter((x): x is string => x !== undefined);

const STREAM = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='1' from='localhost' version='1.0'>`;
const NS = "urn:ietf:params:xml:ns:xmpp-stanzas";

/** Messages shaped in every way decodeStanza has a rule for. */
const ODD = [
  `<message to='a@b/c' from='d@b/e'><body>only a body</body></message>`,
  `<message to='a@b/c'/>`,
  `<message to='a@b/c' router_from='x@b/y' router_class='k' osrf_xid='9'><body>b</body></message>`,
  `<message to='a'><opensrf router_from='r1' osrf_xid='1'/><opensrf router_from='r2'/><body>b</body></message>`,
  `<message to='a'><body>first</body><body>second</body><thread>t1</thread><thread>t2</thread></message>`,
  `<message to='a'><body>a<b>inner text</b>c<![CDATA[<d>]]>e</body></message>`,
  `<message to='a'><x:body xmlns:x='urn:x'>prefixed</x:body><y:thread xmlns:y='urn:y'>pt</y:thread></message>`,
  `<message to='a'><body>&lt;&amp;&gt;&quot;&apos;&#65;&#x1F600;</body><thread>&amp;</thread></message>`,
  `<message to='a'><extra><body>nested body is not the body</body></extra><body>real</body></message>`,
  `<message type='error' from='a@b/c' to='d@b/e'/>`,
  `<message type='error' from='a'><error type='wait'><resource-constraint xmlns='${NS}'/></error></message>`,
  `<message type='error' from='a'><error><text xmlns='${NS}'>why <b>not</b> so</text><bad-request xmlns='${NS}'/></error></message>`,
  `<message type='error' from='a'><error type='modify'><custom xmlns='urn:other'/><gone/><text>one</text><text>two</text></error><error type='x'><late/></error></message>`,
  `<message from='a'><error type='cancel'><item-not-found xmlns='${NS}'/></error><body>a bounce all the same: any error child</body></message>`,
];

function viaReader(chunks: string[], lazyBody = false): { stanzas: Stanza[]; elements: string[]; errors: string[] } {
  const stanzas: Stanza[] = [];
  const elements: string[] = [];
  const errors: string[] = [];
  const p = new StreamParser({
    childReader: (name) => (name === "message" ? new StanzaReader((s) => stanzas.push(s), { lazyBody }) : undefined),
  });
  p.on("element", (el: XmlElement) => elements.push(el.toString()));
  p.on("error", (e: Error) => errors.push(e.message));
  for (const c of chunks) p.write(c);
  return { stanzas, elements, errors };
}

/** The element path: StreamParser building trees (or @xmpp/xml's own parser), then decodeStanza. */
function viaTree(
  chunks: string[],
  P: new () => XmppParser = StreamParser,
): { stanzas: Stanza[]; elements: string[]; errors: string[] } {
  const stanzas: Stanza[] = [];
  const elements: string[] = [];
  const errors: string[] = [];
  const p = new P();
  p.on("element", (el: XmlElement) =>
    el.name === "message" ? stanzas.push(decodeStanza(el)) : elements.push(el.toString()),
  );
  p.on("error", (e: Error) => errors.push(e.message));
  for (const c of chunks) p.write(c);
  return { stanzas, elements, errors };
}

describe("StanzaReader gives what decodeStanza gives on the element tree", () => {
  const stream = STREAM + [...MESSAGES, ...ODD].join("");

  test("every captured message and every odd shape, in one chunk", () => {
    const got = viaReader([stream]);
    expect(got.stanzas).toHaveLength(MESSAGES.length + ODD.length);
    expect(got).toEqual(viaTree([stream]));
  });

  test("the captured messages: the same as with @xmpp/xml's own parser", () => {
    const captured = STREAM + MESSAGES.join("");
    expect(viaReader([captured])).toEqual(viaTree([captured], XmppParser));
  });

  test("one character at a time, and cut at random places", () => {
    const expected = viaTree([stream]);
    expect(viaReader([...stream])).toEqual(expected);
    for (let i = 0; i < 40; i++) expect(viaReader(randomCuts(stream, 30, i + 1))).toEqual(expected);
  });

  test("other stanzas and nonzas still arrive as elements, in order with the messages", () => {
    const mixed =
      STREAM +
      `<iq type='result' id='1'/>` +
      ODD[0] +
      `<presence><status>x</status></presence>` +
      ODD[1] +
      `<stream:features><bind/></stream:features>`;
    const got = viaReader([mixed]);
    expect(got.elements).toEqual([
      '<iq type="result" id="1"/>',
      "<presence><status>x</status></presence>",
      "<stream:features><bind/></stream:features>",
    ]);
    expect(got.stanzas.map((s) => s.to)).toEqual(["a@b/c", "a@b/c"]);
  });

  test("a mismatched end tag inside a message is a parser error, and nothing more is read", () => {
    const got = viaReader([`${STREAM}<message><body>x</thread></message>${ODD[0]}`]);
    expect(got.errors).toEqual(["body must be closed."]);
    expect(got.stanzas).toEqual([]);
  });
});

/** A lazy stanza as a plain one: `body` read (decoded), `xmlBody` left out. */
function decoded(s: Stanza): Stanza {
  const { xmlBody: _, ...rest } = s;
  return rest;
}

/** The body text of each `<message>` as it stands in `xml` (first direct `<body>` child, no markup inside). */
const RAW_BODY = /<body>([^<]*)<\/body>/;

describe("lazy bodies (the listener's connection): routing fields read, the body handed on as it came", () => {
  const stream = STREAM + [...MESSAGES, ...ODD].join("");

  test("every message reads the same as with decoded bodies, in one chunk, one character at a time and cut anywhere", () => {
    const expected = viaReader([stream]);
    const check = (got: ReturnType<typeof viaReader>) => {
      expect(got.errors).toEqual(expected.errors);
      expect(got.elements).toEqual(expected.elements);
      expect(got.stanzas.map(decoded)).toEqual(expected.stanzas);
    };
    check(viaReader([stream], true));
    check(viaReader([...stream], true));
    for (let i = 0; i < 40; i++) check(viaReader(randomCuts(stream, 30, i + 1), true));
  });

  test("xmlBody is the body's text exactly as the server sent it (no reference replaced)", () => {
    const got = viaReader([STREAM + MESSAGES.join("")], true);
    expect(got.stanzas).toHaveLength(MESSAGES.length);
    got.stanzas.forEach((st, i) => {
      const raw = RAW_BODY.exec(MESSAGES[i]!)?.[1] ?? "";
      expect(st.xmlBody).toBe(raw);
      expect(st.xmlBody!.length === 0 || st.xmlBody !== st.body || !raw.includes("&")).toBe(true);
    });
  });

  test("CDATA and markup inside a body: xmlBody decodes to the same text as the tree gives", () => {
    const msg = `<message to='a'><body>a<b>inner text</b>c<![CDATA[<d>&amp;]]>e&amp;f</body></message>`;
    const [lazy] = viaReader([STREAM + msg], true).stanzas;
    const [eager] = viaReader([STREAM + msg]).stanzas;
    expect(lazy!.xmlBody).toBe("ac&lt;d&gt;&amp;amp;e&amp;f");
    expect(decodeXmlBody(lazy!.xmlBody!).body).toBe(eager!.body);
    expect(lazy!.body).toBe("ac<d>&amp;e&f");
  });

  test("handed to a drone over IPC (as JSON), the drone gets exactly the stanza a decoding connection reads", () => {
    const all = STREAM + MESSAGES.join("");
    const lazy = viaReader([all], true).stanzas;
    const eager = viaReader([all]).stanzas;
    lazy.forEach((st, i) => {
      const wire = JSON.stringify(requestMessage(st));
      // The body travels as the server sent it: the listener never decoded it.
      expect(JSON.parse(wire).xmlBody).toBe(RAW_BODY.exec(MESSAGES[i]!)?.[1] ?? "");
      expect(JSON.parse(wire).stanza.body).toBe("");
      const msg = parseListenerMessage(JSON.parse(wire));
      expect(msg).toEqual({ type: "request", stanza: eager[i]! });
    });
  });

  test("a plain stanza (Redis, tests) is handed over as before", () => {
    const st = viaReader([STREAM + MESSAGES[0]!]).stanzas[0]!;
    expect(requestMessage(st)).toEqual({ type: "request", stanza: st });
  });

  test("a body no server would send (a bare '&'): reads as empty, and the drone is told why", () => {
    const [st] = viaReader(
      [`${STREAM}<message to='a' from='b'><thread>t</thread><body>x &amp y</body></message>`],
      true,
    ).stanzas;
    expect(st!.xmlBody).toBe("x &amp y");
    expect(st!.body).toBe("");
    const msg = parseListenerMessage(JSON.parse(JSON.stringify(requestMessage(st!))));
    expect(msg.type === "request" && msg.stanza.body).toBe("");
    expect(msg.type === "request" && msg.badBody).toContain("&");
  });

  test("a bad reference in the thread still fails the stream, as with decoded bodies", () => {
    const bad = `${STREAM}<message to='a'><thread>&bogus;</thread><body>b</body></message>${ODD[0]}`;
    const lazy = viaReader([bad], true);
    expect(lazy.errors).toEqual(viaReader([bad]).errors);
    expect(lazy.errors).toHaveLength(1);
    expect(lazy.stanzas).toEqual([]);
  });
});
