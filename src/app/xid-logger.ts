/**
 * A logger that stamps a request's xid on every line a handler logs.
 */
import type { Logger } from "../log/types.ts";

/**
 * A logger whose lines carry `xid` unless the caller passes another one, so a handler's
 * own lines can be matched with the request that caused them.
 */
export function loggerWithXid(base: Logger, xid: string): Logger {
  return {
    error: (msg, x) => base.error(msg, x ?? xid),
    warn: (msg, x) => base.warn(msg, x ?? xid),
    info: (msg, x) => base.info(msg, x ?? xid),
    debug: (msg, x) => base.debug(msg, x ?? xid),
    internal: (msg, x) => base.internal(msg, x ?? xid),
    activity: (msg, x) => base.activity(msg, x ?? xid),
    child: (service) => loggerWithXid(base.child(service), xid),
    reopen: () => base.reopen(),
  };
}
