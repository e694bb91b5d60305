/**
 * The drone (C `prefork_child_init_hook`, `prefork_child_wait`,
 * `prefork_child_process_request`): a child of the listener with its own XMPP login that
 * serves the messages the listener hands it, one at a time, and answers callers directly.
 *
 * - Configuration arrives in the first IPC message (`init`); requests handed over before
 *   the login is done are queued.
 * - A message that opens a stateful session (CONNECT) pins the drone to that caller until
 *   DISCONNECT or the keepalive timeout; session messages reach the drone directly.
 * - The drone's one XMPP connection carries both session messages and replies to its own
 *   outgoing calls (`ctx.call`): the client gets first look at every stanza.
 * - After each listener message (and the session it opened): exit after max_requests
 *   (counted as C does: messages from the listener), or when private memory is above
 *   max_memory_mb; otherwise report `available` — with a slot on the free-drone board
 *   (board.ts), there instead, and by IPC only while the listener waits for a drone.
 * - SIGTERM or `shutdown{graceful}`: finish the current work, run childExit, exit.
 *   SIGINT or `shutdown{graceful:false}`: exit now. The IPC channel closing (listener
 *   gone): like SIGTERM — the caller being served still gets its answer.
 */
import { createServiceHost } from "../app/host.ts";
import type {
  HandleOutcome,
  HostSettings,
  ServiceDefinition,
  ServiceEnv,
  ServiceHost,
  SessionEndReason,
} from "../app/types.ts";
import type { BusConnection, BusMessage } from "../bus/types.ts";
import { Client } from "../client/client.ts";
import { connectBus, wireEncoder } from "../connect/bus.ts";
import type { OsrfLogger } from "../log/logger.ts";
import { MIN_CHUNK_SIZE } from "../protocol/chunking.ts";
import { decodeBody } from "../protocol/codec.ts";
import { makeResource } from "../protocol/ids.ts";
import { loadServiceModule } from "./app-loader.ts";
import { DroneBoard } from "./board.ts";
import {
  type CallerRef,
  type DroneExitReason,
  type DroneInit,
  type DroneToListener,
  IpcMessageError,
  parseListenerMessage,
  type RequestDone,
} from "./ipc.ts";
import { bootJitScale, setJitPolicy } from "./jit.ts";
import { preforkLogger } from "./logging.ts";
import { memoryOverLimit, rssBytes } from "./memory.ts";
import { CommName, setCommName } from "./proc-title.ts";
import { releaseStartupMemory } from "./startup-memory.ts";
import { warmRequestPath } from "./warmup.ts";

/** The drone's end of the IPC channel. */
export interface DroneChannel {
  /** Sends a message; `flushed` runs once it is written (or could not be). */
  send(msg: DroneToListener, flushed?: () => void): void;
  onMessage(cb: (msg: unknown) => void): void;
  /** The listener is gone. */
  onDisconnect(cb: () => void): void;
}

/** The channel Bun sets up for a process spawned with `ipc`. */
export function processChannel(): DroneChannel | undefined {
  if (typeof process.send !== "function") return undefined;
  return {
    send(msg, flushed) {
      try {
        // The callback form waits until the message is written out (measured: without it a
        // message sent just before exit can be lost).
        (process.send as (m: unknown, h: undefined, o: object, cb: () => void) => boolean)(msg, undefined, {}, () =>
          flushed?.(),
        );
      } catch {
        flushed?.();
      }
    },
    onMessage: (cb) => void process.on("message", cb),
    onDisconnect: (cb) => void process.on("disconnect", cb),
  };
}

/** How long to wait for `init` before giving up: a drone nobody configures must not linger. */
const INIT_TIMEOUT_MS = 30_000;
/** Grace for in-flight requests when a drone closes its host on exit. */
const CLOSE_GRACE_MS = 5_000;
/** With a board, finished requests (metrics) wait at most this long for a message to ride on. */
const REPORT_AFTER_MS = 1_000;

