import { describe, expect, test } from "bun:test";
import {
  Bundler,
  chunkText,
  escapedSize,
  MIN_CHUNK_SIZE,
  OSRF_MSG_BUNDLE_SIZE,
  OSRF_MSG_CHUNK_SIZE,
  PartialAssembler,
  splitResult,
  xmlEscapingExtra,
} from "../../src/protocol/chunking.ts";
import { decodeBody, encodeBody, encodeJson, encodeMessage } from "../../src/protocol/codec.ts";
import { ProtocolError } from "../../src/protocol/errors.ts";
import { complete, result } from "../../src/protocol/messages.ts";
import type { JsonValue, OsrfMessage, ResultMessage } from "../../src/protocol/types.ts";

// Sample H of the OpenSRF 3.3.0 capture: the math drone's bundled reply to add(2,2).
const SAMPLE_H =
  '[{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","api_level":1,"type":"RESULT",' +
  '"payload":{"__c":"osrfResult","__p":{"status":"OK","statusCode":"200","content":4}}}},' +
  '{"__c":"osrfMessage","__p":{"threadTrace":"1","locale":"en-US","api_level":1,"type":"STATUS",' +
  '"payload":{"__c":"osrfConnectStatus","__p":{"status":"Request Complete","statusCode":"205"}}}}]';

function bigContent(n: number): JsonValue {
  return Array.from({ length: n }, (_, i) => ({
    id: i,
    title: `Le "petit" prince <${i}> & co — 😀`,
    tags: ["a&b", "<c>", i % 3 === 0 ? null : true],
  }));
}

function partialPieces(msgs: ResultMessage[]): string[] {
  return msgs.slice(0, -1).map((m) => m.payload.content as string);
}

describe("constants and estimates", () => {
  test("C defaults", () => {
    expect(OSRF_MSG_BUNDLE_SIZE).toBe(25600);
    expect(OSRF_MSG_CHUNK_SIZE).toBe(51200);
  });

  test("escaping estimate matches C's osrfXmlEscapingLength", () => {
    // the value OpenSRF's own unit test asserts
    expect(xmlEscapingExtra('<tag attr="attribute value">a &amp; b</tag>')).toBe(38);
    expect(xmlEscapingExtra("12345")).toBe(0);
    expect(escapedSize('a"b')).toBe(3 + 11);
    expect(escapedSize("<>&'")).toBe(4 + 3 + 3 + 4);
  });
});

describe("splitResult", () => {
  test("null while the escaped JSON fits, chunks from one byte over", () => {
    // "xx…" plus its two quotes (escaped 11 each)
    const fits = "x".repeat(1000 - 24);
    expect(escapedSize(encodeJson(fits))).toBe(1000);
    expect(splitResult(1, fits, {}, 1000)).toBeNull();
    const over = `${fits}x`;
    const msgs = splitResult(1, over, {}, 1000);
    expect(msgs).not.toBeNull();
    expect(partialPieces(msgs as ResultMessage[]).join("")).toBe(encodeJson(over));
  });

  test("default chunk size is C's", () => {
    expect(splitResult(1, bigContent(10))).toBeNull();
    const content = bigContent(2000);
    expect(escapedSize(encodeJson(content))).toBeGreaterThan(OSRF_MSG_CHUNK_SIZE);
    expect(splitResult(1, content)).not.toBeNull();
  });

  test("pieces stay under the limit, rejoin to the JSON, and carry C's classes and texts", () => {
    const content = bigContent(3000);
    const text = encodeJson(content);
    const msgs = splitResult(5, content, { locale: "fr-CA", ingress: "srfsh" }) as ResultMessage[];
    const pieces = partialPieces(msgs);
    expect(pieces.length).toBeGreaterThanOrEqual(Math.ceil(escapedSize(text) / OSRF_MSG_CHUNK_SIZE));
    expect(pieces.join("")).toBe(text);
    for (const p of pieces) expect(escapedSize(p)).toBeLessThanOrEqual(OSRF_MSG_CHUNK_SIZE);
    for (const m of msgs) {
      expect(m.threadTrace).toBe(5);
      expect(m.locale).toBe("fr-CA");
      expect(m.ingress).toBe("srfsh");
      expect(m.type).toBe("RESULT");
    }
    for (const m of msgs.slice(0, -1)) {
      expect(m.payload).toMatchObject({ className: "osrfResultPartial", status: "Partial Response", statusCode: 206 });
    }
    expect(msgs.at(-1)?.payload).toStrictEqual({
      className: "osrfResultPartialComplete",
      status: "Partial Response Finalized",
      statusCode: 204,
      content: null,
    });
  });

  test("each piece, sent in its own body, survives the wire and reassembles", () => {
    const content = bigContent(2500);
    const msgs = splitResult(2, content) as ResultMessage[];
    const asm = new PartialAssembler();
    let out: ReturnType<PartialAssembler["add"]> = { done: false };
    for (const m of msgs) {
      const body = encodeBody([m]);
      expect(Buffer.byteLength(body, "utf8")).toBe(body.length);
      const [back] = decodeBody(body) as [ResultMessage];
      expect(out.done).toBe(false);
      out = asm.add(back);
    }
    expect(out).toEqual({ done: true, content });
    expect(asm.pending).toBe(0);
  });
});

