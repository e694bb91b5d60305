/**
 * The Redis bus connection (OpenSRF main): our inbox `opensrf:client:…` popped with BLPOP on a
 * connection of its own, messages RPUSHed on another, a listener's service queue popped on a
 * third; reconnect with backoff, keeping the same address so replies queued meanwhile are read.
 */

import { randomBytes } from "node:crypto";
import { hostname as osHostname } from "node:os";
import { ConnectError, MessageTooLargeError } from "../bus/errors.ts";
import { MessageInlet } from "../bus/inlet.ts";
import { notifyOffline, ReconnectBackoff } from "../bus/reconnect.ts";
import type { BusAddresses, BusConnection, BusMessage, OutgoingBusMessage } from "../bus/types.ts";
import type { Logger } from "../log/types.ts";
import { clientAddress, deliveryTarget, redisAddresses, serviceQueue } from "./addresses.ts";
import { decodeEnvelope, EnvelopeError, encodeEnvelope } from "./envelope.ts";
import { RedisAddressError, RedisConnectionLostError } from "./errors.ts";
import { RespConnection } from "./resp-client.ts";

/** Everything one process needs to join the Redis bus. */
export interface RedisConnectionOptions {
  /** Host to connect to; OpenSRF connects to `<domain>` itself (our `<server>` overrides). */
  host: string;
  port: number;
  /** `<domain>`: part of every address, and the Redis host of this bus segment. */
  domain: string;
  /** ACL user (`<username>`). */
  username: string;
  /** Never logged. */
  password: string;
  /** `<router_name>`: messages to `opensrf:service:_:_:S` go to `opensrf:router:<router_name>:<domain>`. */
  routerName: string;
  /** Refuse to send, and drop on receipt, messages larger than this many bytes. */
  maxMessageSize: number;
  /** Log a warning for messages sent larger than this (C: msg_size_warn). */
  msgSizeWarn?: number;
  logger: Logger;
  /** Machine name in our address (default: this host's name, as C's gethostname()). */
  hostname?: string;
  /** Keep reconnecting with backoff after the first connect (default true). */
  reconnect?: boolean;
  /** Give up a connect attempt after this many ms (default 10 000). */
  connectTimeoutMs?: number;
  /** Backoff ceiling between reconnect attempts, ms (default 5 000). */
  maxBackoffMs?: number;
  /**
   * Seconds each BLPOP waits before it is issued again (default 5, as C's listener). A reply
   * that has not come `pollSeconds` + 10 s after the command means a dead connection.
   */
  pollSeconds?: number;
  /**
   * Seconds each BLPOP of a service queue ({@link RedisConnection.serveQueue}) or a router's
   * ({@link RedisConnection.readQueue}) waits (default 1,
   * as Perl's listener starts with): a graceful stop waits for the pop in progress, so this
   * bounds how long it takes; an idle listener costs Redis one command a second.
   */
  servePollSeconds?: number;
}

/** How long close() waits for Redis to delete our inbox. */
const CLOSE_TIMEOUT_MS = 3_000;

/** A message accepted by send() while we were offline, written once we are back. */
interface Queued {
  queue: string;
  domain: string;
  json: string;
  to: string;
  xid: string;
}

/** Where a {@link RedisConnection.readQueue} reader hands each element: decoded, and as it was. */
export type QueueSink = (message: BusMessage, raw: string) => void;

/** A BLPOP loop on one key, on a connection of its own. */
class QueueReader {
  active = true;
  /**
   * After {@link active} is cleared, keep popping until a pop issued after {@link stoppedAt}
   * finds the queue empty (a whole poll with nothing), or until this (performance.now() ms).
   */
  drainUntil = 0;
  stoppedAt = 0;
  /** The loop's current turn; a graceful stop waits for it. */
  turn: Promise<void> = Promise.resolve();

  constructor(
    readonly key: string,
    public conn: RespConnection,
    /** The service of a {@link RedisConnection.serveQueue} reader (its messages carry `fromQueue`). */
    readonly service?: string,
    /** A {@link RedisConnection.readQueue} reader's own handler (else the connection's). */
    readonly sink?: QueueSink,
    /** False: messages are handed with body "" (not re-encoded: the router forwards `raw`). */
    readonly withBody = true,
  ) {}

  /** The same reader on another connection (once connected, after a reconnect). */
  on(conn: RespConnection): QueueReader {
    return new QueueReader(this.key, conn, this.service, this.sink, this.withBody);
  }
}

/** One element taken from a queue with {@link RedisConnection.take}. */
export interface TakenMessage {
  message: BusMessage;
  /** The element as it was in the list. */
  raw: string;
}