/** One drone process. */
export class DroneRuntime {
  private init: DroneInit | undefined;
  private log: OsrfLogger | undefined;
  private definition: ServiceDefinition | undefined;
  private transport: BusConnection | undefined;
  private client: Client | undefined;
  private host: ServiceHost | undefined;
  private childInitDone = false;
  private ready = false;
  private busy = false;
  private leaving = false;
  private stopRequested = false;
  private served = 0;
  private readonly queue: BusMessage[] = [];
  /** Thread of the session this drone is pinned to. */
  private pinned: string | undefined;
  private sessionOver: (() => void) | undefined;
  private initTimer: ReturnType<typeof setTimeout> | undefined;
  private rss = 0;
  private rssAt = -Infinity;
  /** Requests finished since the last IPC message; they ride on the next one. */
  private done: RequestDone[] = [];
  /** The start-up JIT scale has been undone. */
  private bootJitOver = false;
  /** Where finished messages are published instead of `available` (board.ts). */
  private board: DroneBoard | undefined;
  private reportTimer: ReturnType<typeof setTimeout> | undefined;

  /**
   * @param bootJitScale JIT thresholds were scaled by this at process start (jit.ts): back
   *   to 1 once ready, when the request path is what runs.
   */
  constructor(
    private readonly channel: DroneChannel,
    private readonly exit: (code: number) => void = (code) => process.exit(code),
    private readonly bootJitScale = 1,
  ) {}

  /** Starts listening to the listener. */
  start(): void {
    this.channel.onMessage((m) => this.onIpc(m));
    this.channel.onDisconnect(() => this.onListenerGone());
    this.initTimer = setTimeout(() => {
      process.stderr.write(
        `osrf-prefork drone ${process.pid}: no init message from the listener within ${INIT_TIMEOUT_MS / 1000} s; exiting\n`,
      );
      this.exit(1);
    }, INIT_TIMEOUT_MS);
    // The IPC channel is what keeps a drone alive, not this timer.
    this.initTimer.unref?.();
  }

  private onIpc(raw: unknown): void {
    let msg: ReturnType<typeof parseListenerMessage>;
    try {
      msg = parseListenerMessage(raw);
    } catch (e) {
      if (!(e instanceof IpcMessageError)) throw e;
      this.warn(e.message);
      return;
    }
    switch (msg.type) {
      case "init":
        if (this.init) this.warn("ignoring a second init message");
        else void this.boot(msg.init);
        return;
      case "request":
        // Never sent by ejabberd or Prosody, which re-serialize what they pass on: served
        // with an empty body, so the caller and the pool still hear back.
        if (msg.badBody !== undefined) {
          this.warn(
            `the body of a message from ${msg.stanza.from} (thread ${msg.stanza.thread}) is not well-formed XML text: ${msg.badBody}`,
          );
        }
        this.queue.push(msg.stanza);
        this.next();
        return;
      case "shutdown":
        if (msg.graceful) this.requestStop(`told to stop by the listener (${msg.reason})`);
        else this.exit(0);
        return;
    }
  }

  /** Every message to the listener goes here, carrying the requests finished since the last one. */
  private send(msg: DroneToListener, flushed?: () => void): void {
    // Replies first: the listener takes `available` as "answered", and a reply still in
    // our buffer would be lost if we were killed right after.
    this.transport?.flush?.();
    if (this.done.length > 0) {
      msg.done = this.done;
      this.done = [];
    }
    this.channel.send(msg, flushed);
  }

  private warn(text: string): void {
    if (this.log) this.log.warn(text);
    else process.stderr.write(`osrf-prefork drone ${process.pid}: ${text}\n`);
  }

