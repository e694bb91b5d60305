/**
 * The XMPP connection every role uses: @xmpp/client logged in over TCP, with our stream parser,
 * batched pre-serialized writes, no stream management, and our own reconnect with backoff.
 */

import { StringDecoder } from "node:string_decoder";
import { client, type XmppClient, xml } from "@xmpp/client";
import type { XmlElement } from "@xmpp/xml";
import { MessageInlet } from "../bus/inlet.ts";
import { notifyOffline, ReconnectBackoff } from "../bus/reconnect.ts";
import type { BusAddresses, BusConnection } from "../bus/types.ts";
import type { Logger } from "../log/types.ts";
import { xmppAddresses } from "./addresses.ts";
import { ConnectError, StanzaTooLargeError } from "./errors.ts";
import { type ProbeAnswer, REGISTRATION_PROBE_NS } from "./probe.ts";
import { writeToSocket } from "./socket-write.ts";
import { decodeStanza, encodeOutgoing, StanzaReader } from "./stanza.ts";
import { StreamParser, useStreamParser } from "./stream-parser.ts";
import type { OutgoingStanza, Stanza } from "./types.ts";

/** Everything needed to log in one OpenSRF process to its XMPP server. */
export interface ConnectionOptions {
  /** Address to connect to (loopback in tests), e.g. 127.0.0.1. */
  host: string;
  port: number;
  /** XMPP domain (the part after @). */
  domain: string;
  username: string;
  /** Never logged. */
  password: string;
  resource: string;
  /** Refuse to send stanzas larger than this many bytes. */
  maxStanzaSize: number;
  /** Log a warning for stanzas larger than this (C: msg_size_warn). */
  msgSizeWarn?: number;
  logger: Logger;
  /** Keep reconnecting with backoff after the first login (default true). */
  reconnect?: boolean;
  /** Give up the first login after this many ms (default 10 000). */
  connectTimeoutMs?: number;
  /** Backoff ceiling between reconnect attempts, ms (default 5 000). */
  maxBackoffMs?: number;
  /**
   * Deliver messages with their body undecoded (`xmlBody`; `body` decodes on first read):
   * for the listener, which hands bodies to drones unread (default false).
   */
  lazyBodies?: boolean;
}

/** How long close() waits for the server to acknowledge the end of the stream. */
const CLOSE_TIMEOUT_MS = 3_000;

/**
 * An OpenSRF XMPP connection on @xmpp/client.
 *
 * Stanzas are written as pre-serialized strings (no element tree on the send path) and
 * read from the client's parsed elements. Stream management is not negotiated: with it,
 * a dead peer's session lingers on the server and messages to it queue up instead of
 * bouncing, which is what OpenSRF's routers and clients rely on to notice dead peers.
 */
export class XmppConnection implements BusConnection {
  readonly kind = "xmpp" as const;
  readonly addresses: BusAddresses = xmppAddresses;
  readonly domain: string;
  private xmpp: XmppClient;
  private fullJid: string;
  private readonly inlet: MessageInlet<Stanza>;
  private onlineHandlers: Array<(reconnected: boolean) => void> = [];
  private offlineHandlers: Array<() => void> = [];
  private backlog: string[] = [];
  /** Written this turn of the event loop, not yet handed to the socket. */
  private pending: string[] = [];
  private online = false;
  /** What {@link answerProbes} was given: every new client answers probes with it. */
  private probeAnswers: ((from: string, service: string) => boolean) | undefined;
  private everOnline = false;
  private closing = false;
  /** From a lost connection until back online: the one reconnect loop owns the client. */
  private reconnecting = false;
  private readonly backoff: ReconnectBackoff;

  private constructor(private readonly opts: ConnectionOptions) {
    this.backoff = new ReconnectBackoff(opts.maxBackoffMs);
    this.domain = opts.domain;
    this.fullJid = `${opts.username}@${opts.domain}/${opts.resource}`;
    this.inlet = new MessageInlet(opts.logger, () => this.fullJid);
    this.xmpp = this.makeClient();
  }

