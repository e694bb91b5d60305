/**
 * Stateful (CONNECT) sessions of a host, each with its keepalive timer.
 *
 * Like C's drone keepalive loop (osrf_prefork.c), the timer measures idle time only: it is
 * paused while a stanza of the session is being handled and restarted afterwards.
 */
import type { Clock } from "../clock/clock.ts";
import type { SessionEndReason } from "./types.ts";

/** One open session. */
export interface SessionRecord {
  readonly thread: string;
  /** Where replies and the timeout notice go; updated from every stanza (C: set_remote). */
  replyTo: string;
  /** xid of the latest stanza, used for the timeout notice. */
  xid: string;
  /** Locale of the latest message, used for the timeout notice. */
  locale: string;
  /** The author-visible per-session storage. */
  readonly state: Record<string, unknown>;
  timer: unknown;
  /** Clock time its idle time began. */
  idleSince: number;
  /** One of its stanzas is being handled: it is not idle. */
  paused: boolean;
}

/** Open sessions by thread. */
export class SessionTable {
  private readonly sessions = new Map<string, SessionRecord>();
  private readonly listeners: ((thread: string, reason: SessionEndReason) => void)[] = [];

  /**
   * @param keepaliveMs Idle time after which `onIdle` runs for a session.
   * @param onIdle Called when a session's timer fires (it should end the session).
   * @param onListenerError Reports a throwing end listener; the others still run.
   * @param clock Whose timers measure the idle time.
   */
  constructor(
    private readonly keepaliveMs: number,
    private readonly onIdle: (s: SessionRecord) => void,
    private readonly onListenerError: (err: unknown) => void,
    private readonly clock: Clock,
  ) {}

  get(thread: string): SessionRecord | undefined {
    return this.sessions.get(thread);
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Opens a session, or refreshes the addressing of one already open on `thread`. */
  open(thread: string, replyTo: string, xid: string, locale: string): SessionRecord {
    let s = this.sessions.get(thread);
    if (s === undefined) {
      s = { thread, replyTo, xid, locale, state: {}, timer: undefined, idleSince: 0, paused: false };
      this.sessions.set(thread, s);
    } else {
      s.replyTo = replyTo;
      s.xid = xid;
      s.locale = locale;
    }
    return s;
  }

  /**
   * `thread`'s session is busy with one of its stanzas: its idle time stops. The timer is
   * left running, to find the session busy (or idle for less than the keepalive) when it
   * fires, instead of being cancelled and set again for every request of the session.
   */
  pause(thread: string): void {
    const s = this.sessions.get(thread);
    if (s !== undefined) s.paused = true;
  }

  /** `thread`'s session, if open, is idle from now on; after the keepalive, `onIdle`. */
  arm(thread: string): void {
    const s = this.sessions.get(thread);
    if (s === undefined) return;
    s.paused = false;
    s.idleSince = this.clock.now();
    if (s.timer === undefined) this.wake(s, this.keepaliveMs);
  }

  /** Checks `s` after `ms`, and again while it has not been idle for the keepalive. */
  private wake(s: SessionRecord, ms: number): void {
    s.timer = this.clock.setTimeout(() => {
      s.timer = undefined;
      if (this.sessions.get(s.thread) !== s || s.paused) return; // arm() sets the next one
      const idle = this.clock.now() - s.idleSince;
      if (idle >= this.keepaliveMs) this.onIdle(s);
      else this.wake(s, this.keepaliveMs - idle);
    }, ms);
  }

  /**
   * Ends `thread`'s session and tells the listeners.
   *
   * @returns false when no session was open on `thread`.
   */
  end(thread: string, reason: SessionEndReason): boolean {
    const s = this.sessions.get(thread);
    if (s === undefined) return false;
    if (s.timer !== undefined) this.clock.clearTimeout(s.timer);
    this.sessions.delete(thread);
    for (const cb of this.listeners) {
      try {
        cb(thread, reason);
      } catch (err) {
        this.onListenerError(err);
      }
    }
    return true;
  }

  /** Ends every session. */
  endAll(reason: SessionEndReason): void {
    for (const thread of [...this.sessions.keys()]) this.end(thread, reason);
  }

  onEnd(cb: (thread: string, reason: SessionEndReason) => void): void {
    this.listeners.push(cb);
  }
}
