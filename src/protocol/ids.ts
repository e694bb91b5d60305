/**
 * Identifiers in the forms the C library builds: session threads, transaction ids (xid) and
 * XMPP resources. Peers treat them as opaque, but logs and tools are easier to read when
 * they look the same as those of C processes.
 */

let lastMicros = 0;

// Wall-clock microseconds that never repeat within this process: a call in the same
// microsecond as the previous one gets the next microsecond, which acts as a counter.
function uniqueMicros(): number {
  const now = Math.floor((performance.timeOrigin + performance.now()) * 1000);
  lastMicros = now > lastMicros ? now : lastMicros + 1;
  return lastMicros;
}

// C prints get_timestamp_millis() with "%f": seconds, a dot, six digits of microseconds.
function timestamp(micros: number): string {
  const secs = Math.floor(micros / 1_000_000);
  const usec = micros % 1_000_000;
  return `${secs}.${String(usec).padStart(6, "0")}`;
}

/**
 * A session thread id, as C's `osrfAppSessionClientInit` builds it:
 * `<epoch secs>.<usec, 6 digits>.<digits><pid>`, e.g. `1795547651.059807.179554765128979`.
 *
 * C fills the third part with `time(NULL)`; here it is 10 random digits, so threads of
 * processes with the same pid on different hosts do not collide. The time part never
 * repeats within a process, so every call returns a new id.
 *
 * @param pid Process id to embed; defaults to this process.
 */
export function makeThread(pid: number = process.pid): string {
  const random = 1_000_000_000 + Math.floor(Math.random() * 9_000_000_000);
  return `${timestamp(uniqueMicros())}.${random}${pid}`;
}

let xidPrefix: string | undefined;
let xidCounter = 0;

/**
 * A transaction id, as C's `osrfLogMkXid` builds it: `<epoch secs at first use><pid><counter>`,
 * the counter starting at 0 and growing by one per call (e.g. `1795547651289790`,
 * `1795547651289791`, …). The prefix is fixed per process, so every call returns a new id.
 */
export function makeXid(): string {
  xidPrefix ??= `${Math.floor(Date.now() / 1000)}${process.pid}`;
  return `${xidPrefix}${xidCounter++}`;
}

/**
 * An XMPP resource, as C builds it: `<prefix>_<host>_<epoch secs>.<usec>_<pid>`.
 *
 * Use prefix "" for plain clients (`_host_1795547644.616476_28923`), `<service>_listener`
 * and `<service>_drone` for servers. Successive calls in one process never repeat.
 *
 * @param prefix Role prefix, e.g. "opensrf.math_listener", or "".
 * @param host Host name as it should appear in the resource.
 * @param pid Process id to embed; defaults to this process.
 */
export function makeResource(prefix: string, host: string, pid: number = process.pid): string {
  return `${prefix}_${host}_${timestamp(uniqueMicros())}_${pid}`;
}
