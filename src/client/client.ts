/**
 * The OpenSRF client: stateless requests and CONNECT sessions over one bus connection (XMPP or
 * Redis, it cannot tell), replies matched by thread and threadTrace, partial (chunked) results
 * reassembled, per-reply timeouts.
 */
import type { BusConnection, BusMessage } from "../bus/types.ts";
import { type Clock, realClock } from "../clock/clock.ts";
import type { Logger } from "../log/types.ts";
import { PartialAssembler } from "../protocol/chunking.ts";
import { decodeBody, encodeBody } from "../protocol/codec.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { makeThread, makeXid } from "../protocol/ids.ts";
import { StatusCode } from "../protocol/status.ts";
import type { JsonValue, MessageHeader, OsrfMessage, StatusMessage } from "../protocol/types.ts";
import { DeliveryError, type RequestContext, RequestError, TimeoutError } from "./errors.ts";
import { ResultStream } from "./pending.ts";
import type { ClientSession, OsrfClient, PendingRequest, RequestOptions } from "./types.ts";

/** What a {@link Client} is built from. */
export interface ClientOptions {
  /** The bus connection requests go out on and replies come in on. */
  transport: BusConnection;
  /** Router account name, e.g. "router". */
  routerName: string;
  /** Domain of the router to address; defaults to the transport's domain. */
  routerDomain?: string;
  logger: Logger;
  /** Default per-reply timeout in seconds (60). */
  timeout?: number;
  locale?: string;
  ingress?: string;
  /**
   * Install the client as the connection's only message handler. Leave false when the
   * connection is shared (a drone): its owner then passes messages to `dispatch()`.
   */
  ownTransport?: boolean;
  /** Timers for the per-reply timeout (real ones by default; unit tests pass a manual clock). */
  clock?: Clock;
}

interface Call {
  trace: number;
  method: string;
  params: JsonValue[];
  opts: RequestOptions;
  stream: ResultStream;
  assembler: PartialAssembler;
  timer: unknown;
  ctx: RequestContext;
  /** CONNECT calls resolve the session instead of streaming results. */
  onConnected?: (drone: string) => void;
}

/** One thread: a stateless request or a stateful session. */
class Conversation {
  readonly thread = makeThread();
  remote: string;
  nextTrace = 0;
  connected = false;
  /** Sessions keep their thread registered until disconnect. */
  stateful = false;
  calls = new Map<number, Call>();

  constructor(
    readonly client: Client,
    readonly service: string,
    readonly routerJid: string,
  ) {
    this.remote = routerJid;
  }
}

/**
 * The OpenSRF client: stateless requests and stateful sessions over one transport.
 * Replies are matched by thread, then by threadTrace.
 */
export class Client implements OsrfClient {
  private conversations = new Map<string, Conversation>();
  private readonly routerDomain: string;
  private readonly defaultTimeout: number;
  private readonly clock: Clock;

  constructor(private readonly opts: ClientOptions) {
    this.routerDomain = opts.routerDomain ?? opts.transport.domain;
    this.defaultTimeout = opts.timeout ?? 60;
    this.clock = opts.clock ?? realClock;
    if (opts.ownTransport) opts.transport.onMessage((s) => void this.dispatch(s));
    opts.transport.onOffline?.(() => this.connectionLost());
  }

  /**
   * Where a request for `service` first goes: XMPP `<router_name>@<domain>/<service>`, Redis
   * `opensrf:service:_:_:<service>` (which the connection hands to its router's queue).
   */
  routerJid(service: string): string {
    return this.opts.transport.addresses.service(this.opts.routerName, this.routerDomain, service);
  }

  request(service: string, method: string, params: JsonValue[] = [], opts: RequestOptions = {}): PendingRequest {
    const conv = this.open(service);
    conv.nextTrace = 1;
    return this.send(conv, method, params, opts);
  }

  session(service: string): ClientSession {
    const conv = this.open(service);
    conv.stateful = true;
    return new Session(this, conv);
  }

  async close(): Promise<void> {
    for (const conv of this.conversations.values()) {
      for (const call of conv.calls.values()) this.fail(conv, call, new Error("client closed"));
    }
    this.conversations.clear();
    if (this.opts.ownTransport) await this.opts.transport.close();
  }

  /** Number of threads with calls in flight (for tests and status pages). */
  get inFlight(): number {
    let n = 0;
    for (const c of this.conversations.values()) n += c.calls.size;
    return n;
  }

  /** Handle a message if it belongs to one of our threads; returns false otherwise. */
  dispatch(s: BusMessage): boolean {
    const conv = this.conversations.get(s.thread);
    if (!conv) return s.error ? this.onAnonymousBounce(s) : false;
    if (s.error) {
      this.onBounce(conv, s);
      return true;
    }
    let msgs: OsrfMessage[];
    try {
      msgs = decodeBody(s.body);
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      this.opts.logger.warn(`bad reply from ${s.from}: ${e.message}`, s.xid);
      for (const call of conv.calls.values()) this.fail(conv, call, e);
      return true;
    }
    for (const m of msgs) this.onMessage(conv, s, m);
    return true;
  }

