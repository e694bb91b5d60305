/**
 * The `start`, `stop` and `restart` subcommands: options shared by the three, reading the
 * host's plan, and the report and exit code.
 */
import { hostname } from "node:os";
import { resolve } from "node:path";
import { readCoreConfig } from "../config/core.ts";
import { DEFAULT_PID_DIR, pidDirOf, settingsFileOf } from "../config/defaults.ts";
import { ConfigError } from "../config/errors.ts";
import { hostConfig, readSettingsFile } from "../config/settings.ts";
import { type ServiceReport, servicesWithPidFiles, startServices, stopServices } from "../control/control.ts";
import { type PlannedService, planHost } from "../control/plan.ts";
import { statusSocketPath } from "../metrics/index.ts";
import { coreConfigArg, SETTINGS_FILE_DEFAULT } from "./config-args.ts";

/** Exit codes of start, stop and restart. */
export const ControlExit = {
  OK: 0,
  /** At least one service failed to start or to stop. */
  FAILED: 1,
  /** Bad command line, opensrf_core.xml or opensrf.xml. */
  USAGE: 2,
} as const;

/** citty argument definitions shared by start, stop and restart. */
export const controlArgs = {
  service: { type: "string", description: "Act on this service only" },
  all: {
    type: "boolean",
    description: "Act on every service: start: the host's activeapps; stop: every pid file in the pid dir",
    default: false,
  },
  config: {
    ...coreConfigArg("opensrf_core.xml, passed to each listener"),
  },
  settings: {
    type: "string",
    description: `opensrf.xml (default: ${SETTINGS_FILE_DEFAULT})`,
  },
  host: {
    type: "string",
    description: "Host name under /opensrf/hosts (default: $OSRF_HOSTNAME, else this machine's name)",
  },
  localhost: { type: "boolean", description: "Same as --host localhost (osrf_control's --localhost)", default: false },
  "pid-dir": {
    type: "string",
    description: `Pid files <dir>/<service>.pid (default: dirs/pid of opensrf.xml, else ${DEFAULT_PID_DIR})`,
  },
  "log-dir": {
    type: "string",
    description:
      "Listener stdout/stderr go to <dir>/<service>.log (default: dirs/log of opensrf.xml, else the pid dir)",
  },
  timeout: {
    type: "string",
    description:
      "Seconds to wait for each listener: start: until serving (30); stop: after SIGTERM before SIGINT, SIGKILL (40)",
  },
  quiet: { type: "boolean", description: "Print only failures", default: false },
} as const;

/** Parsed values of {@link controlArgs}. */
export interface ControlArgs {
  service?: string;
  all: boolean;
  config: string;
  settings?: string;
  host?: string;
  localhost: boolean;
  "pid-dir"?: string;
  "log-dir"?: string;
  timeout?: string;
  quiet: boolean;
}

/** A usage or configuration problem: one line, exit 2. */
class UsageError extends Error {}

interface Resolved {
  host: string;
  settings: string;
  pidDir: string;
  logDir: string;
  plan?: PlannedService[];
}

function hostOf(a: ControlArgs): string {
  return a.localhost ? "localhost" : a.host || process.env.OSRF_HOSTNAME || hostname();
}

function selection(a: ControlArgs): void {
  if (a.all && a.service) throw new UsageError("give either --service S or --all, not both");
  if (!a.all && !a.service) throw new UsageError("give --service S or --all");
}

function seconds(a: ControlArgs, fallback: number): number {
  if (a.timeout === undefined) return fallback * 1000;
  const n = Number(a.timeout);
  if (!Number.isFinite(n) || n <= 0)
    throw new UsageError(`--timeout must be a positive number of seconds, got "${a.timeout}"`);
  return n * 1000;
}

/** `--settings`, else the one opensrf_core.xml names (read only when needed). */
function settingsFileFor(a: ControlArgs): string {
  return resolve(a.settings || settingsFileOf(readCoreConfig(a.config)));
}

/** Reads what start needs: opensrf.xml, the plan, and the directories. */
function resolveForStart(a: ControlArgs): Resolved & { plan: PlannedService[] } {
  // Every listener would fail on a bad opensrf_core.xml: say so once, before starting any.
  readCoreConfig(a.config);
  const host = hostOf(a);
  const settings = settingsFileFor(a);
  const tree = readSettingsFile(settings);
  const plan = planHost(tree, host, settings);
  const dirs = hostConfig(tree, host);
  const pidDir = resolve(pidDirOf(dirs, a["pid-dir"]));
  const logDir = resolve(a["log-dir"] ?? plan.logDir ?? pidDir);
  let services = plan.services;
  if (a.service) {
    const one = services.find((p) => p.service === a.service);
    if (!one) {
      throw new UsageError(
        `${a.service} is not configured to run on host ${host} (not in /opensrf/hosts/${host}/activeapps/appname of ${settings}${plan.hostKnown ? "" : `, which has no host ${host}: pass --host`})`,
      );
    }
    if (one.kind === "skip") throw new UsageError(`${a.service}: ${one.reason}`);
    services = [one];
  } else if (services.length === 0) {
    throw new UsageError(
      `no services are configured to run on host ${host} (${settings}: /opensrf/hosts/${host}/activeapps/appname is empty${plan.hostKnown ? "" : "; no such host: pass --host"})`,
    );
  }
  return { host, settings, pidDir, logDir, plan: services };
}

/** The pid dir for stop: --pid-dir, else dirs/pid of opensrf.xml if it can be read, else the default. */
function pidDirForStop(a: ControlArgs): string {
  if (a["pid-dir"]) return resolve(a["pid-dir"]);
  try {
    return resolve(pidDirOf(hostConfig(readSettingsFile(settingsFileFor(a)), hostOf(a))));
  } catch {
    // stop must work even when opensrf.xml is gone or broken.
    return DEFAULT_PID_DIR;
  }
}

function printer(a: ControlArgs): (r: ServiceReport) => void {
  return (r) => {
    if (r.ok && a.quiet) return;
    (r.ok ? process.stdout : process.stderr).write(`${r.service}: ${r.message}\n`);
  };
}

/** Runs one of the commands; returns the exit code (one line on stderr for usage errors). */
export async function runControl(command: "start" | "stop" | "restart", a: ControlArgs): Promise<number> {
  try {
    selection(a);
    const print = printer(a);
    let ok = true;
    if (command === "stop" || command === "restart") {
      const pidDir = command === "restart" ? resolveForStart(a).pidDir : pidDirForStop(a);
      const services = a.service ? [a.service] : servicesWithPidFiles(pidDir);
      if (services.length === 0 && !a.quiet) process.stdout.write(`no pid files in ${pidDir}: nothing to stop\n`);
      ok = await stopServices(services, { pidDir, timeoutMs: seconds(a, 40) }, print);
    }
    if (command === "start" || command === "restart") {
      const r = resolveForStart(a);
      ok =
        (await startServices(
          r.plan,
          {
            pidDir: r.pidDir,
            logDir: r.logDir,
            config: resolve(a.config),
            settings: r.settings,
            host: r.host,
            timeoutMs: seconds(a, 30),
            statusSocket: statusSocketPath,
          },
          print,
        )) && ok;
    }
    return ok ? ControlExit.OK : ControlExit.FAILED;
  } catch (e) {
    if (e instanceof UsageError || e instanceof ConfigError) {
      process.stderr.write(`osrf-prefork ${command}: ${e.message}\n`);
      return ControlExit.USAGE;
    }
    throw e;
  }
}