/**
 * A {@link BusConnection} on Redis lists. Create it with {@link RedisConnection.connect}.
 *
 * Message flow: `send()` RPUSHes one JSON element (see envelope.ts) to the key its `to`
 * names, or for `opensrf:service:_:_:S` to our router's queue; our inbox is popped in a loop
 * and every element decoded and handed to the handler. Elements that are not OpenSRF
 * messages, or are over the size limit, are logged and dropped; nothing else is.
 */
export class RedisConnection implements BusConnection {
  readonly kind = "redis" as const;
  readonly addresses: BusAddresses = redisAddresses;
  readonly address: string;
  readonly domain: string;
  private writer: RespConnection;
  private inbox: QueueReader;
  /** Extra BLPOP loops: serveQueue's by service name, readQueue's by `\0<key>`. */
  private readonly services = new Map<string, QueueReader>();
  /** Send-only connections to other domains' Redis, made on first use. */
  private readonly remotes = new Map<string, Promise<RespConnection>>();
  private readonly inlet: MessageInlet<BusMessage>;
  private readonly onlineHandlers: Array<(reconnected: boolean) => void> = [];
  private readonly offlineHandlers: Array<() => void> = [];
  private backlog: Queued[] = [];
  /** pushRaw() calls waiting for the connection to come back. */
  private onceOnline: Array<() => void> = [];
  private online = true;
  private closing = false;
  private readonly backoff: ReconnectBackoff;
  private readonly poll: number;
  private readonly servePoll: number;

  private constructor(
    private readonly opts: RedisConnectionOptions,
    address: string,
    writer: RespConnection,
    inboxConn: RespConnection,
  ) {
    this.backoff = new ReconnectBackoff(opts.maxBackoffMs);
    this.address = address;
    this.inlet = new MessageInlet(opts.logger, () => this.address);
    this.domain = opts.domain;
    this.poll = opts.pollSeconds ?? 5;
    this.servePoll = opts.servePollSeconds ?? 1;
    this.writer = writer;
    this.inbox = new QueueReader(address, inboxConn);
    this.watch(writer);
    this.startReader(this.inbox);
  }

  /**
   * Connects (writer and inbox reader) and resolves once both are logged in. Fails with a
   * one-line `ConnectError` naming server and account when Redis is unreachable or refuses.
   */
  static async connect(opts: RedisConnectionOptions): Promise<RedisConnection> {
    const random = randomBytes(4).toString("hex");
    const address = clientAddress(opts.username, opts.domain, opts.hostname ?? osHostname(), process.pid, random);
    const [writer, reader] = await Promise.allSettled([connectResp(opts), connectResp(opts)]);
    if (writer.status === "rejected" || reader.status === "rejected") {
      if (writer.status === "fulfilled") writer.value.destroy();
      if (reader.status === "fulfilled") reader.value.destroy();
      const err = writer.status === "rejected" ? writer.reason : (reader as PromiseRejectedResult).reason;
      throw err instanceof ConnectError ? err : new ConnectError(String(err), { address });
    }
    return new RedisConnection(opts, address, writer.value, reader.value);
  }

  /** True while every connection is up. */
  get isOnline(): boolean {
    return this.online;
  }

  onMessage(handler: (message: BusMessage) => void): void {
    this.inlet.set(handler);
  }

  onOnline(handler: (reconnected: boolean) => void): void {
    this.onlineHandlers.push(handler);
  }

  onOffline(handler: () => void): void {
    this.offlineHandlers.push(handler);
  }

  wireText(m: OutgoingBusMessage): string {
    return encodeEnvelope(m, this.address);
  }

  send(m: OutgoingBusMessage): void {
    const target = deliveryTarget(m.to, this.opts.routerName, this.domain);
    if (!target) throw new RedisAddressError(m.to);
    const json = encodeEnvelope(m, this.address);
    // Byte length only matters near the limit; string length is a cheap lower bound.
    if (
      json.length * 3 > this.opts.maxMessageSize ||
      (this.opts.msgSizeWarn && json.length > this.opts.msgSizeWarn / 3)
    ) {
      const bytes = Buffer.byteLength(json);
      if (bytes > this.opts.maxMessageSize) {
        throw new MessageTooLargeError(
          bytes,
          this.opts.maxMessageSize,
          m.to,
          `message to ${m.to} is ${bytes} bytes, over the ${this.opts.maxMessageSize}-byte limit ` +
            "(raise <max_stanza_size> in opensrf_core.xml, or return less data)",
        );
      }
      if (this.opts.msgSizeWarn && bytes > this.opts.msgSizeWarn) {
        this.opts.logger.warn(`sending a large message of ${bytes} bytes to ${m.to}`, m.xid);
      }
    }
    const q: Queued = { queue: target.queue, domain: target.domain, json, to: m.to, xid: m.xid ?? "" };
    if (this.closing) {
      this.opts.logger.error(`dropped a message to ${m.to}: connection ${this.address} is closed`, m.xid);
    } else if (!this.online) {
      this.backlog.push(q);
    } else {
      this.push(q);
    }
  }