  private async boot(init: DroneInit): Promise<void> {
    clearTimeout(this.initTimer);
    this.init = init;
    setCommName(CommName.drone);
    const log = preforkLogger(init.service, "drone", init.client, init.log);
    this.log = log;
    if (init.board) {
      try {
        this.board = new DroneBoard(init.board);
      } catch (e) {
        log.warn(`${(e as Error).message}; reporting every request by IPC`);
      }
    }
    let connecting: Promise<BusConnection> | undefined;
    try {
      const resource = makeResource(`${init.service}_drone`, init.hostname);
      // The listener chose the bus (init.client.bus); Redis makes its own inbox address.
      // The login starts first: its round trips to the server overlap loading the module.
      connecting = connectBus(init.client, { resource, logger: log });
      // Awaited below; until then a failed login must not count as an unhandled rejection.
      connecting.catch(() => {});
      this.definition = await loadServiceModule(init.appPath);
      const settings = {
        keepalive: init.settings.keepalive,
        // 0 means "never chunk" in opensrf.xml; the host wants a size, and one it can cut.
        maxChunkSize:
          init.settings.maxChunkSize > 0
            ? Math.max(MIN_CHUNK_SIZE, init.settings.maxChunkSize)
            : Number.MAX_SAFE_INTEGER,
        maxBundleSize: init.settings.maxBundleSize,
      };
      // The warm-up runs while the login waits on the server's answers.
      await this.warmUp(init, this.definition, settings, log);
      this.transport = await connecting;
      this.client = new Client({ transport: this.transport, routerName: init.client.routerName, logger: log });
      this.host = createServiceHost({
        service: init.service,
        definition: this.definition,
        transport: this.transport,
        client: this.client,
        settings,
        logger: log,
        logProtect: init.logProtect,
        onRequestDone: (method, status, ms) => void this.done.push([method, status, ms]),
        // Counted before the reply can reach the caller, who may read the count next.
        onFinalReply: () => this.board?.countRequest(),
      });
      this.host.onSessionEnd((thread, reason) => this.onSessionEnd(thread, reason));
      this.transport.onMessage((s) => this.onDirect(s));
      await this.definition.childInit?.(this.env());
      this.childInitDone = true;
    } catch (e) {
      // A login that went on while the module failed: nobody will use it.
      if (!this.transport) void connecting?.then((c) => c.close()).catch(() => {});
      const detail = (e as Error).message ?? String(e);
      log.error(`drone for ${init.service} cannot start: ${detail}`);
      await this.leave("init_failed", detail, 1);
      return;
    }
    this.ready = true;
    this.endBootJit(log);
    log.debug(`drone ready as ${this.transport.address} (max_requests ${init.maxRequests})`);
    this.send({ type: "ready", address: this.transport.address });
    releaseStartupMemory(0);
    if (this.stopRequested) void this.leave("shutdown");
    else this.next();
  }

  /** Runs `warmupRequests` synthetic requests through the request path (warmup.ts). */
  private async warmUp(init: DroneInit, definition: ServiceDefinition, settings: HostSettings, log: OsrfLogger) {
    const requests = init.settings.warmupRequests ?? 0;
    if (requests <= 0) return;
    // The warm-up is the request path: it should tier up as requests will.
    this.endBootJit(log);
    const r = await warmRequestPath({
      service: init.service,
      definition,
      client: init.client,
      log: init.log,
      settings,
      logProtect: init.logProtect,
      encode: await wireEncoder(init.client),
      busKind: init.client.bus ?? "xmpp",
      requests,
    });
    if (r instanceof Error) log.warn(`drone warm-up failed (serving anyway): ${r.message}`);
    else log.debug(`drone warm-up: ${r.messages} requests in ${r.ms.toFixed(1)} ms`);
  }

  /** JIT thresholds back to normal (1×) after start-up, once. */
  private endBootJit(log: OsrfLogger): void {
    if (this.bootJitScale <= 1 || this.bootJitOver) return;
    this.bootJitOver = true;
    if (setJitPolicy(1)) log.debug(`JIT thresholds back from ${this.bootJitScale}× to 1× after start-up`);
  }

  private env(): ServiceEnv {
    return { service: this.init!.service, log: this.log!, ...(this.client ? { client: this.client } : {}) };
  }

  /** Serves the next queued listener message, if idle. */
  private next(): void {
    if (!this.ready || this.busy || this.leaving) return;
    const stanza = this.queue.shift();
    if (!stanza) return;
    this.busy = true;
    void this.serveUnit(stanza);
  }