  /**
   * One @xmpp/client client, for one stream: the first login, and a new one for each
   * reconnect attempt. @xmpp/connection 0.14 answers a stream error with a `disconnect()` it
   * does not wait for, which waits `timeout` ms for the dead stream's end and then detaches
   * the parser and ends the socket the client holds *by then* — a reconnected stream's
   * (measured: every connection dropped again 10 s after an ejabberd restart, and what
   * arrived meanwhile was read by no parser). A client of its own per stream leaves such
   * leftovers nothing but their own dead stream; events from a client that is no longer
   * {@link xmpp} are ignored.
   */
  private makeClient(): XmppClient {
    const opts = this.opts;
    const x = client({
      service: `xmpp://${opts.host}:${opts.port}`,
      domain: opts.domain,
      resource: opts.resource,
      credentials: (auth, mechanisms) =>
        auth(
          { username: opts.username, password: opts.password },
          // PLAIN on loopback is what OpenSRF sites do (legacy auth is plain or digest);
          // SCRAM costs a few hundred ms per login and drones log in often.
          mechanisms.includes("PLAIN") ? "PLAIN" : (mechanisms[0] ?? "PLAIN"),
        ),
    });
    const current = (): boolean => x === this.xmpp;
    x.timeout = opts.connectTimeoutMs ?? 10_000;
    // Our tokenizer, not ltx's (quadratic in the length of a text run: a 1 MB body took
    // ~35 s). Messages are read straight into Stanzas: no element tree, no trip through
    // @xmpp/client's middleware (which parses both JIDs of every stanza).
    const deliver = (stanza: Stanza): void => {
      if (current()) this.deliver(stanza);
    };
    const readerOptions = { lazyBody: opts.lazyBodies === true };
    class ConnectionParser extends StreamParser {
      constructor() {
        super({ childReader: (name) => (name === "message" ? new StanzaReader(deliver, readerOptions) : undefined) });
      }
    }
    useStreamParser(x, ConnectionParser);
    decodeUtf8AcrossChunks(x);
    disableStreamManagement(x);
    x.reconnect.stop(); // we reconnect ourselves, with backoff
    x.on("stanza", (el) => {
      if (current()) this.onElement(el);
    });
    // Kept on every client, current or not: an "error" with no listener would throw.
    x.on("error", (err) => {
      // Socket errors precede a disconnect; the reconnect path reports those.
      if (current() && !this.closing) opts.logger.debug(`xmpp ${this.fullJid}: ${err.message}`);
    });
    x.on("disconnect", () => {
      if (current()) this.onDisconnect();
    });
    x.on("online", (jid) => {
      if (!current()) {
        // A login given up on (timed out) that finished after all: it must not hold our resource.
        abandon(x);
        return;
      }
      this.fullJid = jid.toString();
      const reconnected = this.everOnline;
      this.online = true;
      this.everOnline = true;
      this.reconnecting = false;
      this.backoff.reset();
      for (const s of this.backlog.splice(0)) this.write(s);
      for (const h of this.onlineHandlers) h(reconnected);
    });
    if (this.probeAnswers) answerProbesOn(x, this.probeAnswers);
    return x;
  }

  /**
   * Log in and resolve once online. Fails with a one-line `ConnectError` naming the
   * server and account when the server is unreachable or refuses the login.
   */
  static async connect(opts: ConnectionOptions): Promise<XmppConnection> {
    const conn = new XmppConnection(opts);
    try {
      await conn.xmpp.start();
    } catch (e) {
      conn.closing = true; // no reconnect loop for a connection that never came up
      await conn.xmpp.stop().catch(() => {});
      throw new ConnectError(describeConnectFailure(opts, e as Error), {
        jid: `${opts.username}@${opts.domain}/${opts.resource}`,
      });
    }
    return conn;
  }

  get jid(): string {
    return this.fullJid;
  }

  /** Our full JID (the {@link BusConnection} name for {@link jid}). */
  get address(): string {
    return this.fullJid;
  }

  /** True while the stream is up. */
  get isOnline(): boolean {
    return this.online;
  }

  onStanza(handler: (stanza: Stanza) => void): void {
    this.inlet.set(handler);
  }

  onMessage(handler: (message: Stanza) => void): void {
    this.inlet.set(handler);
  }

  wireText(out: OutgoingStanza): string {
    return encodeOutgoing(out, this.fullJid);
  }

  onOnline(handler: (reconnected: boolean) => void): void {
    this.onlineHandlers.push(handler);
  }

