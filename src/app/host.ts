/**
 * The service host: takes the stanzas addressed to one service and answers them as an
 * OpenSRF 3.3 C drone does (osrf_stack.c `_do_server`, osrf_prefork.c keepalive loop).
 * One process, no pool: a prefork drone runs exactly this, one stanza at a time.
 *
 * - CONNECT opens a stateful session on the stanza's thread: STATUS osrfConnectStatus 200
 *   "Connection Successful", threadTrace copied. Later REQUESTs on that thread share its
 *   `session.state`.
 * - DISCONNECT ends it, with no reply. A REQUEST on the thread afterwards is served
 *   statelessly, as C does (the drone has left its keepalive loop and frees the session,
 *   so the next message starts a fresh, unconnected server session).
 * - A session idle for `keepalive` seconds gets STATUS osrfConnectStatus 408
 *   "Disconnected on timeout" with threadTrace 0 (C's exact call) and is dropped.
 * - A REQUEST without CONNECT is served statelessly.
 * - Bounces are logged and dropped; one for an open session's thread also ends the
 *   session (the caller is unreachable — C would wait for the keepalive instead).
 * - A body that does not decode is logged on one line and answered with STATUS
 *   osrfMethodException 400 "Bad Request: <reason>" when the stanza has a thread.
 */

import type { BusMessage } from "../bus/types.ts";
import { type Clock, realClock } from "../clock/clock.ts";
import { MIN_CHUNK_SIZE } from "../protocol/chunking.ts";
import { decodeBody, encodeBody } from "../protocol/codec.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { connectOk, DEFAULT_LOCALE, methodException, status } from "../protocol/messages.ts";
import { StatusClass, StatusCode, StatusText, Texts } from "../protocol/status.ts";
import type { OsrfMessage } from "../protocol/types.ts";
import { Lanes } from "./lanes.ts";
import { createRegistry } from "./registry.ts";
import { type RequestEnv, serveRequest } from "./request.ts";
import { type SessionRecord, SessionTable } from "./sessions.ts";
import type {
  HandleOutcome,
  HostSettings,
  MethodSession,
  ServiceHost,
  ServiceHostOptions,
  SessionEndReason,
} from "./types.ts";

const DEFAULT_CLOSE_GRACE_MS = 5000;

function checkSettings(s: HostSettings): void {
  if (!(typeof s.keepalive === "number" && s.keepalive > 0 && Number.isFinite(s.keepalive))) {
    throw new RangeError(`keepalive must be a positive number of seconds, got ${String(s.keepalive)}`);
  }
  if (!Number.isSafeInteger(s.maxChunkSize) || s.maxChunkSize < MIN_CHUNK_SIZE) {
    throw new RangeError(`maxChunkSize must be an integer >= ${MIN_CHUNK_SIZE}, got ${String(s.maxChunkSize)}`);
  }
  if (!Number.isSafeInteger(s.maxBundleSize) || s.maxBundleSize < 0) {
    throw new RangeError(`maxBundleSize must be a non-negative integer, got ${String(s.maxBundleSize)}`);
  }
}

// The threadTrace to answer a bad body with: the first one we can make out, else 0, so a
// waiting client that parsed its own request fails at once instead of timing out.
function guessThreadTrace(body: string): number {
  const m = /"threadTrace"\s*:\s*"?(\d{1,15})/.exec(body);
  return m ? Number(m[1]) : 0;
}

class Host implements ServiceHost {
  readonly service: string;
  private readonly env: RequestEnv;
  private readonly lanes = new Lanes();
  private readonly sessions: SessionTable;
  private readonly clock: Clock;
  private closed = false;

  constructor(private readonly opts: ServiceHostOptions) {
    checkSettings(opts.settings);
    this.service = opts.service;
    this.clock = opts.clock ?? realClock;
    this.env = {
      service: opts.service,
      registry: createRegistry(opts.definition),
      transport: opts.transport,
      client: opts.client,
      limits: { maxBundleSize: opts.settings.maxBundleSize, maxChunkSize: opts.settings.maxChunkSize },
      logger: opts.logger,
      logProtect: opts.logProtect,
      ...(opts.onFinalReply ? { onFinalReply: opts.onFinalReply } : {}),
    };
    this.sessions = new SessionTable(
      opts.settings.keepalive * 1000,
      (s) => this.timedOut(s),
      (err) => opts.logger.error(`onSessionEnd callback failed: ${String(err)}`),
      this.clock,
    );
    if (opts.definition.name !== undefined && opts.definition.name !== opts.service) {
      opts.logger.info(`Serving definition "${opts.definition.name}" as service ${opts.service}`);
    }
  }

