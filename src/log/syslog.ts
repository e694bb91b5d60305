/**
 * Sending lines to the local syslog daemon the way glibc's syslog(3) does: RFC 3164
 * datagrams on the unix datagram socket /dev/log. Neither Bun nor node:dgram speak unix
 * datagram sockets, so the socket calls go through libc via bun:ffi.
 */
import { dlopen, FFIType, ptr } from "bun:ffi";

/** Severity numbers (RFC 5424 / syslog.h) used for OpenSRF's levels. */
export const SyslogSeverity = { ERR: 3, WARNING: 4, INFO: 6, DEBUG: 7 } as const;

/** Facility code of LOG_LOCAL0; LOG_LOCALn is this plus n. */
const LOCAL0 = 16;

/**
 * Facility code for a config value such as "local2", following C's
 * `osrfLogFacilityToInt`: the sixth character picks local0–local7, anything else
 * (including a missing value) gives `fallback` (C uses local0 for `<syslog>` and local1 for
 * `<actlog>`).
 */
export function syslogFacility(name: string | undefined, fallback: number): number {
  const digit = name && name.length >= 6 ? name.charCodeAt(5) - 48 : -1;
  return digit >= 0 && digit <= 7 ? LOCAL0 + digit : fallback;
}

/** LOG_LOCAL0: C's facility for ordinary lines. */
export const FACILITY_LOCAL0 = LOCAL0;
/** LOG_LOCAL1: C's facility for activity lines. */
export const FACILITY_LOCAL1 = LOCAL0 + 1;

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/**
 * One datagram as glibc formats it: `<PRI>Mmm dd hh:mm:ss ident: message` (local time,
 * day padded with a space, no pid since OpenSRF opens the log without LOG_PID).
 */
export function syslogDatagram(
  facility: number,
  severity: number,
  ident: string,
  message: string,
  time: number,
): string {
  const d = new Date(time);
  const day = String(d.getDate()).padStart(2, " ");
  const hms = [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, "0")).join(":");
  return `<${facility * 8 + severity}>${MONTHS[d.getMonth()]} ${day} ${hms} ${ident}: ${message}`;
}

/** A connected syslog socket. */
export interface SyslogSocket {
  /** Sends one datagram; false when it could not be sent (even after one reconnect). */
  send(datagram: string): boolean;
  close(): void;
}

interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  connect(fd: number, addr: unknown, len: number): number;
  send(fd: number, buf: unknown, len: number, flags: number): number | bigint;
  close(fd: number): number;
}

const IS_DARWIN = process.platform === "darwin";
const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = IS_DARWIN ? 0 : 0x80000;
// Never block the event loop on a slow daemon, never die of SIGPIPE.
const SEND_FLAGS = IS_DARWIN ? 0x80 : 0x40 | 0x4000;

let libc: Libc | null | undefined;

function loadLibc(): Libc | null {
  if (libc !== undefined) return libc;
  const names = IS_DARWIN ? ["libc.dylib", "libSystem.B.dylib"] : ["libc.so.6", "libc.so"];
  for (const name of names) {
    try {
      const lib = dlopen(name, {
        socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
        connect: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
        send: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i64 },
        close: { args: [FFIType.i32], returns: FFIType.i32 },
      });
      libc = lib.symbols as unknown as Libc;
      return libc;
    } catch {
      // try the next name
    }
  }
  libc = null;
  return libc;
}

function sockaddrUn(path: string): Uint8Array {
  const bytes = new TextEncoder().encode(path);
  const addr = new Uint8Array(2 + bytes.length + 1);
  if (IS_DARWIN) {
    addr[0] = addr.length; // sun_len
    addr[1] = AF_UNIX;
  } else {
    addr[0] = AF_UNIX; // sa_family_t, little-endian on every Linux target Bun supports
  }
  addr.set(bytes, 2);
  return addr;
}

function connectFd(lib: Libc, path: string): number {
  const fd = lib.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const addr = sockaddrUn(path);
  if (lib.connect(fd, ptr(addr), addr.length) !== 0) {
    lib.close(fd);
    return -1;
  }
  return fd;
}

/**
 * Connects to a syslog socket (default /dev/log; /var/run/syslog on macOS).
 * @returns undefined when the socket does not exist or cannot be used, so the caller can
 *   fall back to another sink.
 */
export function openSyslogSocket(path = IS_DARWIN ? "/var/run/syslog" : "/dev/log"): SyslogSocket | undefined {
  const lib = loadLibc();
  if (!lib) return undefined;
  let fd = connectFd(lib, path);
  if (fd < 0) return undefined;
  const encoder = new TextEncoder();

  const sendOnce = (buf: Uint8Array): boolean => fd >= 0 && Number(lib.send(fd, ptr(buf), buf.length, SEND_FLAGS)) >= 0;

  return {
    send(datagram: string): boolean {
      const buf = encoder.encode(datagram);
      if (buf.length === 0) return true;
      if (sendOnce(buf)) return true;
      // The daemon may have restarted (ECONNREFUSED); reconnect once, as glibc does.
      if (fd >= 0) lib.close(fd);
      fd = connectFd(lib, path);
      return sendOnce(buf);
    },
    close(): void {
      if (fd >= 0) lib.close(fd);
      fd = -1;
    },
  };
}
