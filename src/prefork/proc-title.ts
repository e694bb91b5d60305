/**
 * Process titles, so `ps` tells listeners and drones apart as it does for C OpenSRF:
 *
 * - `ps -o args` (and `ps aux`, `ps -ef`) shows argv. Drones are spawned with
 *   `argv0: "OpenSRF Drone [<service>]"`; the listener re-executes itself once at start-up
 *   (same pid, same arguments) with argv[0] `OpenSRF Listener [<service>]`, because
 *   `process.title` does not change what `ps` shows. What `ps` prints is then e.g.
 *   `OpenSRF Listener [opensrf.math] /path/src/cli.ts serve --service opensrf.math …`
 *   (with the compiled binary: `OpenSRF Listener [opensrf.math] serve --service …`).
 * - `ps -o comm`, `top` and `pgrep` use the kernel's 15-byte `comm`: `osrf-listener` /
 *   `osrf-drone`, written to /proc/self/comm (prctl(PR_SET_NAME) where that fails). Through
 *   libc it would cost every drone's start ~1.3 ms of CPU (and a few ms of wall time) to build
 *   the FFI bindings; the write costs 0.1 ms.
 *
 * Both go through libc with bun:ffi; on other platforms, or if libc cannot be opened,
 * titles are simply left alone.
 */
import { dlopen, FFIType, ptr } from "bun:ffi";
import { writeFileSync } from "node:fs";
import { isCompiled } from "./self-exec.ts";

/** argv[0] of a listener, as C's set_proc_title writes it. */
export function listenerTitle(service: string): string {
  return `OpenSRF Listener [${service}]`;
}

/** argv[0] of a drone. */
export function droneTitle(service: string): string {
  return `OpenSRF Drone [${service}]`;
}

/** `comm` names (at most 15 bytes). */
export const CommName = { listener: "osrf-listener", drone: "osrf-drone" } as const;

const PR_SET_NAME = 15;
/** Set before re-executing, so the new image never re-executes again. */
const RETITLED_MARK = "OSRF_PREFORK_RETITLED";

const SYMBOLS = {
  prctl: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.u64, FFIType.u64], returns: FFIType.i32 },
  execv: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  setenv: { args: [FFIType.ptr, FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
} as const;

type Libc = ReturnType<typeof dlopen<typeof SYMBOLS>>["symbols"];
let libc: Libc | null | undefined;

function openLibc(): Libc | null {
  if (libc !== undefined) return libc;
  libc = null;
  if (process.platform !== "linux") return libc;
  for (const name of ["libc.so.6", `libc.musl-${process.arch === "arm64" ? "aarch64" : "x86_64"}.so.1`]) {
    try {
      libc = dlopen(name, SYMBOLS).symbols;
      break;
    } catch {
      // Try the next name (glibc, then musl).
    }
  }
  return libc;
}

function cstring(s: string): Buffer {
  return Buffer.from(`${s}\0`, "utf8");
}

/** Sets the kernel's `comm` of this process (truncated to 15 bytes). Returns false if not possible. */
export function setCommName(name: string): boolean {
  if (process.platform !== "linux") return false;
  try {
    // The main thread's comm, which ps and top show for the process (what prctl would set:
    // JavaScript runs on the main thread).
    writeFileSync("/proc/self/comm", name.slice(0, 15));
    return true;
  } catch {
    // No /proc (some chroots): through libc.
  }
  const c = openLibc();
  if (!c) return false;
  const buf = cstring(name);
  return c.prctl(PR_SET_NAME, ptr(buf), 0n, 0n, 0n) === 0;
}

/**
 * Replaces this process image with itself, same pid and arguments, with argv[0] set to
 * `title`. Call it first thing, before opening sockets or starting work. Returns only when
 * nothing was done: already titled, not Linux, or execv failed.
 */
export function reexecWithTitle(title: string): void {
  const marked = process.env[RETITLED_MARK] === "1";
  // Not for our children: a drone's own child could be a listener needing its title.
  delete process.env[RETITLED_MARK];
  if (marked || process.argv0 === title) return;
  const c = openLibc();
  if (!c) return;
  // Compiled: argv is [binary, …user args]; else [bun, …bun flags, script, …user args].
  const rest = isCompiled() ? process.argv.slice(2) : [...process.execArgv, ...process.argv.slice(1)];
  const strings = [title, ...rest].map(cstring);
  const argv = new BigUint64Array(strings.length + 1);
  for (const [i, b] of strings.entries()) argv[i] = BigInt(ptr(b));
  const mark = [cstring(RETITLED_MARK), cstring("1")] as const;
  c.setenv(ptr(mark[0]), ptr(mark[1]), 1);
  const path = cstring(process.execPath);
  c.execv(ptr(path), ptr(argv));
  // Still here: execv failed. Run untitled rather than not at all.
}
