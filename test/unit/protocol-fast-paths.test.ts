/**
 * Fast paths of the protocol layer, checked against their plain definitions:
 * - chunkText and xmlEscapingExtra count plain runs whole (a regex finds the few characters
 *   that cost extra) instead of character by character; they must cut exactly where the
 *   greedy, character-by-character definition cuts, surrogate pairs included;
 * - encodeJson skips the non-ASCII escaping when a byte count shows there is none, and
 *   escapes runs from a table; the text must be what escaping every character gives.
 * Both stay linear on megabyte inputs: the work is counted (test/harness/string-work.ts), not
 * timed; how fast they are is bench/components.ts's business.
 */
import { describe, expect, test } from "bun:test";
import { chunkText, escapedSize, MIN_CHUNK_SIZE, xmlEscapingExtra } from "../../src/protocol/chunking.ts";
import { encodeJson, encodeMessage } from "../../src/protocol/codec.ts";
import { status } from "../../src/protocol/messages.ts";
import { prng } from "../harness/prng.ts";
import { countStringWork } from "../harness/string-work.ts";

const EXTRA: Record<string, number> = { "<": 3, ">": 3, "&": 4, '"': 11 };

/** The definition: each character costs 1 plus its escaping extra; cut before the one that does not fit. */
function referenceChunks(text: string, chunkSize: number): string[] {
  const isHigh = (c: number) => c >= 0xd800 && c <= 0xdbff;
  const isLow = (c: number) => c >= 0xdc00 && c <= 0xdfff;
  const chunks: string[] = [];
  let start = 0;
  let size = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    const cost = 1 + (EXTRA[text[i]!] ?? 0);
    if (size + cost > chunkSize) {
      let cut = i;
      if (isLow(code) && cut - 1 > start && isHigh(text.charCodeAt(cut - 1))) cut--;
      chunks.push(text.slice(start, cut));
      start = cut;
      size = cut < i ? 1 : 0;
    }
    size += cost;
  }
  if (start < text.length) chunks.push(text.slice(start));
  return chunks;
}

describe("chunkText and xmlEscapingExtra match the character-by-character definition", () => {
  const rand = prng(5).next;
  const alphabet = ["a", "b", "<", ">", "&", '"', "é", "😀", "\ud800", "\udc00", " "];
  const texts: string[] = [];
  for (let i = 0; i < 400; i++) {
    const len = Math.floor(rand() * 300);
    // Sparse or dense escapable characters, and runs of surrogate pairs.
    const dense = rand() < 0.5;
    let t = "";
    for (let k = 0; k < len; k++)
      t += dense
        ? alphabet[Math.floor(rand() * alphabet.length)]!
        : rand() < 0.05
          ? alphabet[2 + Math.floor(rand() * 4)]!
          : rand() < 0.1
            ? "😀"
            : "x";
    texts.push(t);
  }
  texts.push("", "x".repeat(1000), '"'.repeat(100), "😀".repeat(100), `{"a":"${"y".repeat(500)}"}`);

  test("the same pieces for every text and chunk size from the minimum up", () => {
    for (const text of texts) {
      for (const size of [MIN_CHUNK_SIZE, 13, 14, 16, 23, 50, 97, 1000]) {
        const got = chunkText(text, size);
        expect(got).toEqual(referenceChunks(text, size));
        expect(got.join("")).toBe(text);
      }
    }
  });

  test("the same escaping extra", () => {
    for (const text of texts) {
      const expected = [...text].reduce((n, ch) => n + (EXTRA[ch] ?? 0), 0);
      expect(xmlEscapingExtra(text)).toBe(expected);
      expect(escapedSize(text)).toBe(text.length + expected);
    }
  });

  test("a megabyte result is cut in linear time, where the definition cuts", () => {
    const result = (n: number) => JSON.stringify(`${"x".repeat(n)}<&>"`.repeat(4));
    const small = countStringWork(() => chunkText(result(1 << 17), 51_200));
    const text = result(1 << 20);
    const large = countStringWork(() => chunkText(text, 51_200));
    expect(large.chars).toBeLessThan(10 * small.chars);
    expect(large.chars).toBeLessThan(4 * text.length);
    expect(large.value.join("")).toBe(text);
    expect(large.value).toEqual(referenceChunks(text, 51_200));
  });
});

describe("encodeJson writes every non-ASCII character (and DEL) as lowercase \\uxxxx", () => {
  const reference = (v: unknown) =>
    JSON.stringify(v).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  const rand = prng(9).next;
  const pieces = ["a", '"', "\\", "\n", "é", "ü", "漢", "😀", "\u007f", "\u0080", "\uffff", "\ud800", "x".repeat(20)];

  test("strings and structures, ASCII-only or not", () => {
    for (let i = 0; i < 500; i++) {
      let s = "";
      for (let k = Math.floor(rand() * 40); k > 0; k--) s += pieces[Math.floor(rand() * pieces.length)]!;
      for (const v of [s, [s, 1, { [s]: s }], { k: s, n: null }]) expect(encodeJson(v)).toBe(reference(v));
    }
  });

  test("a megabyte of accented text is escaped in linear time", () => {
    const text = (n: number) => `${"é".repeat(n)}${"x".repeat(n)}`.repeat(4);
    const small = countStringWork(() => encodeJson(text(1 << 14)));
    const v = text(1 << 17);
    const large = countStringWork(() => encodeJson(v));
    expect(large.chars).toBeLessThan(10 * small.chars);
    expect(large.chars).toBeLessThan(4 * v.length);
    expect(large.value).toBe(reference(v));
  });
});

describe("encodeMessage writes header and status strings as encodeJson does", () => {
  // Plain printable ASCII is written between quotes without JSON.stringify; anything else
  // (quotes, backslashes, controls, DEL, non-ASCII) takes the full way. Both must agree.
  const rand = prng(11).next;
  const pieces = ["en-US", " ", "!", "#", "[", "]", "~", '"', "\\", "\t", "\u0000", "\u001f", "\u007f", "é", "😀", "/"];
  test("every kind of character, alone and mixed", () => {
    const strings = [...pieces, ""];
    for (let i = 0; i < 400; i++) {
      let s = "";
      for (let k = Math.floor(rand() * 12); k > 0; k--) s += pieces[Math.floor(rand() * pieces.length)]!;
      strings.push(s);
    }
    for (const s of strings) {
      const msg = status(1, s, 200, s, { locale: s, tz: s, ingress: s });
      const want =
        `{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":${encodeJson(s)},"tz":${encodeJson(s)}` +
        `,"ingress":${encodeJson(s)},"api_level":1,"type":"STATUS","payload":{"__c":${encodeJson(s)}` +
        `,"__p":{"status":${encodeJson(s)},"statusCode":"200"}}}}`;
      if (s === "") continue; // an empty class name is refused, as it should be
      expect(encodeMessage(msg)).toBe(want);
    }
  });
});
