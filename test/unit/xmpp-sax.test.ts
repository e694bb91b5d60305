/**
 * XmlTokenizer and StreamParser (src/xmpp/xml-tokenizer.ts, src/xmpp/stream-parser.ts): what
 * they emit for well-formed XMPP XML (the same events as ltx's own tokenizer, on every input
 * both accept), that the way input is cut into chunks never changes the result, what they
 * refuse and how, and that long runs parse in linear time however they are chunked.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type XmlElement, Parser as XmppParser } from "@xmpp/xml";
import parse from "ltx/lib/parse.js";
import { StreamParser } from "../../src/xmpp/stream-parser.ts";
import { unescapeXml, XmlSyntaxError, XmlTokenizer } from "../../src/xmpp/xml-tokenizer.ts";
import { cutAt } from "../harness/chunks.ts";
import { prng } from "../harness/prng.ts";
import { countStringWork } from "../harness/string-work.ts";

interface Sax {
  write(s: string | Uint8Array): void;
  end(s?: string): void;
  on(ev: string, fn: (...args: never[]) => void): unknown;
}

const ltxModule = "ltx/lib/parsers/ltx.js";
const { default: LtxSax } = (await import(ltxModule)) as { default: new () => Sax };

const WIRE = readFileSync(join(import.meta.dir, "../fixtures/wire/opensrf-3.3-wire.txt"), "utf8");
/** Every captured payload (stream headers, iq, message), verbatim. */
const PAYLOADS = WIRE.split("\n")
  .map((l) => /^\s*[\d.]+ c\d+\s+(?:C->S|S->C) \d+B: (<.*)$/.exec(l)?.[1])
  .filter((x): x is string => x !== undefined);
const MESSAGES = PAYLOADS.filter((x) => x.startsWith("<message"));

type Event = [string, ...unknown[]];

/**
 * Events a tokenizer emits for `chunks`; an error ends the list as ["threw", message]
 * (thrown by write, as both tokenizers do when nobody listens for errors).
 */
function events(Sax: new () => Sax, chunks: Array<string | Uint8Array>): Event[] {
  const sax = new Sax();
  const out: Event[] = [];
  for (const ev of ["startElement", "endElement", "text"]) sax.on(ev, (...args: never[]) => out.push([ev, ...args]));
  try {
    for (const c of chunks) sax.write(c);
    sax.end();
  } catch (e) {
    out.push(["threw", (e as Error).message]);
  }
  return out;
}

/** Adjacent text events merged: chunking may split text, never change it. */
function merged(evs: Event[]): Event[] {
  const out: Event[] = [];
  for (const e of evs) {
    const last = out[out.length - 1];
    if (e[0] === "text" && last?.[0] === "text") last[1] = (last[1] as string) + (e[1] as string);
    else out.push([...e]);
  }
  return out;
}

/** `text` cut at the `points` inside it: no empty chunks. */
function cut(text: string, points: number[]): string[] {
  return cutAt(
    text,
    points.filter((p) => p > 0 && p < text.length),
  );
}

const every = (doc: string, size: number) => Array.from({ length: Math.ceil(doc.length / size) }, (_, i) => i * size);

const STREAM = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='42' from='localhost' version='1.0'>`;

/** Well-formed inputs exercising each construct; both tokenizers accept them. */
const WELL_FORMED = [
  `${STREAM + MESSAGES.join("")}</stream:stream>`,
  ...PAYLOADS,
  `<message to='a'><!-- a comment with <tags> & ]] and - --><body>x</body></message>`,
  `<message to='a'><?pi some > thing ?><body><![CDATA[a < b & ]] c]]></body></message>`,
  `<message to='a' q="it's" d='say "hi"'><body>&lt;&amp;&gt;&quot;&apos;&#65;&#x42;&#x1F600;</body></message>`,
  `<message   to = 'a'\n\tfrom="b"  ><body/><thread  /><x a='1'/></message >`,
  `<message to='a'><body>é ü 漢字 😀 &#233;</body></message>`,
  `<message><body>${"x".repeat(5000)}</body><thread>${"&quot;".repeat(500)}</thread></message>`,
];