describe("chunkText", () => {
  test("clustered escapable characters still stay under the limit", () => {
    const text = "a".repeat(5000) + '"'.repeat(500) + "<&>".repeat(300);
    const pieces = chunkText(text, 1200);
    expect(pieces.join("")).toBe(text);
    for (const p of pieces) expect(escapedSize(p)).toBeLessThanOrEqual(1200);
    // greedy: every cut was needed
    for (let i = 0; i + 1 < pieces.length; i++) {
      expect(escapedSize((pieces[i] as string) + (pieces[i + 1] as string)[0])).toBeGreaterThan(1200);
    }
  });

  test("never splits a surrogate pair", () => {
    for (const size of [12, 13, 17, 64]) {
      const text = `x${"😀".repeat(200)}`;
      const pieces = chunkText(text, size);
      expect(pieces.join("")).toBe(text);
      for (const p of pieces) {
        const last = p.charCodeAt(p.length - 1);
        expect(last >= 0xd800 && last <= 0xdbff).toBe(false);
        expect(escapedSize(p)).toBeLessThanOrEqual(size);
      }
    }
  });

  test("rejects sizes that cannot hold every character", () => {
    expect(MIN_CHUNK_SIZE).toBe(12);
    expect(() => chunkText('"', 11)).toThrow(RangeError);
    expect(() => chunkText("a", 12.5)).toThrow(RangeError);
    expect(chunkText('""', 12)).toEqual(['"', '"']);
  });
});

describe("PartialAssembler", () => {
  const partial = (t: number, piece: JsonValue): ResultMessage => ({
    threadTrace: t,
    apiLevel: 1,
    type: "RESULT",
    payload: { className: "osrfResultPartial", status: "Partial Response", statusCode: 206, content: piece },
  });
  const done = (t: number): ResultMessage => ({
    threadTrace: t,
    apiLevel: 1,
    type: "RESULT",
    payload: {
      className: "osrfResultPartialComplete",
      status: "Partial Response Finalized",
      statusCode: 204,
      content: null,
    },
  });

  test("plain results pass through", () => {
    expect(new PartialAssembler().add(result(1, { a: [1] }))).toEqual({ done: true, content: { a: [1] } });
  });

  test("pieces of different threadTraces do not mix", () => {
    const asm = new PartialAssembler();
    expect(asm.add(partial(1, '{"a":'))).toEqual({ done: false });
    expect(asm.add(partial(2, "[1,"))).toEqual({ done: false });
    expect(asm.add(partial(1, "1}"))).toEqual({ done: false });
    expect(asm.add(partial(2, "2]"))).toEqual({ done: false });
    expect(asm.pending).toBe(2);
    expect(asm.add(done(2))).toEqual({ done: true, content: [1, 2] });
    expect(asm.add(done(1))).toEqual({ done: true, content: { a: 1 } });
    expect(asm.pending).toBe(0);
  });

  test("a completion with nothing before it yields nothing (as in C)", () => {
    expect(new PartialAssembler().add(done(1))).toEqual({ done: false });
  });

  test("bad JSON, non-string pieces and oversize input are ProtocolErrors", () => {
    const asm = new PartialAssembler({ maxLength: 10 });
    asm.add(partial(1, "{nope"));
    expect(() => asm.add(done(1))).toThrow(ProtocolError);
    expect(asm.pending).toBe(0);
    expect(() => asm.add(partial(1, 5))).toThrow(ProtocolError);
    asm.add(partial(3, "[1,2,3,"));
    expect(() => asm.add(partial(3, "4,5,6]"))).toThrow(ProtocolError);
    expect(asm.pending).toBe(0);
  });

  test("reset drops buffered pieces", () => {
    const asm = new PartialAssembler();
    asm.add(partial(1, "[1"));
    asm.add(partial(2, "[2"));
    asm.reset(1);
    expect(asm.pending).toBe(1);
    expect(asm.add(done(1))).toEqual({ done: false });
    asm.reset();
    expect(asm.pending).toBe(0);
  });
});

describe("Bundler", () => {
  test("a result and its 205 make C's bundle (sample H)", () => {
    const b = new Bundler();
    expect(b.bundleSize).toBe(OSRF_MSG_BUNDLE_SIZE);
    expect(b.add(result(1, 4))).toEqual([]);
    expect(b.add(complete(1))).toEqual([]);
    expect(b.count).toBe(2);
    expect(b.flush()).toBe(SAMPLE_H);
    expect(b.flush()).toBeNull();
    expect(b.count).toBe(0);
  });

  test("flushes only when the next message would reach the limit; order is kept", () => {
    const size = 1000;
    const b = new Bundler(size);
    const msgs: OsrfMessage[] = Array.from({ length: 120 }, (_, i) => result(1, "é".repeat(i % 17) + "x".repeat(i)));
    const bodies: string[] = [];
    const firstAfter: OsrfMessage[] = [];
    for (const m of msgs) {
      const out = b.add(m);
      for (const body of out) {
        bodies.push(body);
        firstAfter.push(m);
      }
    }
    bodies.push(b.flush() as string);
    expect(bodies.length).toBeGreaterThan(5);
    for (const body of bodies) {
      expect(Buffer.byteLength(body, "utf8")).toBeLessThan(size);
    }
    // each flushed bundle had no room for the message that triggered the flush
    for (let i = 0; i < firstAfter.length; i++) {
      const next = encodeMessage(firstAfter[i] as OsrfMessage);
      expect((bodies[i] as string).length + 1 + next.length).toBeGreaterThanOrEqual(size);
    }
    expect(bodies.flatMap((body) => decodeBody(body))).toEqual(msgs);
  });

  test("a message too large for any bundle goes alone, at once", () => {
    const b = new Bundler(500);
    expect(b.add(result(1, "small"))).toEqual([]);
    const big = result(1, "y".repeat(600));
    const out = b.add(big);
    expect(out.length).toBe(2);
    expect(decodeBody(out[0] as string)).toEqual([result(1, "small")]);
    expect(out[1]).toBe(encodeBody([big]));
    expect(b.count).toBe(0);
    expect(b.flush()).toBeNull();
    // with nothing pending, only the big body comes back
    expect(b.add(big)).toEqual([encodeBody([big])]);
  });
});