  /** @internal */
  open(service: string): Conversation {
    const conv = new Conversation(this, service, this.routerJid(service));
    this.conversations.set(conv.thread, conv);
    return conv;
  }

  /** @internal Drop a thread once nothing more can arrive on it. */
  forget(conv: Conversation): void {
    if (conv.calls.size === 0 && !conv.connected && !conv.stateful) this.conversations.delete(conv.thread);
  }

  /** @internal Send a REQUEST (or CONNECT when method is undefined) on a conversation. */
  send(
    conv: Conversation,
    method: string | undefined,
    params: JsonValue[],
    opts: RequestOptions,
    onConnected?: (drone: string) => void,
  ): ResultStream {
    // A session used again after disconnect() was forgotten: register its thread again,
    // or the replies (served statelessly, as C does) would find no conversation.
    this.conversations.set(conv.thread, conv);
    const trace = conv.nextTrace++;
    const xid = opts.xid ?? makeXid();
    const stream = new ResultStream(() => this.forget(conv));
    const call: Call = {
      trace,
      method: method ?? "CONNECT",
      params,
      opts: { ...opts, xid },
      stream,
      assembler: new PartialAssembler(),
      timer: undefined,
      ctx: { service: conv.service, method: method ?? "CONNECT", thread: conv.thread, xid },
      ...(onConnected ? { onConnected } : {}),
    };
    conv.calls.set(trace, call);
    this.transmit(conv, call);
    return stream;
  }

  /** @internal */
  sendDisconnect(conv: Conversation): void {
    const wasConnected = conv.connected;
    conv.connected = false;
    conv.stateful = false;
    if (!wasConnected) {
      this.forget(conv);
      return;
    }
    const msg: OsrfMessage = { ...this.header({}), type: "DISCONNECT", threadTrace: Math.max(conv.nextTrace - 1, 0) };
    this.opts.transport.send({ to: conv.remote, thread: conv.thread, body: encodeBody([msg]), xid: makeXid() });
    conv.remote = conv.routerJid;
    this.forget(conv);
  }

  private header(opts: RequestOptions): MessageHeader {
    const h: MessageHeader = { threadTrace: 0, locale: opts.locale ?? this.opts.locale ?? "en-US", apiLevel: 1 };
    const tz = opts.tz ?? process.env.TZ;
    if (tz) h.tz = tz;
    const ingress = opts.ingress ?? this.opts.ingress;
    if (ingress) h.ingress = ingress;
    return h;
  }

  private transmit(conv: Conversation, call: Call): void {
    const header = { ...this.header(call.opts), threadTrace: call.trace };
    const msg: OsrfMessage =
      call.method === "CONNECT" && call.onConnected
        ? { ...header, type: "CONNECT" }
        : { ...header, type: "REQUEST", payload: { method: call.method, params: call.params } };
    this.armTimer(conv, call);
    try {
      this.opts.transport.send({ to: conv.remote, thread: conv.thread, body: encodeBody([msg]), xid: call.ctx.xid });
    } catch (e) {
      this.fail(conv, call, e as Error);
    }
  }

  private armTimer(conv: Conversation, call: Call): void {
    if (call.timer !== undefined) this.clock.clearTimeout(call.timer);
    const seconds = call.opts.timeout ?? this.defaultTimeout;
    call.timer = this.clock.setTimeout(
      () => this.fail(conv, call, new TimeoutError(seconds, call.ctx)),
      seconds * 1000,
    );
  }

  private settle(conv: Conversation, call: Call): void {
    if (call.timer !== undefined) this.clock.clearTimeout(call.timer);
    conv.calls.delete(call.trace);
  }

  private fail(conv: Conversation, call: Call, e: Error): void {
    this.settle(conv, call);
    call.stream.fail(e);
  }

  /**
   * Our XMPP stream broke: whatever was on its way to or from the server is gone, so a call
   * in flight would only wait for its timeout. Fail each at once — an answer the caller can
   * act on (retry, report) — saying the request may or may not have run. Sessions keep their
   * drone: it reconnects under the same address.
   */
  private connectionLost(): void {
    for (const conv of [...this.conversations.values()]) {
      for (const call of [...conv.calls.values()]) {
        const msg =
          `${conv.service} ${call.method}: the connection to the ${busName(this.opts.transport)} was lost while waiting for the reply ` +
          `(the request may or may not have run; thread ${conv.thread}, xid ${call.ctx.xid})`;
        this.fail(conv, call, new DeliveryError(msg, "connection-lost", call.ctx));
      }
    }
  }

  /**
   * Some servers (prosody) bounce a message without its thread and body: fail every
   * conversation that was talking to the address that bounced.
   */
  private onAnonymousBounce(s: BusMessage): boolean {
    let matched = false;
    for (const conv of this.conversations.values()) {
      if (conv.remote !== s.from || conv.calls.size === 0) continue;
      matched = true;
      this.onBounce(conv, s);
    }
    return matched;
  }