  onOffline(handler: () => void): void {
    this.offlineHandlers.push(handler);
  }

  send(out: OutgoingStanza): void {
    const xml = encodeOutgoing(out, this.fullJid);
    // Byte length only matters near the limit; string length is a cheap lower bound.
    if (xml.length * 3 > this.opts.maxStanzaSize || (this.opts.msgSizeWarn && xml.length > this.opts.msgSizeWarn / 3)) {
      const bytes = Buffer.byteLength(xml);
      if (bytes > this.opts.maxStanzaSize) throw new StanzaTooLargeError(bytes, this.opts.maxStanzaSize, out.to);
      if (this.opts.msgSizeWarn && bytes > this.opts.msgSizeWarn) {
        this.opts.logger.warn(`sending a large message of ${bytes} bytes to ${out.to}`, out.xid);
      }
    }
    if (this.online) this.write(xml);
    else if (!this.closing) this.backlog.push(xml);
    else this.opts.logger.error(`dropped a message to ${out.to}: connection ${this.fullJid} is closed`, out.xid);
  }

  /** One registration probe (probe.ts): an iq get, matched with its answer by id. */
  async probe(to: string, service: string, timeoutMs: number): Promise<ProbeAnswer> {
    if (!this.online) return { kind: "no-answer" };
    const iq = xml("iq", { type: "get", to }, xml("query", { xmlns: REGISTRATION_PROBE_NS, class: service }));
    try {
      const reply = await this.xmpp.iqCaller.request(iq, timeoutMs);
      const query = reply.getChild("query", REGISTRATION_PROBE_NS);
      return { kind: query?.attrs.registered === "true" ? "registered" : "not-registered" };
    } catch (e) {
      const err = e as Error & { condition?: string };
      // A StanzaError carries the condition of the <error> that came back; anything else
      // (timeout, a socket that closed meanwhile) told us nothing.
      if (err.name === "StanzaError") return { kind: "unavailable", condition: err.condition ?? "undefined-condition" };
      return { kind: "no-answer" };
    }
  }

  answerProbes(isNode: (from: string, service: string) => boolean): void {
    this.probeAnswers = isNode;
    answerProbesOn(this.xmpp, isNode);
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.flush();
    this.closing = true;
    this.online = false;
    this.backoff.cancel();
    // A dead or hung server never answers our closing tag: don't let shutdown wait on it.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_TIMEOUT_MS)));
    try {
      await Promise.race([this.xmpp.stop(), bound]);
    } catch {
      // Already gone: nothing left to close.
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Hands everything sent so far to the socket now. A drone calls it before telling its
   * listener it is done: once in the kernel, a reply is delivered even if the drone is
   * killed the next moment.
   */
  flush(): void {
    if (this.pending.length > 0) this.flushWrites();
  }

  /**
   * Queues a stanza for the socket. Everything sent while handling one event (a router
   * forwarding a burst, a drone's replies) goes out in one write at the end of it: one
   * syscall, and one read for the server, instead of one per stanza.
   */
  private write(xml: string): void {
    if (this.pending.push(xml) === 1) queueMicrotask(this.flushWrites);
  }

  private readonly flushWrites = (): void => {
    if (this.pending.length === 0) return;
    const data = this.pending.length === 1 ? this.pending[0]! : this.pending.join("");
    this.pending = [];
    const socket = this.xmpp.socket;
    if (!socket) {
      this.backlog.push(data);
      return;
    }
    writeToSocket(socket, data);
  };

  /** A message that reached us as an element (the parser normally reads them directly). */
  private onElement(el: XmlElement): void {
    if (el.name !== "message") return;
    let stanza: Stanza;
    try {
      stanza = decodeStanza(el);
    } catch (e) {
      this.opts.logger.warn(`ignoring malformed message on ${this.fullJid}: ${(e as Error).message}`);
      return;
    }
    this.deliver(stanza);
  }

  private deliver(stanza: Stanza): void {
    this.inlet.deliver(stanza);
  }

  private onDisconnect(): void {
    const wasOnline = this.online;
    this.online = false;
    if (wasOnline && !this.closing) {
      notifyOffline(this.offlineHandlers, this.opts.logger, this.fullJid);
    }
    // While reconnecting, the loop's own stop() and failed attempts also end in "disconnect":
    // those must not start more loops (each would start more, and race on the socket).
    if (this.closing || this.opts.reconnect === false || !this.everOnline || this.reconnecting) return;
    this.reconnecting = true;
    this.opts.logger.warn(`lost XMPP connection ${this.fullJid}; reconnecting in ${this.backoff.nextDelayMs} ms`);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    this.backoff.schedule(() => void this.reconnect());
  }

  private async reconnect(): Promise<void> {
    if (this.closing) return;
    // A new client for this attempt (see makeClient); the last stream's, or a failed
    // attempt's, is done with — current no more before it is told to stop.
    const old = this.xmpp;
    const x = this.makeClient();
    this.xmpp = x;
    abandon(old);
    try {
      // start() can wait forever for "online" if the socket closes mid-login without an error.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(Object.assign(new Error("timed out"), { name: "TimeoutError" })), x.timeout);
      });
      try {
        await Promise.race([x.start(), timeout]);
      } finally {
        clearTimeout(timer);
      }
      this.opts.logger.info(`reconnected to XMPP as ${this.fullJid}`);
    } catch (e) {
      if (this.closing) return;
      this.opts.logger.warn(
        `reconnect of ${this.fullJid} failed: ${describeConnectFailure(this.opts, e as Error)}; retrying in ${this.backoff.nextDelayMs} ms`,
      );
      this.scheduleReconnect();
    }
  }
}

