/**
 * One TCP connection to Redis speaking RESP2: logged in with `AUTH <username> <password>` (the
 * ACL form, as C and Perl do), commands pipelined in order, writes of one event-loop turn sent
 * in one syscall, replies matched first-in first-out.
 */
import type { Socket } from "bun";
import { ConnectError } from "../bus/errors.ts";
import { RedisCommandError, RedisConnectionLostError } from "./errors.ts";
import { encodeCommand, RespErrorReply, RespReader, type RespValue } from "./resp.ts";

/** Where and as whom to connect. */
export interface RespConnectOptions {
  host: string;
  port: number;
  username: string;
  /** Never logged, never in an error message. */
  password: string;
  /** Give up connecting and logging in after this many ms (default 10 000). */
  connectTimeoutMs?: number;
}

interface Waiting {
  command: string;
  resolve(v: RespValue): void;
  reject(e: Error): void;
}

/**
 * What is left of `data` once a socket took `written` bytes of it, or undefined when it took
 * everything. The count is in UTF-8 bytes, `data.length` in UTF-16 units: with non-ASCII text
 * a partial write can report more than `data.length` and still leave bytes behind.
 */
export function unwrittenTail(data: string, written: number): Buffer | undefined {
  const n = Math.max(written, 0);
  // ASCII (the common case): nothing to convert when all of it went.
  if (n >= data.length && Buffer.byteLength(data) <= n) return undefined;
  const bytes = Buffer.from(data);
  return n < bytes.length ? bytes.subarray(n) : undefined;
}

/** A logged-in Redis connection. Create it with {@link RespConnection.connect}. */
export class RespConnection {
  private socket: Socket<undefined> | undefined;
  private readonly reader = new RespReader();
  private readonly waiting: Waiting[] = [];
  /** Commands of this turn of the event loop, not yet handed to the socket. */
  private pending: string[] = [];
  /** What the socket did not take yet (backpressure), written on drain. */
  private unsent: Buffer | undefined;
  private closedWith: string | undefined;
  private closeHandlers: Array<(reason: string) => void> = [];
  /** `user@host:port`, for messages. */
  readonly where: string;

  private constructor(readonly opts: RespConnectOptions) {
    this.where = `${opts.username}@${opts.host}:${opts.port}`;
  }

