/**
 * Log line formats: OpenSRF's own (what C's log.c writes, so existing log tooling keeps
 * working) and one JSON object per line for `--log-format json`.
 */

/** Level of one log record. */
export type LevelName = "error" | "warn" | "info" | "debug" | "internal" | "activity";

/** Everything a formatter needs for one line. */
export interface LogRecord {
  level: LevelName;
  /** Service name, with "/logtag" appended when a tag is configured (as C does). */
  service: string;
  pid: number;
  /** Source of the line: C writes the .c file; we write a component name. */
  file: string;
  /** Source line; 0 when unknown (we never pay for a stack trace on the hot path). */
  line: number;
  /** Transaction id, "" when none. */
  xid: string;
  msg: string;
  /** Epoch milliseconds. */
  time: number;
}

/** The level labels C's `_osrfLogDetail` writes (note the padded "ERR " and "INT "). */
export const LEVEL_LABELS: Readonly<Record<LevelName, string>> = {
  error: "ERR ",
  warn: "WARN",
  info: "INFO",
  debug: "DEBG",
  internal: "INT ",
  activity: "ACT",
};

/**
 * Matches one OpenSRF-format file line. Groups: 1 service, 2 date, 3 label, 4 pid,
 * 5 file, 6 line, 7 xid, 8 message.
 */
export const OSRF_LINE_PATTERN =
  /^(\S+) (\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) \[(ERR |WARN|INFO|DEBG|INT |ACT):(\d+):([^:\]]*):(\d+):([^\]]*)\] (.*)$/s;

let stampSecond = -1;
let stampText = "";

/**
 * Local time as `YYYY-MM-DD HH:MM:SS` (C: strftime of localtime). Cached per second:
 * consecutive lines almost always share it.
 */
export function formatOsrfTimestamp(time: number): string {
  const second = Math.floor(time / 1000);
  if (second !== stampSecond) {
    const d = new Date(second * 1000);
    stampText =
      `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ` +
      `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
    stampSecond = second;
  }
  return stampText;
}

/** `[LEVEL:pid:file:line:xid] msg`: what C sends to syslog and to stderr. */
export function formatOsrfBody(r: LogRecord): string {
  return `[${LEVEL_LABELS[r.level]}:${r.pid}:${r.file}:${r.line}:${r.xid}] ${r.msg}`;
}

/**
 * A log-file line as C writes it (without the newline):
 * `<service> <YYYY-MM-DD HH:MM:SS> [<LEVEL>:<pid>:<file>:<line>:<xid>] <text>`.
 */
export function formatOsrfLine(r: LogRecord): string {
  return `${r.service} ${formatOsrfTimestamp(r.time)} ${formatOsrfBody(r)}`;
}

/**
 * One JSON object per line (without the newline):
 * `{"ts","level","service","pid","xid","file","msg"}`, ts in ISO 8601 UTC with
 * milliseconds, level one of error/warn/info/debug/internal/activity.
 */
export function formatJsonLine(r: LogRecord): string {
  return JSON.stringify({
    ts: new Date(r.time).toISOString(),
    level: r.level,
    service: r.service,
    pid: r.pid,
    xid: r.xid,
    file: r.file,
    msg: r.msg,
  });
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}
