/**
 * `start`, `stop` and `restart` of a host's services, as osrf_control does for Perl and C:
 * one detached listener per service with a pid file, stopped by signal.
 */
import { join, resolve } from "node:path";
import { selfCommand, startDaemon, stopDaemon } from "./daemon.ts";
import {
  type PidState,
  pidFilePath,
  pidFileServices,
  pidState,
  processesClaiming,
  readPidFile,
  removePidFile,
  writePidFile,
} from "./pidfile.ts";
import type { PlannedService } from "./plan.ts";

/** What starting needs besides the plan. */
export interface StartOptions {
  pidDir: string;
  /** Where each listener's stdout/stderr go, as `<logDir>/<service>.log`. */
  logDir: string;
  /** opensrf_core.xml and opensrf.xml, passed on to every listener. */
  config: string;
  settings: string;
  host: string;
  /** How long to wait for each listener to report it is serving. */
  timeoutMs: number;
  /** Status socket for a service, when listeners take `--status-socket`. */
  statusSocket?: (pidDir: string, service: string) => string;
  /** Extra arguments for every listener (e.g. `--loglevel 4`). */
  extraArgs?: string[];
}

/** One line of the report: a service and what happened to it. */
export interface ServiceReport {
  service: string;
  /** False when this service makes the command fail. */
  ok: boolean;
  message: string;
}

/** The `serve`/`settings` command line for one planned service. */
export function listenerCommand(p: Exclude<PlannedService, { kind: "skip" }>, o: StartOptions): string[] {
  const common = [
    "--config",
    resolve(o.config),
    "--settings",
    resolve(o.settings),
    "--host",
    o.host,
    "--pid-file",
    pidFilePath(o.pidDir, p.service),
    ...(o.statusSocket ? ["--status-socket", o.statusSocket(resolve(o.pidDir), p.service)] : []),
    ...(o.extraArgs ?? []),
  ];
  return p.kind === "settings"
    ? [...selfCommand("settings"), ...common]
    : [...selfCommand("serve"), "--service", p.service, "--app", p.app, ...common];
}

/**
 * Starts each planned service not already running. The settings server goes first and is
 * waited for; the rest start together. Skipped services are reported, never failures.
 */
export async function startServices(
  plan: PlannedService[],
  o: StartOptions,
  report: (r: ServiceReport) => void,
): Promise<boolean> {
  let ok = true;
  const startOne = async (p: PlannedService): Promise<void> => {
    const r = await startService(p, o);
    ok &&= r.ok;
    report(r);
  };
  const first = plan.filter((p) => p.kind === "settings");
  for (const p of first) await startOne(p);
  await Promise.all(plan.filter((p) => p.kind !== "settings").map(startOne));
  return ok;
}

async function startService(p: PlannedService, o: StartOptions): Promise<ServiceReport> {
  const { service } = p;
  if (p.kind === "skip") return { service, ok: true, message: `skipped: ${p.reason}` };
  const file = pidFilePath(o.pidDir, service);
  const notes: string[] = [];
  const pid = readPidFile(file);
  const state = pid === undefined ? undefined : pidState(pid, file, service);
  if (state === "ours") return { service, ok: true, message: `already running (pid ${pid})` };
  if (state === "other-listener") {
    return {
      service,
      ok: false,
      message: `pid file ${file} names pid ${pid}, a listener not started by osrf-prefork (osrf_control's?); stop that one first`,
    };
  }
  const orphan = processesClaiming(file)[0];
  if (orphan !== undefined) {
    writePidFile(file, orphan);
    return {
      service,
      ok: true,
      message: `already running (pid ${orphan}); its missing pid file ${file} was written again`,
    };
  }
  if (removePidFile(file)) notes.push(`removed ${staleWhy(file, pid, state)}`);
  const log = join(resolve(o.logDir), `${service}.log`);
  const outcome = await startDaemon(listenerCommand(p, o), log, file, o.timeoutMs);
  const prefix = notes.length ? `${notes.join("; ")}; ` : "";
  switch (outcome.kind) {
    case "ready":
      return { service, ok: true, message: `${prefix}started (pid ${outcome.pid}, log ${log})` };
    case "exited": {
      const how = outcome.signal ? `was killed by ${outcome.signal}` : `exited with code ${outcome.code}`;
      const why = outcome.lastLine ? `: ${outcome.lastLine}` : "";
      return { service, ok: false, message: `${prefix}failed: ${how} during start-up${why} (log ${log})` };
    }
    case "timeout":
      return {
        service,
        ok: false,
        message: `${prefix}not serving after ${o.timeoutMs / 1000} s (pid ${outcome.pid} left running; see ${log}, or stop it)`,
      };
  }
}

/** Stops the listeners of `services` found through their pid files in `pidDir`. */
export async function stopServices(
  services: string[],
  o: { pidDir: string; timeoutMs: number },
  report: (r: ServiceReport) => void,
): Promise<boolean> {
  const results = await Promise.all(services.map((s) => stopService(s, o)));
  for (const r of results) report(r);
  return results.every((r) => r.ok);
}

async function stopService(service: string, o: { pidDir: string; timeoutMs: number }): Promise<ServiceReport> {
  const file = pidFilePath(o.pidDir, service);
  const recorded = readPidFile(file);
  const state = recorded === undefined ? undefined : pidState(recorded, file, service);
  if (state === "other-listener") {
    // osrf_control may share the pid directory: its listeners are its business.
    return { service, ok: true, message: `left alone: pid ${recorded} is a listener not started by osrf-prefork` };
  }
  let pid = state === "ours" ? recorded : undefined;
  let note = "";
  if (pid === undefined) {
    const orphan = processesClaiming(file)[0];
    if (removePidFile(file)) note = `removed ${staleWhy(file, recorded, state)}; `;
    if (orphan === undefined) return { service, ok: true, message: `${note}not running` };
    pid = orphan;
    note += "found running without its pid file; ";
  }
  const outcome = await stopDaemon(pid, file, service, o.timeoutMs);
  if (outcome.kind === "stuck")
    return { service, ok: false, message: `${note}pid ${pid} is still running after SIGKILL` };
  const how =
    outcome.signal === "SIGTERM"
      ? "SIGTERM"
      : `${outcome.signal}, after not stopping within ${o.timeoutMs / 1000} s of SIGTERM`;
  return { service, ok: true, message: `${note}stopped (pid ${pid}, ${how}, ${outcome.seconds} s)` };
}

function staleWhy(file: string, pid: number | undefined, state: PidState | undefined): string {
  if (pid === undefined) return `unreadable pid file ${file}`;
  return `stale pid file ${file} (pid ${pid} ${state === "reused" ? "is now another program" : "is gone"})`;
}

/** Services `stop --all` acts on: every pid file in the directory. */
export function servicesWithPidFiles(pidDir: string): string[] {
  return pidFileServices(pidDir);
}
