/**
 * The logger every role uses: OpenSRF-format (or JSON) lines to a file, stderr or syslog,
 * filtered by OpenSRF's numeric levels, with secrets masked.
 */
import { closeSync, openSync, writeSync } from "node:fs";
import { formatJsonLine, formatOsrfBody, formatOsrfLine, type LevelName, type LogRecord } from "./format.ts";
import { maskSecrets } from "./mask.ts";
import {
  FACILITY_LOCAL0,
  FACILITY_LOCAL1,
  openSyslogSocket,
  SyslogSeverity,
  type SyslogSocket,
  syslogDatagram,
  syslogFacility,
} from "./syslog.ts";
import { type LogConfig, type Logger, LogLevel } from "./types.ts";

/** Line format: OpenSRF's (default) or one JSON object per line. */
export type LogFormat = "osrf" | "json";

/** Settings for {@link createLogger}: the configured {@link LogConfig} plus what the caller adds. */
export interface LoggerOptions extends LogConfig {
  /** Service name at the start of each line, e.g. "opensrf.math" or "router". */
  service: string;
  /** Default "osrf". */
  format?: LogFormat;
  /**
   * Written in the file field of each line (C writes its source file name), e.g.
   * "listener" or "drone". Default "osrf-prefork". The line field is always 0.
   */
  component?: string;
  /**
   * Values never to appear in a line (typically the configured passwords); every
   * occurrence is masked, in addition to the password patterns of `maskSecrets`.
   */
  secrets?: readonly string[];
  /** Syslog socket path (default /dev/log). */
  syslogPath?: string;
  /** Clock in epoch milliseconds; for tests. */
  now?: () => number;
}

/** A {@link Logger} that can also be queried and closed. */
export interface OsrfLogger extends Logger {
  /** The configured level. */
  readonly level: number;
  /** True when lines of `level` would be written: lets callers skip costly messages. */
  enabled(level: number): boolean;
  /** Same sink and service, another file field. */
  withComponent(component: string): OsrfLogger;
  child(service: string): OsrfLogger;
  /** Closes the sink (shared with children); later lines go nowhere. */
  close(): void;
}

const NUMERIC: Readonly<Record<LevelName, number>> = {
  error: LogLevel.ERROR,
  warn: LogLevel.WARNING,
  info: LogLevel.INFO,
  debug: LogLevel.DEBUG,
  internal: LogLevel.INTERNAL,
  activity: LogLevel.ACTIVITY,
};

const SEVERITY: Readonly<Record<LevelName, number>> = {
  error: SyslogSeverity.ERR,
  warn: SyslogSeverity.WARNING,
  info: SyslogSeverity.INFO,
  debug: SyslogSeverity.DEBUG,
  internal: SyslogSeverity.DEBUG,
  activity: SyslogSeverity.INFO,
};

/** Where formatted records go. Shared by a logger and its children. */
interface Sink {
  write(record: LogRecord): void;
  reopen(): void;
  close(): void;
}

type Formatter = (record: LogRecord) => string;

/**
 * Creates a logger.
 *
 * Differences from C, on purpose: an activity line is written once, tagged ACT, and only
 * at level 3 or more (C also repeats it as INFO, and writes ACT at every level); stderr
 * lines carry the service and date like file lines (C writes only the bracketed part);
 * a log file is kept open (C reopens it per line) — call `reopen()` after logrotate.
 * A file that cannot be opened, or a missing syslog socket, falls back to stderr with one
 * warning.
 */
export function createLogger(options: LoggerOptions): OsrfLogger {
  const format = options.format ?? "osrf";
  const fileFormatter: Formatter = format === "json" ? formatJsonLine : formatOsrfLine;
  const sink = openSink(options, fileFormatter, format === "json" ? formatJsonLine : formatOsrfBody);
  const tag = options.logtag ? `/${options.logtag}` : "";
  return new SinkLogger(
    sink,
    Math.trunc(options.loglevel),
    `${options.service}${tag}`,
    tag,
    options.component ?? "osrf-prefork",
    options.secrets ?? [],
    options.now ?? Date.now,
  );
}

class SinkLogger implements OsrfLogger {
  constructor(
    private readonly sink: Sink,
    readonly level: number,
    private readonly service: string,
    private readonly tag: string,
    private readonly component: string,
    private readonly secrets: readonly string[],
    private readonly now: () => number,
  ) {}

  enabled(level: number): boolean {
    return level <= this.level;
  }

  error(msg: string, xid?: string): void {
    this.log("error", msg, xid);
  }
  warn(msg: string, xid?: string): void {
    this.log("warn", msg, xid);
  }
  info(msg: string, xid?: string): void {
    this.log("info", msg, xid);
  }
  debug(msg: string, xid?: string): void {
    this.log("debug", msg, xid);
  }
  internal(msg: string, xid?: string): void {
    this.log("internal", msg, xid);
  }
  activity(msg: string, xid?: string): void {
    this.log("activity", msg, xid);
  }

  child(service: string): OsrfLogger {
    const tagged = `${service}${this.tag}`;
    return new SinkLogger(this.sink, this.level, tagged, this.tag, this.component, this.secrets, this.now);
  }

