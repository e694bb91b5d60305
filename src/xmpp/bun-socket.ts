/**
 * The TCP socket @xmpp/client writes to and reads from, on Bun's own sockets (`Bun.connect`)
 * instead of `node:net`.
 *
 * Every stanza passes through it, in every role, so its cost per read and write counts many
 * times per call. `node:net` runs each chunk through Node's stream machinery in JavaScript
 * (`Readable` push, `Writable` buffering, a `Buffer` per write); measured on this project's
 * machine, a 700-byte round trip cost its writer 12.7 µs of CPU on `node:net` against 6.7 µs
 * on `Bun.connect`. This class offers the part of `net.Socket` that @xmpp/connection 0.14 uses:
 * `connect({ host, port })`, `write(data, callback)`, `end()`, `destroy()`, `secure`, and the
 * `connect`, `data`, `error` and `close` events.
 *
 * It is plain TCP: @xmpp/starttls only upgrades a `net.Socket`, so STARTTLS is never
 * negotiated on it — as with OpenSRF's C and Perl clients, which never do TLS either. A
 * server that requires TLS refuses the login.
 */
import { lookup } from "node:dns";
import { EventEmitter } from "node:events";
import { isIP } from "node:net";
import type { Socket } from "bun";

/** Where to connect: what @xmpp/connection-tcp's `socketParameters` gives. */
export interface TcpParams {
  host: string;
  port: number;
}

/** One TCP connection with the `net.Socket` surface @xmpp/connection uses. */
export class BunTcpSocket extends EventEmitter {
  /** Never TLS (see the file comment). */
  readonly secure = false;
  private socket: Socket<undefined> | undefined;
  /** Bytes the kernel did not take yet; written on `drain`, before anything newer. */
  private unsent: Buffer | undefined;
  /** Write callbacks waiting for {@link unsent} to reach the kernel. */
  private waiting: Array<(err?: Error | null) => void> = [];
  private closed = false;
  private failed = false;
  /** end() came while bytes were waiting: end once they are out. */
  private endAfterDrain = false;

  /** Starts connecting; `connect` or `error` (then `close`) follows. */
  connect(params: TcpParams): this {
    // Names are resolved as net.Socket resolves them (dns.lookup: getaddrinfo, so
    // /etc/hosts and a network namespace's own hosts file count; Bun.connect's resolver
    // answers `*.localhost` with loopback whatever they say).
    if (isIP(params.host) !== 0) this.open(params.host, params.port);
    else {
      lookup(params.host, (err, address) => {
        if (err) {
          this.fail(err);
          this.onClose();
        } else if (!this.closed) this.open(address, params.port);
      });
    }
    return this;
  }

  private open(address: string, port: number): void {
    Bun.connect<undefined>({
      hostname: address,
      port,
      socket: {
        open: (s) => {
          if (this.closed) {
            s.terminate();
            return;
          }
          this.socket = s;
          // As libopensrf's socket_bundle.c does: a stanza goes out when written.
          s.setNoDelay(true);
          this.emit("connect");
        },
        data: (_s, chunk) => void this.emit("data", chunk),
        drain: () => this.onDrain(),
        // The server closed its side: nothing more will come, so close ours as net.Socket
        // (allowHalfOpen false) does.
        end: (s) => void s.end(),
        close: () => this.onClose(),
        error: (_s, err) => this.fail(err),
        connectError: (_s, err) => {
          this.fail(err);
          this.onClose();
        },
      },
    }).catch((err: Error) => {
      this.fail(err);
      this.onClose();
    });
  }

  /**
   * Queues `data` for the socket. `callback` runs once the kernel has taken all of it, or
   * with an error if the connection is gone first. Returns false while bytes wait for room.
   */
  write(data: string | Uint8Array, callback?: (err?: Error | null) => void): boolean {
    const s = this.socket;
    if (this.closed || s === undefined) {
      const err = new Error("This socket is closed");
      if (callback) queueMicrotask(() => callback(err));
      return false;
    }
    if (this.unsent !== undefined) {
      this.unsent = Buffer.concat([this.unsent, typeof data === "string" ? Buffer.from(data) : data]);
      if (callback) this.waiting.push(callback);
      return false;
    }
    // Strings go to the socket as they are (no Buffer on the common path); what a partial
    // write leaves is kept as bytes, because the count returned is in bytes.
    const written = s.write(data);
    const total = typeof data === "string" ? Buffer.byteLength(data) : data.byteLength;
    if (written >= total) {
      if (callback) queueMicrotask(() => callback(null));
      return true;
    }
    const bytes = typeof data === "string" ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, total);
    this.unsent = bytes.subarray(Math.max(written, 0));
    if (callback) this.waiting.push(callback);
    return false;
  }

  /** Closes after what is queued has been written. */
  end(): this {
    if (this.closed) return this;
    if (this.socket === undefined) this.destroy();
    else if (this.unsent === undefined) this.socket.end();
    // else: onDrain ends it once the rest is out.
    else this.endAfterDrain = true;
    return this;
  }

  /** Closes now; what is queued is dropped. */
  destroy(): this {
    if (this.socket) this.socket.terminate();
    else this.onClose();
    return this;
  }

  private onDrain(): void {
    const s = this.socket;
    const rest = this.unsent;
    if (s === undefined || rest === undefined) return;
    const written = s.write(rest);
    if (written < rest.length) {
      this.unsent = rest.subarray(Math.max(written, 0));
      return;
    }
    this.unsent = undefined;
    for (const cb of this.waiting.splice(0)) cb(null);
    if (this.endAfterDrain) s.end();
  }

  private fail(err: Error & { code?: string }): void {
    if (this.failed) return;
    this.failed = true;
    // net.Socket's code, which callers match on (a refused connection names its cause).
    if (err.code === undefined && /refused/i.test(err.message)) err.code = "ECONNREFUSED";
    // EventEmitter throws an "error" nobody listens to: that would be inside Bun's handler.
    if (this.listenerCount("error") > 0) this.emit("error", err);
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket = undefined;
    this.unsent = undefined;
    const err = new Error("This socket is closed");
    for (const cb of this.waiting.splice(0)) cb(err);
    this.emit("close", this.failed);
  }
}
