/**
 * A logger that stamps a request's xid on every line a handler logs.
 */
import type { Logger } from "../log/types.ts";

/**
 * One per request: a class, so that making one is a single allocation (its methods live on
 * the prototype) — a drone makes one for every request it serves, mostly before its JIT is warm.
 */
class XidLogger implements Logger {
  constructor(
    private readonly base: Logger,
    private readonly xid: string,
  ) {}
  error(msg: string, x?: string): void {
    this.base.error(msg, x ?? this.xid);
  }
  warn(msg: string, x?: string): void {
    this.base.warn(msg, x ?? this.xid);
  }
  info(msg: string, x?: string): void {
    this.base.info(msg, x ?? this.xid);
  }
  debug(msg: string, x?: string): void {
    this.base.debug(msg, x ?? this.xid);
  }
  internal(msg: string, x?: string): void {
    this.base.internal(msg, x ?? this.xid);
  }
  activity(msg: string, x?: string): void {
    this.base.activity(msg, x ?? this.xid);
  }
  enabled(level: number): boolean {
    return this.base.enabled?.(level) ?? true;
  }
  child(service: string): Logger {
    return new XidLogger(this.base.child(service), this.xid);
  }
  reopen(): void {
    this.base.reopen();
  }
}

/**
 * A logger whose lines carry `xid` unless the caller passes another one, so a handler's
 * own lines can be matched with the request that caused them.
 */
export function loggerWithXid(base: Logger, xid: string): Logger {
  return new XidLogger(base, xid);
}
