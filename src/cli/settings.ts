/**
 * `osrf-prefork settings`: the opensrf.settings service, serving one opensrf.xml, run under the
 * prefork server like any service (its module is built in).
 */
import { hostname } from "node:os";
import { resolve } from "node:path";
import { defineCommand } from "citty";
import { readCoreConfig } from "../config/core.ts";
import { settingsFileOf } from "../config/defaults.ts";
import { ConfigError } from "../config/errors.ts";
import { claimPidFile } from "../control/pidfile.ts";
import { BUILTIN_APP_PREFIX } from "../prefork/app-loader.ts";
import { CommName, listenerTitle, reexecWithTitle, setCommName } from "../prefork/proc-title.ts";
import { startService } from "../prefork/serve.ts";
import { SettingsDocument } from "../settings-service/document.ts";
import { SETTINGS_FILE_ENV } from "../settings-service/service.ts";
import { busArg } from "./bus-arg.ts";
import { coreConfigArg, SETTINGS_FILE_DEFAULT, statusSocketArg } from "./config-args.ts";
import { ExitCode, fail } from "./exit-codes.ts";
import { failStartup } from "./startup-failure.ts";

const SERVICE = "opensrf.settings";

export default defineCommand({
  meta: {
    name: "settings",
    description:
      "Serve opensrf.xml as the opensrf.settings service (host_config.get, default_config.get, xpath.get), under the prefork server like any service",
  },
  args: {
    settings: {
      type: "string",
      description: `opensrf.xml to serve; its /apps/opensrf.settings also sets this listener's pool (default: ${SETTINGS_FILE_DEFAULT})`,
    },
    config: {
      ...coreConfigArg("opensrf_core.xml (uses /config/opensrf)"),
    },
    bus: busArg,
    host: {
      type: "string",
      description:
        "Host name of the /opensrf/hosts/<host> section for this listener's own settings (default: this machine's)",
    },
    logfile: { type: "string", description: "Override <logfile> (a path, 'stderr' or 'syslog')" },
    loglevel: { type: "string", description: "Override <loglevel> (1 error … 5 internal)" },
    "status-socket": statusSocketArg,
    "pid-file": {
      type: "string",
      description: "Write the listener's pid here once serving (absolute path); removed at exit",
    },
  },
  async run({ args }) {
    const loglevel = args.loglevel === undefined ? undefined : Number(args.loglevel);
    if (loglevel !== undefined && !(Number.isInteger(loglevel) && loglevel >= 0 && loglevel <= 5)) {
      fail(`--loglevel must be 0-5, got "${args.loglevel}"`, ExitCode.USAGE);
    }
    let file: string;
    try {
      file = resolve(settingsFileOf(readCoreConfig(args.config), args.settings));
      // Refuse a file that cannot be served before going into the background.
      SettingsDocument.load(file);
    } catch (e) {
      if (e instanceof ConfigError) fail(e.message, ExitCode.USAGE);
      throw e;
    }
    reexecWithTitle(listenerTitle(SERVICE));
    setCommName(CommName.listener);
    // Drones inherit the environment: this is how the built-in module learns its file.
    process.env[SETTINGS_FILE_ENV] = file;
    try {
      await startService({
        service: SERVICE,
        app: `${BUILTIN_APP_PREFIX}${SERVICE}`,
        config: args.config,
        ...(args.bus ? { bus: args.bus } : {}),
        settings: file,
        host: args.host ?? hostname(),
        ...(args.logfile ? { logfile: args.logfile } : {}),
        ...(loglevel !== undefined ? { loglevel } : {}),
        ...(args["status-socket"] !== undefined ? { statusSocket: args["status-socket"] } : {}),
      });
      if (args["pid-file"]) claimPidFile(args["pid-file"]);
    } catch (e) {
      failStartup(SERVICE, e);
    }
  },
});