  flush(): void {
    this.writer.flush();
  }

  serveQueue(service: string): void {
    this.addReader(
      service,
      new QueueReader(serviceQueue(this.opts.username, this.domain, service), this.writer, service),
    );
  }

  /**
   * Router only: pops `key` (the router's own queue, `opensrf:router:<name>:<domain>`) in a
   * loop of its own, as the inbox is read, and hands each element to `sink` decoded and as
   * it was, so it can be forwarded unchanged. Bad elements are logged and dropped as on the
   * inbox. `withBody: false` leaves `message.body` "" (the router reads bodies rarely).
   */
  readQueue(key: string, sink: QueueSink, opts: { withBody?: boolean } = {}): void {
    this.addReader(`\0${key}`, new QueueReader(key, this.writer, undefined, sink, opts.withBody ?? true));
  }

  /**
   * RPUSHes `raw` unchanged to `queue` (on the Redis of the domain the address names) and
   * resolves with the list's length after the push (the router reads progress from it), or
   * undefined when it may not have been delivered (connection lost after writing; logged).
   * Waits while offline. Rejects with a `TransportError` for an address of no queue, or an
   * error reply.
   */
  async pushRaw(queue: string, raw: string, xid = ""): Promise<number | undefined> {
    const target = deliveryTarget(queue, this.opts.routerName, this.domain);
    if (!target) throw new RedisAddressError(queue);
    for (;;) {
      if (this.closing || (!this.online && this.opts.reconnect === false)) {
        throw new RedisConnectionLostError(
          "RPUSH",
          this.address,
          this.closing ? "connection closed" : "offline",
          false,
        );
      }
      if (!this.online) {
        await this.backOnline();
        continue;
      }
      try {
        const conn = target.domain === this.domain ? this.writer : await this.remote(target.domain);
        const n = await conn.command(["RPUSH", target.queue, raw]);
        return typeof n === "number" ? n : undefined;
      } catch (e) {
        if (!(e instanceof RedisConnectionLostError)) throw e;
        if (e.written) {
          this.opts.logger.warn(`message to ${queue} may not have been delivered: ${e.message}`, xid);
          return undefined;
        }
        // Never left this process: safe to push again once back.
      }
    }
  }

  /**
   * LPOPs one element of `queue` (router fail-over: taking back what a listener left
   * unread). Undefined when the list is empty; an element that is not an OpenSRF message is
   * logged and dropped, and the next one taken. Rejects when offline or on an error reply.
   */
  async take(queue: string): Promise<TakenMessage | undefined> {
    const target = deliveryTarget(queue, this.opts.routerName, this.domain);
    if (!target) throw new RedisAddressError(queue);
    const conn = target.domain === this.domain ? this.writer : await this.remote(target.domain);
    for (;;) {
      const raw = await conn.command(["LPOP", target.queue]);
      if (typeof raw !== "string") return undefined;
      const message = this.decode(queue, raw);
      if (message) return { message, raw };
    }
  }

  private addReader(id: string, wanted: QueueReader): void {
    if (this.services.has(id) || this.closing) return;
    // Its own connection: a BLPOP holds a connection until it returns.
    const placeholder = wanted;
    placeholder.active = false;
    this.services.set(id, placeholder);
    void connectResp(this.opts).then(
      (conn) => {
        if (this.services.get(id) !== placeholder || this.closing) {
          conn.destroy();
          return;
        }
        const reader = placeholder.on(conn);
        this.services.set(id, reader);
        if (this.online) this.startReader(reader);
      },
      (e: Error) => {
        this.opts.logger.error(`cannot read ${placeholder.key}: ${e.message}`);
        if (this.services.get(id) === placeholder) this.services.delete(id);
      },
    );
  }

  /** Resolves at the next (re)connect. */
  private backOnline(): Promise<void> {
    return new Promise((resolve) => this.onceOnline.push(resolve));
  }

