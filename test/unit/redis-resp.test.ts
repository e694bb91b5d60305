/**
 * RESP2 encoding of commands and incremental decoding of replies, including replies split at
 * every byte (multi-byte UTF-8 too) and large bulk strings arriving in many chunks.
 */
import { describe, expect, test } from "bun:test";
import { encodeCommand, RespErrorReply, RespProtocolError, RespReader } from "../../src/redis/resp.ts";
import { unwrittenTail } from "../../src/redis/resp-client.ts";

const enc = (s: string) => new TextEncoder().encode(s);

describe("encodeCommand", () => {
  test("an array of bulk strings whose lengths are UTF-8 bytes", () => {
    expect(encodeCommand(["RPUSH", "opensrf:client:x", "é☃"])).toBe(
      "*3\r\n$5\r\nRPUSH\r\n$16\r\nopensrf:client:x\r\n$5\r\né☃\r\n",
    );
  });
});

describe("unwrittenTail: the rest of a partial socket write", () => {
  // 100 characters, 150 bytes: the byte count a socket returns can pass the string length.
  const data = "aé".repeat(50);
  const bytes = Buffer.from(data);

  test("all of it written: nothing left", () => {
    expect(unwrittenTail("abc", 3)).toBeUndefined();
    expect(unwrittenTail(data, 150)).toBeUndefined();
  });

  test("every byte count short of the whole leaves exactly the bytes not written", () => {
    for (let n = 0; n < bytes.length; n++) expect(unwrittenTail(data, n)).toEqual(bytes.subarray(n));
    // More than 100 (the string's length) and still short: a case a character count misses.
    expect(unwrittenTail(data, 120)?.length).toBe(30);
  });

  test("a negative count (nothing taken) leaves everything", () => {
    expect(unwrittenTail(data, -1)).toEqual(bytes);
  });
});

describe("RespReader", () => {
  const stream =
    "+OK\r\n:3\r\n$-1\r\n*-1\r\n-WRONGPASS invalid username-password pair\r\n" +
    "*2\r\n$16\r\nopensrf:client:x\r\n$6\r\nhé☃\r\n$0\r\n\r\n";
  const expected = [
    "OK",
    3,
    null,
    null,
    new RespErrorReply("WRONGPASS invalid username-password pair"),
    ["opensrf:client:x", "hé☃"],
    "",
  ];

  test("decodes every reply type of one chunk", () => {
    expect(new RespReader().push(enc(stream))).toEqual(expected);
  });

  test("gives the same replies however the bytes are split, mid-character included", () => {
    const bytes = enc(stream);
    for (let cut = 1; cut < bytes.length; cut++) {
      const r = new RespReader();
      const got = [...r.push(bytes.subarray(0, cut)), ...r.push(bytes.subarray(cut))];
      expect(got).toEqual(expected);
      expect(r.buffered).toBe(0);
    }
  });

  test("byte by byte", () => {
    const r = new RespReader();
    const got = [];
    for (const b of enc(stream)) got.push(...r.push(Uint8Array.of(b)));
    expect(got).toEqual(expected);
  });

  test("a 3 MB bulk string in 64 KB chunks arrives whole, once", () => {
    const big = "é".repeat(1_500_000);
    const bytes = enc(`$${Buffer.byteLength(big)}\r\n${big}\r\n:1\r\n`);
    const r = new RespReader();
    const got = [];
    for (let i = 0; i < bytes.length; i += 65_536) got.push(...r.push(bytes.subarray(i, i + 65_536)));
    expect(got).toHaveLength(2);
    expect(got[0]).toBe(big);
    expect(got[1]).toBe(1);
  });

  test("integers of every sign and size RESP sends", () => {
    expect(new RespReader().push(enc(":0\r\n:-7\r\n:123456789012345\r\n"))).toEqual([0, -7, 123456789012345]);
  });

  test("a bad integer is named in the error", () => {
    expect(() => new RespReader().push(enc(":12a\r\n"))).toThrow('bad integer "12a"');
  });

  test("an error reply's code is its first word", () => {
    expect(new RespErrorReply("NOPERM this user has no permissions").code).toBe("NOPERM");
  });

  test.each([
    ["an unknown type byte", "?what\r\n"],
    ["a bad bulk length", "$x\r\n"],
    ["an empty integer", ":\r\n"],
    ["a lone minus sign", ":-\r\n"],
    ["a plus sign before an integer", ":+5\r\n"],
    ["an integer with a letter in it", ":12a\r\n"],
    ["an array length of 16 digits", "*1000000000000000\r\n"],
    ["a bulk string without its CRLF", "$2\r\nabXY"],
    ["a line ended by CR alone", "+OK\rX"],
  ])("%s is a protocol error", (_what, text) => {
    expect(() => new RespReader().push(enc(text))).toThrow(RespProtocolError);
  });
});