/**
 * Done with a client: its socket destroyed (a login in progress can then never finish and
 * take our resource), its stream stopped in the background. What it does after this only
 * touches its own dead stream, and the connection ignores its events.
 */
function abandon(x: XmppClient): void {
  x.socket?.destroy();
  void x.stop().catch(() => {});
}

/** Answers registration probes (probe.ts) on one client with `isNode`. */
function answerProbesOn(x: XmppClient, isNode: (from: string, service: string) => boolean): void {
  x.iqCallee.get(REGISTRATION_PROBE_NS, "query", (ctx) => {
    const from = ctx.stanza.attrs.from ?? "";
    const service = ctx.element?.attrs.class ?? "";
    const registered = from !== "" && isNode(from, service);
    return xml("query", { xmlns: REGISTRATION_PROBE_NS, class: service, registered: String(registered) });
  });
}

/**
 * @xmpp/connection decodes each socket chunk on its own (`data.toString("utf8")`), so a
 * multi-byte character split between two chunks became U+FFFD garbage in large stanzas.
 * Decode with one StringDecoder per socket instead.
 */
function decodeUtf8AcrossChunks(xmpp: XmppClient): void {
  const x = xmpp as unknown as {
    _onData(data: Buffer): void;
    socket: unknown;
    parser: { write(s: string): void } | null;
  };
  let socket: unknown;
  let decoder = new StringDecoder("utf8");
  x._onData = (data: Buffer) => {
    if (x.socket !== socket) {
      socket = x.socket;
      decoder = new StringDecoder("utf8");
    }
    const text = typeof data === "string" ? data : decoder.write(data);
    if (text) x.parser?.write(text);
  };
}

/** Hide `<sm/>` from stream features so the client never enables XEP-0198. */
function disableStreamManagement(xmpp: XmppClient): void {
  const x = xmpp as unknown as { _onElement(el: XmlElement): void };
  const original = x._onElement.bind(xmpp);
  x._onElement = (el: XmlElement) => {
    if (el.name === "stream:features") {
      el.children = el.children.filter((c) => typeof c === "string" || c.name !== "sm");
    }
    original(el);
  };
}

function describeConnectFailure(opts: ConnectionOptions, e: Error & { condition?: string; code?: string }): string {
  const who = `${opts.username}@${opts.domain} at ${opts.host}:${opts.port}`;
  if (e.code === "ECONNREFUSED")
    return `cannot reach the XMPP server for ${who}: connection refused (is it running? check <server>/<port>)`;
  if (e.condition === "not-authorized")
    return `XMPP login refused for ${who}: wrong username or password (check <username>/<passwd>)`;
  if (e.name === "TimeoutError") return `XMPP login for ${who} timed out (server not answering)`;
  return `XMPP login for ${who} failed: ${e.condition ?? e.message}`;
}
