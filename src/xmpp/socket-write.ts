/**
 * Writing a connection's batched stanzas to its socket.
 *
 * Bun's `net.Socket.write` runs node's Writable machinery in JavaScript (writeOrBuffer,
 * `_write`, the write callback) before the native write; a new drone interprets all of it
 * for every reply until its JIT tiers are warm (measured: ~7 µs per write warm, ~10 µs
 * interpreted, of a drone's ~100–180 µs per request). When the stream holds nothing, the
 * native socket under it (`_handle.write`, which returns the bytes the kernel took) is
 * written directly; whatever it did not take, and every write while the stream still holds
 * data, goes through the stream, which keeps the order and waits for `drain`.
 */

/** What is used of a node:net Socket (the one @xmpp/client holds). */
export interface StreamSocket {
  write(data: string | Uint8Array): boolean;
  readonly writableLength?: number;
  readonly connecting?: boolean;
  readonly destroyed?: boolean;
  readonly writableEnded?: boolean;
}

/** The part of Bun's native socket (node:net's `_handle`) used here. */
interface NativeSocket {
  /** Bytes written (possibly fewer than given), or a negative number on error. */
  write(data: string): number;
}

function nativeOf(socket: StreamSocket): NativeSocket | undefined {
  const s = socket as StreamSocket & { _handle?: unknown; encrypted?: boolean };
  // TLS (a server that forced STARTTLS) and a socket still connecting, ended or closed take
  // the stream's way (which reports a write after the end as it always did), as does any
  // runtime whose socket has no such handle.
  if (s.encrypted || s.connecting || s.destroyed || s.writableEnded || s.writableLength !== 0) return undefined;
  const h = s._handle as NativeSocket | null | undefined;
  return h && typeof h.write === "function" ? h : undefined;
}

/**
 * Writes `data` to `socket`, in order with everything written before; never throws for a
 * closed socket (the stream reports that as it always does).
 */
export function writeToSocket(socket: StreamSocket, data: string): void {
  const native = nativeOf(socket);
  if (native === undefined) {
    socket.write(data);
    return;
  }
  const written = native.write(data);
  if (written < 0) {
    socket.write(data); // the stream raises the error and the close
    return;
  }
  if (written === Buffer.byteLength(data)) return;
  // The kernel took part of it: the rest goes through the stream, which waits for `drain`
  // (and makes every later write wait behind it, as writableLength is no longer 0).
  socket.write(Buffer.from(data).subarray(written));
}