  async stopServing(service: string, opts: { untilEmptyMs?: number } = {}): Promise<void> {
    const reader = this.services.get(service);
    if (!reader) return;
    this.services.delete(service);
    reader.stoppedAt = performance.now();
    if (opts.untilEmptyMs) reader.drainUntil = reader.stoppedAt + opts.untilEmptyMs;
    reader.active = false;
    // The BLPOP in progress returns within servePollSeconds; what it took is delivered first.
    await reader.turn;
    reader.conn.destroy();
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.backoff.cancel();
    for (const resume of this.onceOnline.splice(0)) resume();
    await Promise.all([...this.services.keys()].map((s) => this.stopServing(s)));
    this.inbox.active = false;
    // Nobody reads the inbox any more: what is still in it is dropped with it (C and Perl DEL it too).
    this.inbox.conn.destroy();
    if (this.online && this.writer.isOpen) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_TIMEOUT_MS)));
      try {
        await Promise.race([this.writer.command(["DEL", this.address]).then(() => this.writer.close()), bound]);
      } catch {
        // Gone already.
      } finally {
        clearTimeout(timer);
      }
    }
    this.writer.destroy();
    this.online = false;
    for (const r of this.remotes.values())
      void r.then(
        (c) => c.destroy(),
        () => {},
      );
    if (this.backlog.length > 0) {
      this.opts.logger.error(`dropped ${this.backlog.length} message(s) never sent: connection ${this.address} closed`);
      this.backlog = [];
    }
  }

  // ------------------------------------------------------------------------------------------

  private push(q: Queued): void {
    if (q.domain === this.domain) {
      this.writer.command(["RPUSH", q.queue, q.json]).catch((e: Error) => this.sendFailed(q, e));
      return;
    }
    this.remote(q.domain)
      .then((c) => c.command(["RPUSH", q.queue, q.json]))
      .catch((e: Error) => this.sendFailed(q, e));
  }

  private sendFailed(q: Queued, e: Error): void {
    if (e instanceof RedisConnectionLostError && !e.written && !this.closing && q.domain === this.domain) {
      // Never left this process: safe to send once we are back.
      this.backlog.push(q);
      return;
    }
    if (e instanceof RedisConnectionLostError) {
      // It may or may not have reached Redis: never sent again, which could run a request twice.
      this.opts.logger.warn(`message to ${q.to} may not have been delivered: ${e.message}`, q.xid);
    } else {
      this.opts.logger.error(`message to ${q.to} not delivered: ${e.message}`, q.xid);
    }
  }

  /** A send-only connection to `domain`'s Redis (C and Perl assume the same port and account). */
  private remote(domain: string): Promise<RespConnection> {
    let c = this.remotes.get(domain);
    if (!c) {
      c = connectResp({ ...this.opts, host: domain });
      this.remotes.set(domain, c);
      void c.then(
        (conn) => conn.onClose(() => this.remotes.delete(domain)),
        () => this.remotes.delete(domain),
      );
    }
    return c;
  }

  private startReader(r: QueueReader): void {
    r.active = true;
    r.turn = this.readLoop(r);
  }

  private async readLoop(r: QueueReader): Promise<void> {
    const conn = r.conn;
    // Queues other than the inbox are stopped gracefully (waiting for the pop in progress).
    const poll = r === this.inbox ? this.poll : this.servePoll;
    // One watchdog for the loop, pushed back at each command (a timer per BLPOP was measured
    // at 1.5% of a listener's CPU).
    const limitMs = (poll + 10) * 1000;
    const watchdog = setTimeout(() => conn.destroy(`no reply to BLPOP within ${limitMs / 1000} s`), limitMs);
    try {
      while ((r.active || performance.now() < r.drainUntil) && conn.isOpen && !this.closing) {
        let reply: unknown;
        const issued = performance.now();
        watchdog.refresh();
        try {
          reply = await conn.command(["BLPOP", r.key, String(poll)]);
        } catch (e) {
          if (!r.active || this.closing) return;
          if (!(e instanceof RedisConnectionLostError)) {
            // An error reply (e.g. NOPERM on a queue we may not read): retrying at once would spin.
            this.opts.logger.error(`reading ${r.key} failed: ${(e as Error).message}`);
            await Bun.sleep(1000);
            continue;
          }
          this.connectionLost(e.message);
          return;
        }
        if (Array.isArray(reply) && typeof reply[1] === "string") this.deliverRaw(r, reply[1]);
        // Stopping, and a pop issued since found the queue empty for a whole poll.
        else if (!r.active && issued >= r.stoppedAt) return;
      }
    } finally {
      clearTimeout(watchdog);
    }
  }

  private deliverRaw(r: QueueReader, text: string): void {
    const m = this.decode(r.key, text, r.withBody);
    if (!m) return;
    if (r.service !== undefined) m.fromQueue = r.service;
    if (!r.sink) {
      this.inlet.deliver(m);
      return;
    }
    try {
      r.sink(m, text);
    } catch (e) {
      // A handler bug must not stop the loop.
      this.opts.logger.error(`message handler failed on ${this.address}: ${(e as Error).stack ?? e}`, m.xid);
    }
  }

  /** The message in a list element, or undefined (logged) for one over the size limit or not an OpenSRF message. */
  private decode(key: string, text: string, withBody = true): BusMessage | undefined {
    // A UTF-16 unit is at most 3 UTF-8 bytes: most elements need no byte count.
    if (
      text.length * 3 > this.opts.maxMessageSize &&
      (text.length > this.opts.maxMessageSize || Buffer.byteLength(text) > this.opts.maxMessageSize)
    ) {
      this.opts.logger.error(
        `dropped a ${Buffer.byteLength(text)}-byte message from ${key}: over the ${this.opts.maxMessageSize}-byte ` +
          `limit (raise <max_stanza_size> in opensrf_core.xml to accept such messages)${describeStart(text)}`,
      );
      return undefined;
    }
    try {
      return decodeEnvelope(text, withBody);
    } catch (e) {
      if (!(e instanceof EnvelopeError)) throw e;
      // Whoever pushed it is not speaking the bus protocol: say what an element must be.
      this.opts.logger.warn(
        `ignoring a message on ${key}: ${e.reason}; each list element must be one OpenSRF message, ` +
          `a JSON object with "to", "from" and "body"${describeStart(text)}`,
      );
      return undefined;
    }
  }

  private watch(conn: RespConnection): void {
    conn.onClose((reason) => this.connectionLost(reason));
  }

  /** Any of our primary connections broke: drop them all and reconnect (same address). */
  private connectionLost(reason: string): void {
    if (!this.online || this.closing) return;
    this.online = false;
    this.writer.destroy();
    this.inbox.conn.destroy();
    for (const r of this.services.values()) r.conn.destroy();
    notifyOffline(this.offlineHandlers, this.opts.logger, this.address);
    if (this.opts.reconnect === false) {
      this.opts.logger.error(`lost the Redis connection of ${this.address}: ${reason}`);
      return;
    }
    this.opts.logger.warn(
      `lost the Redis connection of ${this.address} (${reason}); reconnecting in ${this.backoff.nextDelayMs} ms`,
    );
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    this.backoff.schedule(() => void this.reconnect());
  }

  private async reconnect(): Promise<void> {
    if (this.closing) return;
    const wanted = [...this.services.values()];
    const results = await Promise.allSettled([
      connectResp(this.opts),
      connectResp(this.opts),
      ...wanted.map(() => connectResp(this.opts)),
    ]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed || this.closing) {
      for (const r of results) if (r.status === "fulfilled") r.value.destroy();
      if (this.closing) return;
      this.opts.logger.warn(
        `reconnect of ${this.address} failed: ${(failed?.reason as Error | undefined)?.message}; retrying in ${this.backoff.nextDelayMs} ms`,
      );
      this.scheduleReconnect();
      return;
    }
    const conns = results.map((r) => (r as PromiseFulfilledResult<RespConnection>).value);
    this.writer = conns[0]!;
    this.watch(this.writer);
    this.inbox = new QueueReader(this.address, conns[1]!);
    wanted.forEach((old, i) => {
      const fresh = old.on(conns[i + 2]!);
      for (const [id, r] of this.services) if (r === old) this.services.set(id, fresh);
    });
    this.online = true;
    this.backoff.reset();
    this.opts.logger.info(`reconnected to Redis as ${this.address}`);
    for (const q of this.backlog.splice(0)) this.push(q);
    for (const resume of this.onceOnline.splice(0)) resume();
    this.startReader(this.inbox);
    for (const r of this.services.values()) if (r.conn !== this.writer) this.startReader(r);
    for (const h of this.onlineHandlers) {
      try {
        h(true);
      } catch (e) {
        this.opts.logger.error(`online handler failed on ${this.address}: ${(e as Error).stack ?? e}`);
      }
    }
  }
}

function connectResp(o: RedisConnectionOptions): Promise<RespConnection> {
  return RespConnection.connect({
    host: o.host,
    port: o.port,
    username: o.username,
    password: o.password,
    connectTimeoutMs: o.connectTimeoutMs ?? 10_000,
  });
}

/** The start of a dropped element, for the log line: enough to recognise it, never much. */
function describeStart(text: string): string {
  // JSON.stringify escapes control characters, so the line stays one line.
  const start = text.slice(0, 80);
  return ` (starts ${JSON.stringify(start)}${text.length > 80 ? "…" : ""})`;
}
