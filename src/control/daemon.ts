/**
 * Starting a listener as a daemon and stopping it again, given its pid file.
 */
import { closeSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { isCompiled } from "../prefork/self-exec.ts";
import { pidState, readPidFile, removePidFile } from "./pidfile.ts";

/** This program's command line for one subcommand: the binary itself, or bun with src/cli.ts. */
export function selfCommand(subcommand: string): string[] {
  return isCompiled()
    ? [process.execPath, subcommand]
    : [process.execPath, resolve(import.meta.dir, "../cli.ts"), subcommand];
}

/** How a daemon start ended. */
export type StartOutcome =
  | { kind: "ready"; pid: number }
  | { kind: "exited"; pid: number; code: number | null; signal: string | null; lastLine: string }
  | { kind: "timeout"; pid: number };

/**
 * Starts `cmd` detached — own session and process group (so it outlives us and a terminal
 * hang-up), stdin from /dev/null, stdout and stderr appended to `logFile`, cwd `/` — and
 * waits until it writes its pid to `pidFile` (it does so once serving), exits, or
 * `timeoutMs` passes. On timeout the process is left running.
 */
export async function startDaemon(
  cmd: string[],
  logFile: string,
  pidFile: string,
  timeoutMs: number,
): Promise<StartOutcome> {
  mkdirSync(dirname(logFile), { recursive: true });
  const out = openSync(logFile, "a", 0o640);
  const startSize = fileSize(logFile);
  let proc: Bun.Subprocess;
  try {
    proc = Bun.spawn({ cmd, cwd: "/", detached: true, stdin: "ignore", stdout: out, stderr: out, env: process.env });
  } finally {
    closeSync(out);
  }
  proc.unref();
  let exited: { code: number | null; signal: string | null } | undefined;
  void proc.exited.then(() => {
    exited = { code: proc.exitCode, signal: proc.signalCode === null ? null : String(proc.signalCode) };
  });
  const end = performance.now() + timeoutMs;
  for (;;) {
    if (readPidFile(pidFile) === proc.pid) return { kind: "ready", pid: proc.pid };
    if (exited) return { kind: "exited", pid: proc.pid, ...exited, lastLine: lastLine(logFile, startSize) };
    if (performance.now() > end) return { kind: "timeout", pid: proc.pid };
    await Bun.sleep(50);
  }
}

function fileSize(file: string): number {
  try {
    return Bun.file(file).size;
  } catch {
    return 0;
  }
}

/** The last non-empty line written to `file` after byte `from` ("" if none). */
function lastLine(file: string, from: number): string {
  try {
    const text = readFileSync(file).subarray(from).toString("utf8");
    return text.trim().split("\n").pop()?.trim() ?? "";
  } catch {
    return "";
  }
}

/** How a stop ended. */
export type StopOutcome =
  /** Exited after `signal` (the last one sent). */
  | { kind: "stopped"; signal: NodeJS.Signals; seconds: number }
  /** Still there after SIGKILL of its process group. */
  | { kind: "stuck" };

/** Escalation after the graceful stop times out: SIGINT (immediate stop) gets this long, then SIGKILL. */
const INT_GRACE_MS = 5_000;
const KILL_GRACE_MS = 5_000;

/**
 * Stops the listener `pid` of `pidFile`: SIGTERM (graceful: busy drones finish), then after
 * `timeoutMs` SIGINT (immediate), then SIGKILL to its whole process group (listener and
 * drones). Removes the pid file once the process is gone.
 */
export async function stopDaemon(
  pid: number,
  pidFile: string,
  service: string,
  timeoutMs: number,
): Promise<StopOutcome> {
  const started = performance.now();
  const steps: Array<[NodeJS.Signals, number]> = [
    ["SIGTERM", timeoutMs],
    ["SIGINT", INT_GRACE_MS],
    ["SIGKILL", KILL_GRACE_MS],
  ];
  for (const [signal, wait] of steps) {
    send(pid, signal, signal === "SIGKILL" && leadsOwnGroup(pid));
    if (await gone(pid, pidFile, service, wait)) {
      removePidFile(pidFile, pid);
      return { kind: "stopped", signal, seconds: Math.round((performance.now() - started) / 100) / 10 };
    }
  }
  return { kind: "stuck" };
}

function send(pid: number, signal: NodeJS.Signals, group: boolean): void {
  try {
    process.kill(group ? -pid : pid, signal);
  } catch {
    // Gone already: the wait below notices.
  }
}

/** True when `pid` is a process group leader (a daemon we started is), so -pid reaches its drones too. */
function leadsOwnGroup(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[2]) === pid;
  } catch {
    return false;
  }
}

async function gone(pid: number, pidFile: string, service: string, ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  for (;;) {
    if (pidState(pid, pidFile, service) !== "ours") return true;
    if (performance.now() > end) return false;
    await Bun.sleep(50);
  }
}