/**
 * ltx's tokenizer never ends a comment or processing instruction whose end is cut between
 * chunks (it looks back before the chunk), so chunked comparisons leave those out.
 */
const CHUNKABLE = WELL_FORMED.filter((d) => !d.includes("<?") && !d.includes("<!"));

describe("on well-formed input, XmlTokenizer emits what ltx's tokenizer emits", () => {
  const rand = prng(7).next;

  test("whole documents", () => {
    for (const doc of WELL_FORMED) expect(events(XmlTokenizer, [doc])).toEqual(events(LtxSax, [doc]));
  });

  test("one character at a time", () => {
    expect(CHUNKABLE.length).toBeGreaterThan(20);
    for (const doc of CHUNKABLE.filter((d) => d.length < 4_000)) {
      const chunks = [...doc];
      expect(merged(events(XmlTokenizer, chunks))).toEqual(merged(events(LtxSax, chunks)));
    }
  });

  test("cut at random places, including inside tags, attributes and entities", () => {
    for (let i = 0; i < 300; i++) {
      const doc = CHUNKABLE[i % CHUNKABLE.length]!;
      const points = Array.from({ length: 1 + Math.floor(rand() * 12) }, () => Math.floor(rand() * doc.length));
      const chunks = cut(doc, points);
      expect(merged(events(XmlTokenizer, chunks))).toEqual(merged(events(LtxSax, chunks)));
    }
  });

  test("ltx's parse() with XmlTokenizer builds the same tree as with its own tokenizer", () => {
    for (const doc of [...MESSAGES, ...WELL_FORMED.slice(1 + PAYLOADS.length)]) {
      expect(parse(doc, { Parser: XmlTokenizer }).toString()).toBe(parse(doc, { Parser: LtxSax }).toString());
    }
  });
});

describe("every split gives the same events as the whole input", () => {
  const rand = prng(5).next;
  const docs = [...WELL_FORMED, `<?xml version='1.0'?>${STREAM}<a><!-- x --><?p q?><![CDATA[c]]>t</a>`];

  test("one character at a time, and at random places", () => {
    for (const doc of docs.filter((d) => d.length < 4_000)) {
      const whole = merged(events(XmlTokenizer, [doc]));
      expect(merged(events(XmlTokenizer, [...doc]))).toEqual(whole);
      for (let i = 0; i < 30; i++) {
        const points = Array.from({ length: 1 + Math.floor(rand() * 12) }, () => Math.floor(rand() * doc.length));
        expect(merged(events(XmlTokenizer, cut(doc, points)))).toEqual(whole);
      }
    }
  });

  test("cut right before and after every '&', '<', '>', ';' and quote of a delivered stanza", () => {
    const doc = MESSAGES.find((m) => m.includes("&quot;") && m.includes("type='error'"))!;
    const whole = merged(events(XmlTokenizer, [doc]));
    for (let i = 0; i < doc.length; i++) {
      if (!"&<>'\";".includes(doc[i]!)) continue;
      for (const p of [i, i + 1]) expect(merged(events(XmlTokenizer, cut(doc, [p])))).toEqual(whole);
    }
  });

  test("every two-way cut of an element with CDATA, comments and a PI", () => {
    const doc = `<a x='1'><!-- c -- x --><?p q?><![CDATA[]]]]]>]]>&amp;<b/></a>`;
    const whole = merged(events(XmlTokenizer, [doc]));
    for (let i = 1; i < doc.length; i++) {
      for (let j = i + 1; j < doc.length; j++) expect(merged(events(XmlTokenizer, cut(doc, [i, j])))).toEqual(whole);
    }
  });
});