  /**
   * Connects and logs in. Fails with a one-line `ConnectError` naming the server and account
   * (never the password) when Redis is unreachable, does not answer, or refuses the login.
   */
  static async connect(opts: RespConnectOptions): Promise<RespConnection> {
    const c = new RespConnection(opts);
    const timeoutMs = opts.connectTimeoutMs ?? 10_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        c.destroy("connect timed out");
        reject(new ConnectError(`Redis at ${opts.host}:${opts.port} did not answer within ${timeoutMs} ms`, {}));
      }, timeoutMs);
    });
    try {
      await Promise.race([c.open(), timeout]);
      const auth = await Promise.race([c.commandRaw(["AUTH", opts.username, opts.password], "AUTH"), timeout]);
      if (auth instanceof RespErrorReply) {
        c.destroy("login refused");
        throw new ConnectError(describeAuthFailure(c.where, auth), { address: c.where });
      }
      return c;
    } catch (e) {
      c.destroy("connect failed");
      if (e instanceof ConnectError) throw e;
      throw new ConnectError(describeConnectFailure(opts, e as Error), { address: c.where });
    } finally {
      clearTimeout(timer);
    }
  }

  /** False once closed or lost. */
  get isOpen(): boolean {
    return this.closedWith === undefined;
  }

  /** Called once when the connection closes for any reason but {@link close}/{@link destroy}. */
  onClose(handler: (reason: string) => void): void {
    this.closeHandlers.push(handler);
  }

  /**
   * Sends one command; resolves with its reply. Rejects with `RedisCommandError` for an
   * error reply and `RedisConnectionLostError` when the connection ends first.
   */
  async command(args: readonly string[]): Promise<RespValue> {
    const name = args[0] ?? "";
    const reply = await this.commandRaw(args, name);
    if (reply instanceof RespErrorReply) throw new RedisCommandError(name, reply.message, this.where);
    return reply;
  }

  /** Hands queued commands to the socket now. */
  flush(): void {
    this.flushWrites();
  }

  /** Ends the connection at once; waiting commands fail with `RedisConnectionLostError`. */
  destroy(reason = "closed"): void {
    if (this.closedWith !== undefined) return;
    this.closedWith = reason;
    this.socket?.terminate();
    this.failWaiting(reason);
  }

  /** Sends QUIT after what is queued and closes; waiting commands still get their replies first. */
  async close(): Promise<void> {
    if (this.closedWith !== undefined) return;
    try {
      await this.commandRaw(["QUIT"], "QUIT");
    } catch {
      // Already gone.
    }
    this.destroy("closed");
  }

  private open(): Promise<void> {
    return new Promise((resolve, reject) => {
      Bun.connect<undefined>({
        hostname: this.opts.host,
        port: this.opts.port,
        socket: {
          open: (s) => {
            this.socket = s;
            resolve();
          },
          data: (_s, chunk) => this.onData(chunk),
          drain: () => this.onDrain(),
          close: () => this.lost("closed by the server"),
          error: (_s, err) => this.lost(err.message),
          connectError: (_s, err) => reject(err),
        },
      }).catch(reject);
    });
  }

  private commandRaw(args: readonly string[], name: string): Promise<RespValue> {
    if (this.closedWith !== undefined) {
      return Promise.reject(new RedisConnectionLostError(name, this.where, this.closedWith));
    }
    const { promise, resolve, reject } = Promise.withResolvers<RespValue>();
    this.waiting.push({ command: name, resolve, reject });
    if (this.pending.push(encodeCommand(args)) === 1) queueMicrotask(this.flushWrites);
    return promise;
  }

  private readonly flushWrites = (): void => {
    if (this.pending.length === 0 || !this.socket || this.closedWith !== undefined) return;
    const data = this.pending.length === 1 ? this.pending[0]! : this.pending.join("");
    this.pending = [];
    if (this.unsent) {
      this.unsent = Buffer.concat([this.unsent, Buffer.from(data)]);
      return;
    }
    // Strings go straight to the socket (no Buffer on the common path); the rest of a
    // partial write is kept as bytes, since the count returned is in bytes.
    this.unsent = unwrittenTail(data, this.socket.write(data));
  };

  private onDrain(): void {
    const rest = this.unsent;
    if (!rest || !this.socket) return;
    this.unsent = undefined;
    const n = this.socket.write(rest);
    if (n < rest.length) this.unsent = rest.subarray(Math.max(n, 0));
  }

  private onData(chunk: Uint8Array): void {
    let replies: RespValue[];
    try {
      replies = this.reader.push(chunk);
    } catch (e) {
      this.lost((e as Error).message);
      return;
    }
    for (const r of replies) {
      const w = this.waiting.shift();
      if (!w) {
        this.lost("a reply nobody asked for");
        return;
      }
      w.resolve(r);
    }
  }

  private lost(reason: string): void {
    if (this.closedWith !== undefined) return;
    this.closedWith = reason;
    this.socket?.terminate();
    this.failWaiting(reason);
    for (const h of this.closeHandlers) h(reason);
  }

  private failWaiting(reason: string): void {
    // The last `pending.length` commands were never handed to the socket.
    const firstUnwritten = this.waiting.length - this.pending.length;
    this.pending = [];
    this.waiting.splice(0).forEach((w, i) => {
      w.reject(new RedisConnectionLostError(w.command, this.where, reason, i < firstUnwritten));
    });
  }
}

function describeAuthFailure(where: string, reply: RespErrorReply): string {
  if (reply.code === "WRONGPASS") {
    return `Redis login refused for ${where}: wrong username or password (check <username>/<passwd>)`;
  }
  return `Redis login for ${where} failed: ${reply.message}`;
}

function describeConnectFailure(opts: RespConnectOptions, e: Error & { code?: string }): string {
  const at = `${opts.host}:${opts.port}`;
  if (e.code === "ECONNREFUSED" || /refused/i.test(e.message)) {
    return `cannot reach Redis at ${at}: connection refused (is it running? check <domain>/<port>)`;
  }
  if (e instanceof RedisConnectionLostError) return `Redis at ${at} closed the connection during login (${e.message})`;
  return `cannot connect to Redis at ${at}: ${e.code ?? e.message}`;
}
