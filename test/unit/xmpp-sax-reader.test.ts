/**
 * The connection's hot path: StreamParser with a StanzaReader turns each `<message>` into a
 * Stanza straight from tokenizer events. It must give exactly what decodeStanza gives on the
 * element @xmpp/xml builds, however the stream is chunked, and leave other stanzas alone.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type XmlElement, Parser as XmppParser } from "@xmpp/xml";
import { decodeStanza, StanzaReader } from "../../src/xmpp/stanza.ts";
import { StreamParser } from "../../src/xmpp/stream-parser.ts";
import type { Stanza } from "../../src/xmpp/types.ts";
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

function viaReader(chunks: string[]): { stanzas: Stanza[]; elements: string[]; errors: string[] } {
  const stanzas: Stanza[] = [];
  const elements: string[] = [];
  const errors: string[] = [];
  const p = new StreamParser({
    childReader: (name) => (name === "message" ? new StanzaReader((s) => stanzas.push(s)) : undefined),
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