describe("XmlTokenizer: what it emits", () => {
  test("start and end tags, self-closing ones with endElement(name, true)", () => {
    expect(events(XmlTokenizer, [`<a x="1"><b/><c y='2' /></a>`])).toEqual([
      ["startElement", "a", { x: "1" }],
      ["startElement", "b", {}],
      ["endElement", "b", true],
      ["startElement", "c", { y: "2" }],
      ["endElement", "c", true],
      ["endElement", "a", false],
    ]);
  });

  test("entities and character references, in text and attribute values", () => {
    const ev = events(XmlTokenizer, [
      `<a v="&lt;&gt;&amp;&quot;&apos;&#10;&#x1F600;">&lt;&gt;&amp;&quot;&apos;&#65;&#x42;&#x10FFFF;</a>`,
    ]);
    expect(ev[0]).toEqual(["startElement", "a", { v: `<>&"'\n😀` }]);
    expect(ev[1]).toEqual(["text", `<>&"'AB\u{10FFFF}`]);
  });

  test("either quote, each holding the other", () => {
    expect(events(XmlTokenizer, [`<a q="it's" d='say "hi"' e=""/>`])[0]).toEqual([
      "startElement",
      "a",
      { q: "it's", d: 'say "hi"', e: "" },
    ]);
  });

  test("CDATA is verbatim text; comments and processing instructions are skipped", () => {
    expect(events(XmlTokenizer, [`<a><?pi x?>1<!-- <b> -->2<![CDATA[<&amp;>]]>3</a>`])).toEqual([
      ["startElement", "a", {}],
      ["text", "1"],
      ["text", "2"],
      ["text", "<&amp;>"],
      ["text", "3"],
      ["endElement", "a", false],
    ]);
  });

  test("text after a CDATA section is kept (ltx's tokenizer drops it)", () => {
    expect(merged(events(XmlTokenizer, [`<a>pre<![CDATA[]]]]><![CDATA[>]]>post<![CDATA[]]></a>`]))).toEqual([
      ["startElement", "a", {}],
      ["text", "pre]]>post"],
      ["endElement", "a", false],
    ]);
  });

  test("the stream header is a start tag that stays open; stanzas follow; the footer closes it", () => {
    const ev = events(XmlTokenizer, [STREAM, `<presence/>`, ` `, `</stream:stream>`]);
    expect(ev[0]![0]).toBe("startElement");
    expect(ev[0]![1]).toBe("stream:stream");
    expect((ev[0]![2] as Record<string, string>)["xmlns:stream"]).toBe("http://etherx.jabber.org/streams");
    expect(ev.slice(1)).toEqual([
      ["startElement", "presence", {}],
      ["endElement", "presence", true],
      ["text", " "],
      ["endElement", "stream:stream", false],
    ]);
  });

  test("bytes are decoded as UTF-8, also when a character is cut between chunks", () => {
    const bytes = new TextEncoder().encode("<a>é漢😀</a>");
    const chunks = Array.from(bytes, (b) => Uint8Array.of(b));
    expect(merged(events(XmlTokenizer, chunks))).toEqual([
      ["startElement", "a", {}],
      ["text", "é漢😀"],
      ["endElement", "a", false],
    ]);
  });

  test("unescapeXml leaves text without '&' as it is", () => {
    const s = "plain text, no references";
    expect(unescapeXml(s)).toBe(s);
    expect(unescapeXml("a&amp;b&#x26;c&#38;")).toBe("a&b&c&");
  });

  test("unescapeXml replaces each reference once, never what a replacement produced", () => {
    expect(unescapeXml("&amp;quot;&amp;lt;&amp;amp;")).toBe("&quot;&lt;&amp;");
    expect(unescapeXml("&quot;&quot;x&lt;&gt;&apos;")).toBe(`""x<>'`);
    expect(() => unescapeXml("&&quot;")).toThrow(XmlSyntaxError);
    expect(() => unescapeXml("&am&quot;p;")).toThrow(XmlSyntaxError);
    expect(() => unescapeXml("&quot;&bogus;")).toThrow("Illegal XML entity &bogus;");
  });
});

