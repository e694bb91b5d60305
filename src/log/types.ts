/**
 * Logger used by every role. Lines follow the OpenSRF format:
 * `<service> <YYYY-MM-DD HH:MM:SS> [<LEVEL>:<pid>:<file>:<line>:<xid>] <text>`.
 */

/** OpenSRF log levels as numbers in config: 1 error … 5 internal. */
export const LogLevel = {
  NONE: 0,
  ERROR: 1,
  WARNING: 2,
  INFO: 3,
  DEBUG: 4,
  INTERNAL: 5,
  /** Activity lines (one per request); written whenever level ≥ info. */
  ACTIVITY: 3,
} as const;

export interface Logger {
  error(msg: string, xid?: string): void;
  warn(msg: string, xid?: string): void;
  info(msg: string, xid?: string): void;
  debug(msg: string, xid?: string): void;
  internal(msg: string, xid?: string): void;
  /**
   * One line per request, tagged ACT. C services write `CALL: <service> <method> <params>`
   * (see `formatCall` in redact.ts, which also applies log_protect).
   */
  activity(msg: string, xid?: string): void;
  /**
   * Whether lines of `level` are written. Optional: callers that build a costly line (the
   * activity line formats every request's parameters) ask first; without it they assume yes.
   */
  enabled?(level: number): boolean;
  /** A logger writing to the same sink with another service tag. */
  child(service: string): Logger;
  /** Reopen a log file (after logrotate). */
  reopen(): void;
}

/** Logging settings shared by every role, as opensrf_core.xml gives them (`<logfile>`, `<loglevel>`, …). */
export interface LogConfig {
  /** A file path, "syslog", or "stderr"/"-" (our addition). */
  logfile: string;
  /** 0 none … 5 internal. */
  loglevel: number;
  /** syslog facility, e.g. "local2". */
  syslog?: string;
  /** syslog facility for activity lines. */
  actlog?: string;
  /** Tag appended to the service name in log lines and the syslog ident ("svc/tag"). */
  logtag?: string;
  /** `<loglength>`: longest message text sent to syslog (C default 1536 bytes). */
  loglength?: number;
}