  private serveUnit(stanza: BusMessage): void {
    const host = this.host!;
    this.served++;
    const since = Date.now();
    const outcome = host.serve(stanza);
    if (!(outcome instanceof Promise)) {
      this.unitServed(stanza, outcome);
      return;
    }
    // Still running: reported only if still running when the event loop turns. Most
    // requests are answered before serve() returns, and the rest mostly soon after; those
    // cost the listener no message (measured: a third of a drone's and of the listener's
    // CPU per call). The pool already holds the stanza to answer for it.
    const report = setImmediate(() => this.announce(stanza, since));
    void outcome.then((o) => {
      clearImmediate(report);
      this.unitServed(stanza, o);
    });
  }

  /** The listener's message is dealt with: stay with the session it opened, or take the next. */
  private unitServed(stanza: BusMessage, outcome: HandleOutcome): void {
    if (outcome.session === "open") {
      this.pinned = stanza.thread;
      this.send({ type: "waiting", thread: stanza.thread, unit: this.served });
      // Called from inside the host (a DISCONNECT, the keepalive): carry on once it returns.
      this.sessionOver = () =>
        queueMicrotask(() => {
          this.pinned = undefined;
          this.afterUnit();
        });
      return;
    }
    this.pinned = undefined;
    this.afterUnit();
  }

  /** Tells the listener what is running and whom to answer should this drone die. */
  private announce(s: BusMessage, since = Date.now()): void {
    let msgs: ReturnType<typeof decodeBody>;
    try {
      msgs = decodeBody(s.body);
    } catch {
      return; // the host answers the bad body itself, at once
    }
    const calls = msgs.filter((m) => m.type === "REQUEST" || m.type === "CONNECT");
    if (calls.length === 0) return;
    const req = calls.find((m) => m.type === "REQUEST");
    const caller: CallerRef = {
      to: s.routerFrom || s.from,
      thread: s.thread,
      xid: s.xid,
      threadTraces: calls.map((m) => m.threadTrace),
    };
    const method = req?.type === "REQUEST" ? req.payload.method : "CONNECT";
    this.send({ type: "busy", method, since, caller, unit: this.served });
  }

  /** A stanza on the drone's own connection: a reply to its own call, or session traffic. */
  private onDirect(s: BusMessage): void {
    if (this.client?.dispatch(s)) return;
    const host = this.host;
    if (!host) return;
    const inSession = s.thread !== "" && s.thread === this.pinned;
    // As with the listener's messages, a session request is reported (`busy`: whom to answer
    // should we die; `waiting` once done) only if it outlasts a turn of the event loop. A
    // quick one leaves the pool's view — a session, nothing running — as it was, and costs
    // the listener nothing. (A handler that never yields is then not seen by request_timeout;
    // C has no such limit at all.)
    const outcome = host.serve(s);
    if (!(outcome instanceof Promise)) {
      this.directServed(s, inSession, outcome, false);
      return;
    }
    let reported = false;
    const since = Date.now();
    const report =
      inSession && !s.error
        ? setImmediate(() => {
            reported = true;
            this.announce(s, since);
          })
        : undefined;
    void outcome.then((o) => {
      clearImmediate(report);
      this.directServed(s, inSession, o, reported);
    });
  }

  private directServed(s: BusMessage, inSession: boolean, outcome: HandleOutcome, reported: boolean): void {
    if (!inSession || this.pinned !== s.thread) return;
    if (outcome.session !== "open") this.endSession();
    else if (reported) this.send({ type: "waiting", thread: s.thread, unit: this.served });
  }

  private onSessionEnd(thread: string, reason: SessionEndReason): void {
    this.log?.debug(`session ${thread} ended (${reason})`);
    if (thread === this.pinned) this.endSession();
  }

  private endSession(): void {
    const done = this.sessionOver;
    this.sessionOver = undefined;
    done?.();
  }

