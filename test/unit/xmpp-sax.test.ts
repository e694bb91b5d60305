/**
 * LinearSax (src/xmpp/sax.ts) is ltx's tokenizer with its quadratic fast-forward fixed: it
 * must emit exactly the events ltx emits, however the input is cut into chunks, and parse
 * long text runs in linear time. StreamParser must build the same elements as @xmpp/xml's.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Parser as XmppParser, type XmlElement } from "@xmpp/xml";
import { LinearSax, StreamParser } from "../../src/xmpp/sax.ts";

interface Sax {
  write(s: string): void;
  end(s?: string): void;
  on(ev: string, fn: (...args: unknown[]) => void): unknown;
}

const ltxModule = "ltx/lib/parsers/ltx.js";
const { default: OriginalSax } = (await import(ltxModule)) as { default: new () => Sax };

const WIRE = readFileSync(join(import.meta.dir, "../fixtures/wire/opensrf-3.3-wire.txt"), "utf8");
/** Every captured payload (stream headers, iq, message), verbatim. */
const PAYLOADS = WIRE.split("\n")
  .map((l) => /^\s*[\d.]+ c\d+\s+(?:C->S|S->C) \d+B: (<.*)$/.exec(l)?.[1])
  .filter((x): x is string => x !== undefined);
const MESSAGES = PAYLOADS.filter((x) => x.startsWith("<message"));

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Events a tokenizer emits for `chunks`, and the error its write() threw, if any. */
function events(Sax: new () => Sax, chunks: string[]): unknown[] {
  const sax = new Sax();
  const out: unknown[] = [];
  for (const ev of ["startElement", "endElement", "text"]) sax.on(ev, (...args) => out.push([ev, ...args]));
  try {
    for (const c of chunks) sax.write(c);
    sax.end();
  } catch (e) {
    out.push(["threw", (e as Error).message]);
  }
  return out;
}

function cut(text: string, points: number[]): string[] {
  const sorted = [...new Set(points.filter((p) => p > 0 && p < text.length))].sort((a, b) => a - b);
  const out: string[] = [];
  let last = 0;
  for (const p of sorted) {
    out.push(text.slice(last, p));
    last = p;
  }
  out.push(text.slice(last));
  return out;
}

const STREAM = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='42' from='localhost' version='1.0'>`;

const EXTRA = [
  `<message to='a'><!-- a comment with <tags> & ]] and -- --><body>x</body></message>`,
  `<message to='a'><!DOCTYPE whatever [ x ]]><body>y</body></message>`,
  `<message to='a'><?pi some > thing ?><body><![CDATA[a < b & ]] c]]></body></message>`,
  `<message to='a' q="it's" d='say "hi"'><body>&lt;&amp;&gt;&quot;&apos;&#65;&#x42;</body></message>`,
  `<message to='a'><body>&foo;</body></message>`,
  `<message to='a'><body>&#0;</body></message>`,
  `<message to='a'><body>unterminated`,
  `<message to='a' b='unterminated attribute`,
  `<message><body>${"x".repeat(5000)}</body><thread>${"&quot;".repeat(500)}</thread></message>`,
];

describe("LinearSax emits what ltx's tokenizer emits", () => {
  const corpus = [STREAM + MESSAGES.join("") + "</stream:stream>", ...PAYLOADS, ...EXTRA];
  const rand = rng(7);

  test("whole documents", () => {
    for (const doc of corpus) expect(events(LinearSax, [doc])).toEqual(events(OriginalSax, [doc]));
  });

  test("one character at a time", () => {
    for (const doc of corpus.filter((d) => d.length < 4_000)) {
      const chunks = [...doc];
      expect(events(LinearSax, chunks)).toEqual(events(OriginalSax, chunks));
    }
  });

  test("cut at random places, including inside tags, attributes, entities, CDATA and comments", () => {
    for (let i = 0; i < 300; i++) {
      const doc = corpus[i % corpus.length]!;
      const points = Array.from({ length: 1 + Math.floor(rand() * 12) }, () => Math.floor(rand() * doc.length));
      const chunks = cut(doc, points);
      expect(events(LinearSax, chunks)).toEqual(events(OriginalSax, chunks));
    }
  });

  test("cut right before and after every '&', '<', '>' and quote of a delivered stanza", () => {
    const doc = MESSAGES.find((m) => m.includes("&quot;") && m.includes("type='error'"))!;
    for (let i = 0; i < doc.length; i++) {
      if (!"&<>'\";".includes(doc[i]!)) continue;
      for (const p of [i, i + 1]) {
        const chunks = cut(doc, [p]);
        expect(events(LinearSax, chunks)).toEqual(events(OriginalSax, chunks));
      }
    }
  });
});

describe("long text runs parse in linear time", () => {
  const body = "a&amp;b&quot;".repeat(250_000); // 3.25 MB of text without a '<'

  test("in one chunk", () => {
    const started = performance.now();
    const ev = events(LinearSax, [`<message><body>${body}</body></message>`]);
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(ev[2]).toEqual(["text", "a&b\"".repeat(250_000)]);
  });

  test("in 64 kB chunks, and in an attribute value", () => {
    const doc = `<message to='${"t".repeat(1_000_000)}'><body>${body}</body></message>`;
    const points = Array.from({ length: Math.ceil(doc.length / 65_536) }, (_, i) => i * 65_536);
    const started = performance.now();
    const ev = events(LinearSax, cut(doc, points)) as Array<[string, ...unknown[]]>;
    expect(performance.now() - started).toBeLessThan(2_000);
    expect((ev[0]![2] as Record<string, string>).to).toHaveLength(1_000_000);
    expect(ev.filter(([t]) => t === "text").map(([, s]) => s).join("")).toBe("a&b\"".repeat(250_000));
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
    const rand = rng(11);
    for (let i = 0; i < 50; i++) {
      const chunks = cut(stream, Array.from({ length: 20 }, () => Math.floor(rand() * stream.length)));
      const got = stanzas(StreamParser, chunks);
      expect(got).toEqual(stanzas(XmppParser, chunks));
      expect(got).toHaveLength(MESSAGES.length);
    }
  });
});
