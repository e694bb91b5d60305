/**
 * RESP2, the Redis wire protocol, for the few commands OpenSRF uses (AUTH, RPUSH, BLPOP, LPOP,
 * DEL, QUIT): commands encoded as arrays of bulk strings, replies decoded incrementally from
 * socket chunks. Pure: no I/O.
 */

/** An error reply (`-ERR …`, `-WRONGPASS …`, `-NOPERM …`). */
export class RespErrorReply {
  constructor(readonly message: string) {}
  /** The first word: ERR, WRONGPASS, NOPERM, … */
  get code(): string {
    const space = this.message.indexOf(" ");
    return space < 0 ? this.message : this.message.slice(0, space);
  }
}

/** A decoded reply. Bulk strings are decoded as UTF-8; `null` is RESP's null bulk or array. */
export type RespValue = string | number | null | RespErrorReply | RespValue[];

/** The stream is not RESP: the connection must be dropped, it cannot resynchronise. */
export class RespProtocolError extends Error {
  constructor(reason: string) {
    super(`Redis protocol error: ${reason}`);
    this.name = "RespProtocolError";
  }
}

/** One command as RESP: an array of bulk strings, lengths in UTF-8 bytes. */
export function encodeCommand(args: readonly string[]): string {
  let out = `*${args.length}\r\n`;
  for (const a of args) out += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
  return out;
}

const CR = 13;
/** Not enough bytes yet; `need` is the least total buffer length that could complete the reply. */
interface Incomplete {
  need: number;
}
interface Parsed {
  value: RespValue;
  end: number;
}

const decoder = new TextDecoder("utf-8");

/**
 * Incremental reply decoder: feed it socket chunks, get every complete reply. Large bulk
 * strings (a 10 MB message arrives in hundreds of chunks) are not re-parsed per chunk: the
 * reader waits until the announced length is buffered.
 */
export class RespReader {
  private buf: Buffer = Buffer.alloc(0);
  private chunks: Buffer[] = [];
  private chunkBytes = 0;
  private need = 0;

  /** Bytes received and not yet consumed by a complete reply. */
  get buffered(): number {
    return this.buf.length + this.chunkBytes;
  }

  /** @throws RespProtocolError when the bytes are not RESP. */
  push(chunk: Uint8Array): RespValue[] {
    this.chunkBytes += chunk.byteLength;
    if (this.buf.length + this.chunkBytes < this.need) {
      // Kept past this call: a copy, since the socket may reuse its chunk.
      this.chunks.push(Buffer.from(chunk));
      return [];
    }
    // Sockets hand over Buffers, used as they are: reading a view's `.buffer` was measured at
    // 1% of a listener's CPU.
    this.chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    const buf =
      this.buf.length === 0 && this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat([this.buf, ...this.chunks]);
    this.chunks = [];
    this.chunkBytes = 0;
    const out: RespValue[] = [];
    let pos = 0;
    this.need = 0;
    for (;;) {
      const r = parseAt(buf, pos);
      if ("need" in r) {
        this.need = r.need - pos;
        break;
      }
      out.push(r.value);
      pos = r.end;
    }
    // What is kept is copied: the socket may reuse its chunk once the callback returns, and a
    // small tail must not pin a large buffer.
    this.buf = pos >= buf.length ? EMPTY : Buffer.from(buf.subarray(pos));
    return out;
  }
}

const EMPTY = Buffer.alloc(0);

function lineEnd(buf: Buffer, from: number): number {
  const i = buf.indexOf(CR, from);
  return i >= 0 && i + 1 < buf.length ? i : -1;
}

function parseAt(buf: Buffer, pos: number): Parsed | Incomplete {
  if (pos >= buf.length) return { need: pos + 1 };
  const eol = lineEnd(buf, pos + 1);
  if (eol < 0) return { need: buf.length + 1 };
  if (buf[eol + 1] !== 10) throw new RespProtocolError("a line not ended by CRLF");
  const type = buf[pos];
  const next = eol + 2;
  switch (type) {
    case 43: // +
      return { value: buf.toString("latin1", pos + 1, eol), end: next };
    case 45: // -
      return { value: new RespErrorReply(decoder.decode(buf.subarray(pos + 1, eol))), end: next };
    case 58: // :
      return { value: intAt(buf, pos + 1, eol, "integer"), end: next };
    case 36: {
      // $
      const len = intAt(buf, pos + 1, eol, "bulk length");
      if (len === -1) return { value: null, end: next };
      if (len < 0) throw new RespProtocolError(`bulk length ${len}`);
      if (buf.length < next + len + 2) return { need: next + len + 2 };
      if (buf[next + len] !== CR || buf[next + len + 1] !== 10)
        throw new RespProtocolError("bulk string not ended by CRLF");
      return { value: decoder.decode(buf.subarray(next, next + len)), end: next + len + 2 };
    }
    case 42: {
      // *
      const n = intAt(buf, pos + 1, eol, "array length");
      if (n === -1) return { value: null, end: next };
      if (n < 0) throw new RespProtocolError(`array length ${n}`);
      const items: RespValue[] = [];
      let at = next;
      for (let i = 0; i < n; i++) {
        const r = parseAt(buf, at);
        if ("need" in r) return r;
        items.push(r.value);
        at = r.end;
      }
      return { value: items, end: at };
    }
    default:
      throw new RespProtocolError(`unexpected type byte 0x${(type ?? 0).toString(16)}`);
  }
}

/** The integer in `buf[from, end)` (an optional `-`, then digits), read from the bytes: every reply has one or more. */
function intAt(buf: Buffer, from: number, end: number, what: string): number {
  const negative = buf[from] === 45;
  let i = negative ? from + 1 : from;
  // Up to 15 digits stay exact in a double; RESP lengths and counts never come near.
  if (i === end || end - i > 15) throw badInt(buf, from, end, what);
  let n = 0;
  for (; i < end; i++) {
    const d = buf[i]! - 48;
    if (d < 0 || d > 9) throw badInt(buf, from, end, what);
    n = n * 10 + d;
  }
  return negative ? -n : n;
}

function badInt(buf: Buffer, from: number, end: number, what: string): RespProtocolError {
  return new RespProtocolError(`bad ${what} "${buf.toString("latin1", from, Math.min(end, from + 20))}"`);
}