describe("XmlTokenizer: what it refuses", () => {
  const cases: Array<[string, string, RegExp]> = [
    ["unknown entity", `<a>&foo;</a>`, /^Illegal XML entity &foo;$/],
    ["NUL reference", `<a>&#0;</a>`, /^Illegal XML character 0x0$/],
    ["surrogate reference", `<a>&#xD800;</a>`, /^Illegal XML character 0xd800$/],
    ["out of range reference", `<a>&#x110000;</a>`, /^Illegal XML character 0x110000$/],
    ["bad hex digits", `<a>&#xZZ;</a>`, /^Illegal XML entity &#xZZ;$/],
    ["bare &", `<a>a & b</a>`, /'&' must start/],
    ["bare & in an attribute", `<a v='a & b'/>`, /'&' must start/],
    ["& without ;", `<a>&amp</a>`, /'&' must start/],
    ["bad entity in an attribute", `<a v='&nbsp;'/>`, /^Illegal XML entity &nbsp;$/],
    ["'<' in an attribute", `<a v='<'/>`, /'<' in the value of v/],
    ["duplicate attribute", `<a v='1' v='2'/>`, /attribute v given twice/],
    ["no space between attributes", `<a v='1'w='2'/>`, /whitespace is required/],
    ["unquoted value", `<a v=1/>`, /must be quoted/],
    ["attribute without value", `<a v/>`, /has no value/],
    ["space after <", `< a/>`, /cannot start a tag name/],
    ["digit starts a name", `<1a/>`, /cannot start a tag name/],
    ["<< ", `<<a/>`, /cannot start a tag name/],
    ["empty end tag", `<a></>`, /cannot start a tag name/],
    ["junk in an end tag", `<a></a b>`, /unexpected 'b' in an end tag/],
    ["'/' not before '>'", `<a/ >`, /'\/' not followed by '>'/],
    ["quote in a start tag", `<a"b"/>`, /unexpected '"'/],
    ["DOCTYPE", `<!DOCTYPE a><a/>`, /declarations are not allowed/],
    ["<!ENTITY", `<a><!ENTITY x "y"></a>`, /declarations are not allowed/],
  ];

  test.each(cases)("%s", (_what, doc, message) => {
    const ev = events(XmlTokenizer, [doc]);
    const last = ev[ev.length - 1]!;
    expect(last[0]).toBe("threw");
    expect(last[1] as string).toMatch(message);
  });

  test("the result is the same however the input is cut", () => {
    const rand = prng(3).next;
    for (const [, doc] of cases) {
      const whole = merged(events(XmlTokenizer, [doc]));
      expect(merged(events(XmlTokenizer, [...doc]))).toEqual(whole);
      for (let i = 0; i < 20; i++) {
        const chunks = cut(
          doc,
          Array.from({ length: 3 }, () => Math.floor(rand() * doc.length)),
        );
        expect(merged(events(XmlTokenizer, chunks))).toEqual(whole);
      }
    }
  });

  test("an error listener gets an XmlSyntaxError, write stops throwing and nothing more is emitted", () => {
    const t = new XmlTokenizer();
    const seen: unknown[] = [];
    t.on("startElement", (name) => seen.push(name));
    t.on("error", (e) => seen.push(e));
    t.write("<a><b>&bad;</b>");
    t.write("<c/>");
    t.end("<d/>");
    expect(seen).toHaveLength(3);
    expect(seen.slice(0, 2)).toEqual(["a", "b"]);
    expect(seen[2]).toBeInstanceOf(XmlSyntaxError);
    expect((seen[2] as Error).message).toBe("Illegal XML entity &bad;");
  });

  test("end() does not judge completeness (the element builder does), and ignores later writes", () => {
    const t = new XmlTokenizer();
    const seen: string[] = [];
    t.on("startElement", (name) => seen.push(name));
    t.end("<a><b>unfinished");
    t.write("<c/>");
    expect(seen).toEqual(["a", "b"]);
    expect(() => parse("<a><b>unfinished", { Parser: XmlTokenizer })).toThrow("Incomplete document");
  });
});

describe("long runs parse in linear time", () => {
  // Work is counted, not timed (test/harness/string-work.ts): the characters the string
  // primitives scan or copy. Linear parsing does 8× the work for 8× the input, and a few
  // characters of work per input character whatever the chunk size; re-reading what earlier
  // chunks delivered (ltx's way) or re-joining a growing token per chunk breaks one or both.
  const text = (reps: number) => "a&amp;b&quot;".repeat(reps); // reps × 13 characters, no '<'
  const unescaped = (reps: number) => 'a&b"'.repeat(reps);
  const SMALL = 10_000;
  const LARGE = 8 * SMALL; // ~1 MB runs

  /** Events of `doc` cut every `size` characters (one chunk without), and the work they took. */
  function tokenize(doc: string, size?: number): { ev: Event[]; chars: number } {
    const chunks = size === undefined ? [doc] : cut(doc, every(doc, size));
    const { value, chars } = countStringWork(() => events(XmlTokenizer, chunks));
    return { ev: value, chars };
  }

  function expectLinear(doc: (reps: number) => string, size?: number): Event[] {
    const small = doc(SMALL);
    const large = doc(LARGE);
    const a = tokenize(small, size);
    const b = tokenize(large, size);
    expect(b.chars).toBeLessThan(10 * a.chars);
    expect(b.chars).toBeLessThan(8 * large.length);
    return b.ev;
  }

  test("text in one chunk", () => {
    const ev = expectLinear((reps) => `<message><body>${text(reps)}</body></message>`);
    expect(ev[2]).toEqual(["text", unescaped(LARGE)]);
  });

  test("text and a long attribute value in 64 kB chunks", () => {
    const ev = expectLinear(
      (reps) => `<message to='${"t".repeat(reps * 4)}'><body>${text(reps)}</body></message>`,
      65_536,
    );
    expect((ev[0]![2] as Record<string, string>).to).toHaveLength(LARGE * 4);
    expect(
      ev
        .filter(([t]) => t === "text")
        .map(([, s]) => s)
        .join(""),
    ).toBe(unescaped(LARGE));
  });

  test("text, CDATA, a comment and a tag name, each long, in 16-byte chunks", () => {
    const long = (reps: number) => "y".repeat(reps * 4);
    const ev = expectLinear(
      (reps) => `<a><${long(reps)}/><!--${long(reps)}--><![CDATA[${long(reps)}]]>${text(reps / 4)}</a>`,
      16,
    );
    expect(ev[1]).toEqual(["startElement", long(LARGE), {}]);
    expect(ev[3]).toEqual(["text", long(LARGE)]);
    expect(
      ev
        .slice(4)
        .filter(([t]) => t === "text")
        .map(([, s]) => s)
        .join(""),
    ).toBe(unescaped(LARGE / 4));
  });
});

describe("StreamParser builds the elements @xmpp/xml's Parser builds", () => {
  function stanzas(P: new () => XmppParser, chunks: string[]): string[] {
    const p = new P();
    const out: string[] = [];
    p.on("element", (el: XmlElement) => out.push(el.toString()));
    p.on("error", (e: Error) => out.push(`error: ${e.message}`));
    for (const c of chunks) p.write(c);
    return out;
  }

  test("a whole stream of the capture's stanzas, in random chunks", () => {
    const stream = STREAM + MESSAGES.join("");
    const rand = prng(11).next;
    for (let i = 0; i < 50; i++) {
      const chunks = cut(
        stream,
        Array.from({ length: 20 }, () => Math.floor(rand() * stream.length)),
      );
      const got = stanzas(StreamParser, chunks);
      expect(got).toEqual(stanzas(XmppParser, chunks));
      expect(got).toHaveLength(MESSAGES.length);
    }
  });

  test("start, element and end events; whitespace between stanzas is not kept on the stream element", () => {
    const p = new StreamParser();
    const seen: string[] = [];
    let root: XmlElement | undefined;
    p.on("start", (el: XmlElement) => {
      root = el;
      seen.push(`start ${el.name}`);
    });
    p.on("element", (el: XmlElement) => seen.push(`element ${el.name}`));
    p.on("end", (el: XmlElement) => seen.push(`end ${el.name}`));
    p.write(STREAM);
    for (let i = 0; i < 100; i++) p.write(" ");
    p.write("<presence/>\n</stream:stream>");
    expect(seen).toEqual(["start stream:stream", "element presence", "end stream:stream"]);
    expect(root!.children.filter((c) => typeof c === "string")).toEqual([]);
  });

  test("a tokenizer error becomes an error event, not an exception", () => {
    const p = new StreamParser();
    const errors: Error[] = [];
    p.on("error", (e: Error) => errors.push(e));
    p.write(`${STREAM}<message><body>&bogus;</body></message>`);
    expect(errors.map((e) => e.message)).toEqual(["Illegal XML entity &bogus;"]);
  });
});