  async handle(stanza: BusMessage): Promise<HandleOutcome> {
    return this.serve(stanza);
  }

  serve(stanza: BusMessage): HandleOutcome | Promise<HandleOutcome> {
    const thread = stanza.thread;
    try {
      if (this.closed) {
        this.opts.logger.warn(`${this.service} host is closed; dropping a stanza from ${stanza.from}`, stanza.xid);
        return this.outcome(thread, false);
      }
      if (stanza.error !== undefined) return this.bounced(stanza);
      if (thread === "") {
        this.opts.logger.warn(`Received a non-error message with no thread from ${stanza.from}; dropping`, stanza.xid);
        return this.outcome(thread, false);
      }
      const done = this.lanes.run(thread, () => this.process(stanza));
      return done instanceof Promise ? done.catch((err) => this.unexpected(stanza, err)) : done;
    } catch (err) {
      return this.unexpected(stanza, err);
    }
  }

  // process() handles its own failures; this is a last resort so serve() never throws.
  private unexpected(stanza: BusMessage, err: unknown): HandleOutcome {
    this.opts.logger.error(`${this.service}: unexpected failure handling a stanza: ${String(err)}`, stanza.xid);
    return this.outcome(stanza.thread, false);
  }

  onSessionEnd(cb: (thread: string, reason: SessionEndReason) => void): void {
    this.sessions.onEnd(cb);
  }

  activeSessions(): number {
    return this.sessions.size;
  }

