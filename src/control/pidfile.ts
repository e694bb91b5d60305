/**
 * Pid files of listeners, laid out as osrf_control does: `<pid dir>/<service>.pid`, one
 * decimal pid and a newline.
 *
 * A listener started with `--pid-file FILE` writes FILE once it is serving and removes it
 * when it exits. A pid in a file counts as that listener only while the process is alive
 * *and* its command line carries `--pid-file FILE`: C and Perl listeners (same process
 * title) and unrelated processes that reused the pid are never signalled.
 */
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

/** `<pidDir>/<service>.pid`. */
export function pidFilePath(pidDir: string, service: string): string {
  return join(resolve(pidDir), `${service}.pid`);
}

/** Services that have a pid file in `pidDir` (any `*.pid`, sorted); [] if the directory is missing. */
export function pidFileServices(pidDir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(pidDir);
  } catch {
    return [];
  }
  return names
    .filter((n) => n.endsWith(".pid") && n.length > 4)
    .map((n) => n.slice(0, -4))
    .sort();
}

/** The pid in a pid file; undefined when missing, unreadable or not a pid. */
export function readPidFile(file: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
  const m = /^\s*(\d+)\s*$/.exec(text);
  const pid = m ? Number(m[1]) : NaN;
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

/** Writes `pid` to `file` atomically (creating its directory), so a reader never sees half a file. */
export function writePidFile(file: string, pid = process.pid): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = openSync(tmp, "w", 0o644);
  try {
    writeSync(fd, `${pid}\n`);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}

/**
 * Removes `file`, but only if it still names `pid` when one is given (a newer listener may
 * have taken it over). Returns true if a file was removed.
 */
export function removePidFile(file: string, pid?: number): boolean {
  if (pid !== undefined && readPidFile(file) !== pid) return false;
  try {
    unlinkSync(file);
    return true;
  } catch {
    return false;
  }
}

/**
 * For `serve --pid-file`: writes this process's pid now (call it once serving) and removes
 * the file when the process exits normally. After SIGKILL the file stays and is found stale.
 */
export function claimPidFile(file: string): void {
  const abs = resolve(file);
  writePidFile(abs);
  process.on("exit", () => removePidFile(abs, process.pid));
}

/** What a pid file's pid is now. */
export type PidState =
  /** Alive and started with `--pid-file` of this file. */
  | "ours"
  /** Alive and titled `OpenSRF Listener [<service>]`, but not ours: a C or Perl listener. */
  | "other-listener"
  /** An unrelated process has that pid now: the file is stale. */
  | "reused"
  /** No such process (or a zombie): the file is stale. */
  | "gone";

/** The command line of a process, split at NULs; undefined if it cannot be read. */
export function processArgs(pid: number): string[] | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    return raw.split("\0").slice(0, raw.endsWith("\0") ? -1 : undefined);
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
  try {
    // A zombie answers kill(0) until its parent reaps it, yet it has stopped.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true;
  }
}

/** True when `args` contain `--pid-file FILE` (either form) for this `file`. */
export function argsClaim(args: readonly string[], file: string): boolean {
  const abs = resolve(file);
  return args.some((a, i) => (a === "--pid-file" && args[i + 1] === abs) || a === `--pid-file=${abs}`);
}

/** Classifies `pid`, read from the pid file `file` of `service`. */
export function pidState(pid: number, file: string, service: string): PidState {
  if (!isAlive(pid)) return "gone";
  const args = processArgs(pid);
  // Without /proc (not Linux) the command line cannot be checked: trust the file.
  if (args === undefined) return process.platform === "linux" ? "gone" : "ours";
  if (argsClaim(args, file)) return "ours";
  return args[0]?.startsWith(`OpenSRF Listener [${service}]`) ? "other-listener" : "reused";
}

/**
 * Live processes started with `--pid-file FILE` (e.g. a listener whose pid file was
 * deleted). Linux only; [] elsewhere.
 */
export function processesClaiming(file: string): number[] {
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return [];
  }
  const pids: number[] = [];
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (pid === process.pid) continue;
    const args = processArgs(pid);
    if (args && argsClaim(args, file) && isAlive(pid)) pids.push(pid);
  }
  return pids;
}