  withComponent(component: string): OsrfLogger {
    return new SinkLogger(this.sink, this.level, this.service, this.tag, component, this.secrets, this.now);
  }

  reopen(): void {
    this.sink.reopen();
  }

  close(): void {
    this.sink.close();
  }

  private log(level: LevelName, msg: string, xid = ""): void {
    if (NUMERIC[level] > this.level) return;
    this.sink.write({
      level,
      service: this.service,
      pid: process.pid,
      file: this.component,
      line: 0,
      xid,
      msg: maskSecrets(msg, this.secrets),
      time: this.now(),
    });
  }
}

function openSink(options: LoggerOptions, lineFormat: Formatter, syslogFormat: Formatter): Sink {
  const target = options.logfile.trim();
  if (target === "stderr" || target === "-" || target === "") return new StderrSink(lineFormat);
  if (target === "syslog") {
    const socket = openSyslogSocket(options.syslogPath);
    if (socket) return new SyslogSink(socket, options, syslogFormat, lineFormat);
    const fallback = new StderrSink(lineFormat);
    fallback.notice(`syslog socket ${options.syslogPath ?? "/dev/log"} is not available; logging to stderr`);
    return fallback;
  }
  return new FileSink(target, lineFormat);
}

function writeStderr(text: string): void {
  try {
    writeSync(2, text);
  } catch {
    // A non-blocking stderr may refuse (EAGAIN); hand it to the stream's buffer then.
    process.stderr.write(text);
  }
}

class StderrSink implements Sink {
  private closed = false;

  constructor(private readonly format: Formatter) {}

  /** A line from the logger itself, outside the level filter. */
  notice(text: string): void {
    writeStderr(`osrf-prefork: warning: ${text}\n`);
  }

  write(record: LogRecord): void {
    if (!this.closed) writeStderr(`${this.format(record)}\n`);
  }

  reopen(): void {}

  close(): void {
    this.closed = true;
  }
}

class FileSink implements Sink {
  private fd = -1;
  private closed = false;
  private warned = false;

  constructor(
    private readonly path: string,
    private readonly format: Formatter,
  ) {
    this.open();
  }

  write(record: LogRecord): void {
    if (this.closed) return;
    const line = `${this.format(record)}\n`;
    if (this.fd >= 0) {
      try {
        writeSync(this.fd, line);
        return;
      } catch (err) {
        this.warn(`cannot write log file ${this.path}: ${(err as Error).message}; logging to stderr`);
        this.closeFd();
      }
    }
    writeStderr(line);
  }

  reopen(): void {
    if (this.closed) return;
    this.closeFd();
    this.warned = false;
    this.open();
  }

  close(): void {
    this.closeFd();
    this.closed = true;
  }

  private open(): void {
    try {
      this.fd = openSync(this.path, "a");
    } catch (err) {
      // C does the same per line: say why, then keep the lines on stderr.
      this.warn(`cannot open log file ${this.path}: ${(err as Error).message}; logging to stderr`);
      this.fd = -1;
    }
  }

  private closeFd(): void {
    if (this.fd >= 0) {
      try {
        closeSync(this.fd);
      } catch {
        // already gone
      }
    }
    this.fd = -1;
  }

  private warn(text: string): void {
    if (this.warned) return;
    this.warned = true;
    writeStderr(`osrf-prefork: warning: ${text}\n`);
  }
}

class SyslogSink implements Sink {
  private readonly facility: number;
  private readonly actFacility: number;
  private readonly maxLength: number;
  private warned = false;
  private closed = false;

  constructor(
    private socket: SyslogSocket | undefined,
    private readonly options: LoggerOptions,
    private readonly format: Formatter,
    private readonly fallbackFormat: Formatter,
  ) {
    this.facility = syslogFacility(options.syslog, FACILITY_LOCAL0);
    this.actFacility = syslogFacility(options.actlog, FACILITY_LOCAL1);
    this.maxLength = (options.loglength ?? 1536) - 1;
  }

  write(record: LogRecord): void {
    if (this.closed) return;
    // C truncates the message (not the bracketed prefix) and marks the cut with "...".
    const keep = Math.max(0, this.maxLength - 3);
    const msg = record.msg.length > keep ? `${record.msg.slice(0, keep)}...` : record.msg;
    const facility = record.level === "activity" ? this.actFacility : this.facility;
    const text = this.format({ ...record, msg });
    const datagram = syslogDatagram(facility, SEVERITY[record.level], record.service, text, record.time);
    if (this.socket?.send(datagram)) return;
    if (!this.warned) {
      this.warned = true;
      writeStderr("osrf-prefork: warning: cannot send to syslog; logging to stderr\n");
    }
    writeStderr(`${this.fallbackFormat(record)}\n`);
  }

  reopen(): void {
    if (this.closed) return;
    this.socket?.close();
    this.socket = openSyslogSocket(this.options.syslogPath);
    this.warned = false;
  }

  close(): void {
    this.socket?.close();
    this.socket = undefined;
    this.closed = true;
  }
}