  private afterUnit(): void {
    const init = this.init!;
    if (this.served >= init.maxRequests) {
      void this.leave("max_requests", `served ${this.served} of max_requests ${init.maxRequests}`);
      return;
    }
    const rss = this.sampleRss(init.settings.maxMemoryMb > 0);
    const over = memoryOverLimit(init.settings.maxMemoryMb, rss);
    if (over) {
      this.log?.info(`drone retiring after ${this.served} requests: ${over}`);
      void this.leave("memory", over);
      return;
    }
    if (this.stopRequested) {
      void this.leave("shutdown");
      return;
    }
    this.busy = false;
    this.reportAvailable(rss);
    this.next();
  }

  /**
   * `available` by IPC, or on the board: then by IPC too only while the listener waits for
   * a drone, and the finished requests' metrics ride on a `report` within a second.
   */
  private reportAvailable(rss: number): void {
    const msg: DroneToListener = { type: "available", served: this.served, rssBytes: rss };
    if (!this.board) {
      this.send(msg);
      return;
    }
    // Replies first, as in send(): "finished" on the board means "answered" to the pool.
    this.transport?.flush?.();
    if (this.board.finish(this.served)) this.send(msg);
    else if (this.done.length > 0 && this.reportTimer === undefined) {
      this.reportTimer = setTimeout(() => {
        this.reportTimer = undefined;
        if (this.done.length > 0 && !this.leaving) this.send({ type: "report" });
      }, REPORT_AFTER_MS);
      this.reportTimer.unref?.();
    }
  }

  /**
   * RSS for `available`: read after every unit when max_memory_mb needs it, else at most
   * once a second (the read costs ~8 µs, a good part of a short request).
   */
  private sampleRss(always: boolean): number {
    const now = Date.now();
    if (always || now - this.rssAt >= 1000) {
      this.rss = rssBytes();
      this.rssAt = now;
    }
    return this.rss;
  }

  /** Finish the current work (and session), run childExit, exit (SIGTERM, listener gone). */
  requestStop(why: string): void {
    this.stopRequested = true;
    this.log?.info(`drone stopping (${why})${this.busy ? " after its current work" : ""}`);
    if (!this.init) this.exit(0);
    else if (this.ready && !this.busy) void this.leave("shutdown");
    // Not ready yet: boot() leaves once it is; busy: afterUnit() leaves.
  }

  private onListenerGone(): void {
    if (this.leaving) return;
    this.log?.info("the listener is gone (IPC channel closed)");
    this.requestStop("listener gone");
  }

  /** Reports why, runs childExit, closes the connection, exits. */
  private async leave(reason: DroneExitReason, detail?: string, code = 0): Promise<void> {
    if (this.leaving) return;
    this.leaving = true;
    const flushed = new Promise<void>((resolve) => {
      const msg: DroneToListener = { type: "exiting", reason, served: this.served };
      if (detail !== undefined) msg.detail = detail;
      this.send(msg, resolve);
      setTimeout(resolve, 1000); // never wait on a dead channel
    });
    await this.host?.close(CLOSE_GRACE_MS);
    if (this.childInitDone && this.definition?.childExit) {
      try {
        await this.definition.childExit(this.env());
      } catch (e) {
        this.log?.error(`childExit failed: ${(e as Error).message}`);
      }
    }
    await this.client?.close().catch(() => {});
    await this.transport?.close().catch(() => {});
    await flushed;
    this.log?.close();
    this.exit(code);
  }
}

/** Entry point of `osrf-prefork drone`. */
export function runDrone(): void {
  const channel = processChannel();
  if (!channel) {
    process.stderr.write("osrf-prefork drone: must be started by `osrf-prefork serve` (no IPC channel)\n");
    process.exit(2);
  }
  // Start-up code runs once: keep it out of the JIT that the listener may have made eager.
  const scale = bootJitScale();
  const scaled = scale > 1 && setJitPolicy(scale);
  const drone = new DroneRuntime(channel, undefined, scaled ? scale : 1);
  process.on("SIGTERM", () => drone.requestStop("SIGTERM"));
  process.on("SIGINT", () => process.exit(130));
  // HUP/USR1/USR2 sent to the whole process group are meant for the listener (reload,
  // unregister, register); their default action would kill the drone.
  for (const sig of ["SIGHUP", "SIGUSR1", "SIGUSR2"] as const) process.on(sig, () => {});
  drone.start();
}
