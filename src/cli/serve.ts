/**
 * `osrf-prefork serve`: one prefork service (listener and drones) from a service module, with its
 * settings from opensrf.xml or the opensrf.settings service.
 */
import { hostname } from "node:os";
import { defineCommand } from "citty";
import { claimPidFile } from "../control/pidfile.ts";
import { CommName, listenerTitle, reexecWithTitle, setCommName } from "../prefork/proc-title.ts";
import { startService } from "../prefork/serve.ts";
import { releaseStartupMemory } from "../prefork/startup-memory.ts";
import { busArg } from "./bus-arg.ts";
import { coreConfigArg, SETTINGS_FILE_DEFAULT, statusSocketArg } from "./config-args.ts";
import { ExitCode, fail } from "./exit-codes.ts";
import { logFormatArg, parseLogFormat } from "./log-format.ts";
import { failStartup } from "./startup-failure.ts";

export default defineCommand({
  meta: {
    name: "serve",
    description:
      "Serve an OpenSRF service written in TypeScript: a listener registered with the routers and a pool of prefork drones",
  },
  args: {
    service: { type: "string", description: "Service (application) name, e.g. opensrf.math", required: true },
    app: {
      type: "string",
      description: "Service module (default export from defineService), relative to the current directory",
      required: true,
    },
    config: {
      ...coreConfigArg("opensrf_core.xml (uses /config/opensrf)"),
    },
    bus: busArg,
    settings: {
      type: "string",
      description: `opensrf.xml to read the service's settings from (default: ${SETTINGS_FILE_DEFAULT})`,
    },
    "settings-from-bus": {
      type: "boolean",
      description: "Get the settings from the opensrf.settings service instead of opensrf.xml",
      default: false,
    },
    host: { type: "string", description: "Host name of the /opensrf/hosts/<host> section (default: this machine's)" },
    logfile: { type: "string", description: "Override <logfile> (a path, 'stderr' or 'syslog')" },
    loglevel: { type: "string", description: "Override <loglevel> (1 error … 5 internal)" },
    "log-format": logFormatArg,
    "status-port": {
      type: "string",
      description:
        "Serve /status and /metrics on this TCP port of 127.0.0.1 (overrides unix_config/status_port; 0 = off)",
    },
    "status-socket": statusSocketArg,
    "pid-file": {
      type: "string",
      description: "Write the listener's pid here once serving (absolute path); removed at exit",
    },
  },
  async run({ args }) {
    if (args.settings && args["settings-from-bus"])
      fail("--settings and --settings-from-bus exclude each other", ExitCode.USAGE);
    const loglevel = args.loglevel === undefined ? undefined : Number(args.loglevel);
    if (loglevel !== undefined && !(Number.isInteger(loglevel) && loglevel >= 0 && loglevel <= 5)) {
      fail(`--loglevel must be 0-5, got "${args.loglevel}"`, ExitCode.USAGE);
    }
    const logFormat = parseLogFormat(args["log-format"]);
    const statusPort = args["status-port"] === undefined ? undefined : Number(args["status-port"]);
    if (statusPort !== undefined && !(Number.isInteger(statusPort) && statusPort >= 0 && statusPort <= 65535)) {
      fail(`--status-port must be a TCP port (1-65535, 0 = off), got "${args["status-port"]}"`, ExitCode.USAGE);
    }
    // Same pid, argv[0] "OpenSRF Listener [S]" for ps; returns at once in the new image.
    reexecWithTitle(listenerTitle(args.service));
    setCommName(CommName.listener);
    try {
      await startService({
        service: args.service,
        app: args.app,
        config: args.config,
        ...(args.bus ? { bus: args.bus } : {}),
        settingsFromBus: args["settings-from-bus"],
        host: args.host ?? hostname(),
        ...(args.settings ? { settings: args.settings } : {}),
        ...(args.logfile ? { logfile: args.logfile } : {}),
        ...(loglevel !== undefined ? { loglevel } : {}),
        logFormat,
        ...(statusPort !== undefined ? { statusPort } : {}),
        ...(args["status-socket"] !== undefined ? { statusSocket: args["status-socket"] } : {}),
      });
      // Written only once serving, so `osrf-prefork start` can wait for it.
      if (args["pid-file"]) claimPidFile(args["pid-file"]);
      releaseStartupMemory(200);
    } catch (e) {
      failStartup(args.service, e);
    }
  },
});