  private onBounce(conv: Conversation, s: BusMessage): void {
    const condition = s.error?.condition ?? "undefined-condition";
    const toRouter = s.from === conv.routerJid || s.from.endsWith(`/${conv.service}`);
    if (toRouter) {
      this.serviceUnavailable(conv, `XMPP ${condition}`, condition);
      return;
    }
    for (const call of [...conv.calls.values()]) {
      const msg = `the worker ${s.from} serving this ${conv.service} session is gone (XMPP ${condition}); reconnect and retry`;
      this.fail(conv, call, new DeliveryError(msg, condition, call.ctx));
    }
    conv.connected = false;
    conv.remote = conv.routerJid;
  }

  /** Fails every call of `conv`: no listener of its service is registered with our router. */
  private serviceUnavailable(conv: Conversation, why: string, condition: string): void {
    const router = this.opts.transport.addresses.router(this.opts.routerName, this.routerDomain);
    for (const call of [...conv.calls.values()]) {
      const msg = `service ${conv.service} is not available: no listener is registered for it with ${router} (${why})`;
      this.fail(conv, call, new DeliveryError(msg, condition, call.ctx));
    }
    conv.connected = false;
    conv.remote = conv.routerJid;
  }

  /**
   * The router's own answer for a service it has no listener for (OpenSRF main's Redis router:
   * one STATUS 404 of class osrfServiceException, threadTrace always "1", no 205 after it).
   * It names no call, so it ends every call of the conversation — a CONNECT (trace 0) too.
   */
  private isServiceNotFound(conv: Conversation, m: StatusMessage): boolean {
    return (
      m.payload.statusCode === StatusCode.NOTFOUND && m.payload.className === "osrfServiceException" && !conv.connected
    );
  }

  private onMessage(conv: Conversation, s: BusMessage, m: OsrfMessage): void {
    if (m.type === "STATUS" && this.isServiceNotFound(conv, m)) {
      this.opts.logger.info(`${s.from} has no ${conv.service}: ${m.payload.status}`, s.xid);
      this.serviceUnavailable(conv, `router ${s.from}: ${m.payload.status}`, "service-not-found");
      return;
    }
    if (m.type === "STATUS" && m.payload.statusCode === StatusCode.TIMEOUT) {
      // The server ended our session on keepalive timeout: like C, fall back to the
      // router and resend what is still waiting.
      this.opts.logger.info(`${conv.service} session ${conv.thread} timed out on the server side`, s.xid);
      conv.connected = false;
      conv.remote = conv.routerJid;
      for (const call of conv.calls.values()) if (!call.onConnected) this.transmit(conv, call);
      return;
    }
    const call = conv.calls.get(m.threadTrace);
    if (!call) {
      this.opts.logger.debug(`reply for unknown threadTrace ${m.threadTrace} on ${conv.thread}`, s.xid);
      return;
    }
    this.armTimer(conv, call);
    if (m.type === "RESULT") {
      let out: ReturnType<PartialAssembler["add"]>;
      try {
        out = call.assembler.add(m);
      } catch (e) {
        this.fail(conv, call, e as Error);
        return;
      }
      if (out.done) call.stream.push(out.content);
      return;
    }
    if (m.type !== "STATUS") return;
    const code = m.payload.statusCode;
    if (call.onConnected && code === StatusCode.OK) {
      this.settle(conv, call);
      conv.connected = true;
      conv.remote = s.from;
      call.onConnected(s.from);
      call.stream.finish();
    } else if (code === StatusCode.COMPLETE) {
      this.settle(conv, call);
      call.stream.finish();
    } else if (code >= 400) {
      this.fail(conv, call, new RequestError(m.payload, call.ctx));
    }
    // 1xx and other 2xx statuses only keep the call alive (timer re-armed above).
  }
}

/** What a lost-connection message calls the bus. */
function busName(t: BusConnection): string {
  return t.kind === "redis" ? "Redis bus" : "XMPP server";
}

/** A stateful session; requests go straight to the drone after CONNECT. */
class Session implements ClientSession {
  constructor(
    private readonly client: Client,
    private readonly conv: Conversation,
  ) {}

  get service(): string {
    return this.conv.service;
  }

  get connected(): boolean {
    return this.conv.connected;
  }

  /** Drone JID serving this session (router JID before connect). */
  get remote(): string {
    return this.conv.remote;
  }

  get thread(): string {
    return this.conv.thread;
  }

  async connect(opts: RequestOptions = {}): Promise<void> {
    if (this.conv.connected) return;
    this.conv.remote = this.conv.routerJid;
    this.conv.nextTrace = 0;
    await this.client.send(this.conv, undefined, [], opts, () => {}).collect();
    this.conv.nextTrace = 1;
  }

  request(method: string, params: JsonValue[] = [], opts: RequestOptions = {}): PendingRequest {
    return this.client.send(this.conv, method, params, opts);
  }

  disconnect(): void {
    this.client.sendDisconnect(this.conv);
  }
}