  async close(graceMs: number = DEFAULT_CLOSE_GRACE_MS): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.sessions.endAll("close");
    let timer: unknown;
    const grace = new Promise<void>((resolve) => (timer = this.clock.setTimeout(resolve, graceMs)));
    await Promise.race([this.lanes.drained(), grace]);
    this.clock.clearTimeout(timer);
    if (this.lanes.busy > 0) {
      this.opts.logger.warn(`${this.service} host closed with ${this.lanes.busy} request(s) still running`);
    }
  }

  private outcome(thread: string, endedHere: boolean): HandleOutcome {
    if (this.sessions.get(thread) !== undefined) return { session: "open", thread };
    return { session: endedHere ? "closed" : "none", thread };
  }

  private process(stanza: BusMessage): HandleOutcome | Promise<HandleOutcome> {
    const { thread } = stanza;
    const replyTo = stanza.routerFrom || stanza.from;
    this.sessions.pause(thread);
    let msgs: OsrfMessage[];
    try {
      msgs = decodeBody(stanza.body);
    } catch (err) {
      this.badBody(stanza, replyTo, err);
      this.rearm(thread);
      return this.outcome(thread, false);
    }
    return this.processFrom(stanza, replyTo, msgs, 0, false);
  }

  /**
   * The stanza's messages from `first` on, in order. Returns at once while each request is
   * answered without waiting; at the first one that waits, the rest follows it.
   */
  private processFrom(
    stanza: BusMessage,
    replyTo: string,
    msgs: readonly OsrfMessage[],
    first: number,
    endedBefore: boolean,
  ): HandleOutcome | Promise<HandleOutcome> {
    const { thread } = stanza;
    let endedHere = endedBefore;
    // The keepalive restarts once the whole stanza is dealt with, not when a request waits.
    let waiting = false;
    try {
      for (let i = first; i < msgs.length; i++) {
        const msg = msgs[i] as OsrfMessage;
        const locale = msg.locale ?? DEFAULT_LOCALE;
        const open = this.sessions.get(thread);
        if (open !== undefined) this.sessions.open(thread, replyTo, stanza.xid, locale);
        switch (msg.type) {
          case "CONNECT":
            this.sessions.open(thread, replyTo, stanza.xid, locale);
            this.send(replyTo, stanza, encodeBody([connectOk(msg.threadTrace, { locale })]));
            break;
          case "DISCONNECT":
            if (this.sessions.end(thread, "disconnect")) endedHere = true;
            else
              this.opts.logger.debug(
                `${this.service}: ignoring DISCONNECT on thread ${thread}: no session open`,
                stanza.xid,
              );
            break;
          case "REQUEST": {
            const session: MethodSession =
              open !== undefined
                ? { thread, stateful: true, state: open.state }
                : { thread, stateful: false, state: {} };
            const t0 = performance.now();
            const code = serveRequest(this.env, { msg, replyTo, thread, xid: stanza.xid, session });
            if (typeof code === "number") {
              this.opts.onRequestDone?.(msg.payload.method, code, performance.now() - t0);
              break;
            }
            waiting = true;
            const ended = endedHere;
            return code.then(
              (c) => {
                this.opts.onRequestDone?.(msg.payload.method, c, performance.now() - t0);
                return this.processFrom(stanza, replyTo, msgs, i + 1, ended);
              },
              (err: unknown) => {
                this.rearm(thread);
                throw err;
              },
            );
          }
          default:
            // C's server side ignores STATUS and RESULT messages sent to it.
            this.opts.logger.debug(`${this.service}: ignoring a ${msg.type} message on thread ${thread}`, stanza.xid);
        }
      }
      return this.outcome(thread, endedHere);
    } finally {
      if (!waiting) this.rearm(thread);
    }
  }

  /** The session's keepalive starts again (unless the host is closed). */
  private rearm(thread: string): void {
    if (!this.closed) this.sessions.arm(thread);
  }

  private bounced(stanza: BusMessage): HandleOutcome {
    const e = stanza.error;
    this.opts.logger.warn(
      `Received a bounce (${e?.type ?? "?"}/${e?.condition ?? "?"}${e?.text ? `: ${e.text}` : ""}) ` +
        `from ${stanza.from} on thread ${stanza.thread}; dropping it`,
      stanza.xid,
    );
    const ended = stanza.thread !== "" && this.sessions.end(stanza.thread, "bounce");
    return this.outcome(stanza.thread, ended);
  }

  private badBody(stanza: BusMessage, replyTo: string, err: unknown): void {
    const reason = err instanceof ProtocolError ? err.message : String(err);
    this.opts.logger.error(
      `${this.service}: bad message body from ${replyTo} on thread ${stanza.thread}: ${reason}`,
      stanza.xid,
    );
    if (replyTo === "") return;
    const text = `${StatusText[StatusCode.BADREQUEST]}: ${reason}`;
    const trace = guessThreadTrace(stanza.body);
    this.send(replyTo, stanza, encodeBody([methodException(trace, StatusCode.BADREQUEST, text)]));
  }

  private timedOut(s: SessionRecord): void {
    this.opts.logger.info(
      `No request was received in ${this.opts.settings.keepalive} seconds, exiting stateful session ${s.thread}`,
      s.xid,
    );
    const body = encodeBody([
      status(0, StatusClass.CONNECT, StatusCode.TIMEOUT, Texts.disconnectedOnTimeout, { locale: s.locale }),
    ]);
    this.sendTo(s.replyTo, s.thread, s.xid, body);
    this.sessions.end(s.thread, "timeout");
  }

  private send(to: string, stanza: BusMessage, body: string): void {
    this.sendTo(to, stanza.thread, stanza.xid, body);
  }

  private sendTo(to: string, thread: string, xid: string, body: string): void {
    try {
      this.opts.transport.send({ to, thread, xid, body });
    } catch (err) {
      this.opts.logger.error(`Unable to send to ${to} on thread ${thread}: ${String(err)}`, xid);
    }
  }
}

/**
 * Creates the host that serves one service's stanzas. Feed it every stanza addressed to
 * the service with `handle`; replies go out on `transport`.
 *
 * Lifecycle hooks (`init`, `childInit`, `childExit`) are not run here: the process that
 * owns the host runs them at the right moments.
 *
 * @throws RangeError for invalid settings; TypeError for an invalid service definition.
 */
export function createServiceHost(opts: ServiceHostOptions): ServiceHost {
  return new Host(opts);
}
