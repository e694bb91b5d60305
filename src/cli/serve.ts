import { hostname } from "node:os";
import { defineCommand } from "citty";
import { ConfigError } from "../config/errors.ts";
import { PreforkError, SettingsError } from "../prefork/errors.ts";
import { CommName, listenerTitle, reexecWithTitle, setCommName } from "../prefork/proc-title.ts";
import { startService } from "../prefork/serve.ts";
import { TransportError } from "../xmpp/errors.ts";
import { ExitCode, fail } from "./exit-codes.ts";

export default defineCommand({
  meta: {
    name: "serve",
    description:
      "Serve an OpenSRF service written in TypeScript: a listener registered with the routers and a pool of prefork drones",
  },
  args: {
    service: { type: "string", description: "Service (application) name, e.g. opensrf.math", required: true },
    app: { type: "string", description: "Service module (default export from defineService), relative to the current directory", required: true },
    config: {
      type: "string",
      description: "Path to opensrf_core.xml (uses /config/opensrf)",
      default: process.env.OSRF_CONFIG ?? "/openils/conf/opensrf_core.xml",
    },
    settings: {
      type: "string",
      description: "opensrf.xml to read the service's settings from (default: <settings_config> of opensrf_core.xml, else /openils/conf/opensrf.xml)",
    },
    "settings-from-bus": {
      type: "boolean",
      description: "Get the settings from the opensrf.settings service instead of opensrf.xml",
      default: false,
    },
    host: { type: "string", description: "Host name of the /opensrf/hosts/<host> section (default: this machine's)" },
    logfile: { type: "string", description: "Override <logfile> (a path, 'stderr' or 'syslog')" },
    loglevel: { type: "string", description: "Override <loglevel> (1 error … 5 internal)" },
  },
  async run({ args }) {
    if (args.settings && args["settings-from-bus"]) fail("--settings and --settings-from-bus exclude each other", ExitCode.USAGE);
    const loglevel = args.loglevel === undefined ? undefined : Number(args.loglevel);
    if (loglevel !== undefined && !(Number.isInteger(loglevel) && loglevel >= 0 && loglevel <= 5)) {
      fail(`--loglevel must be 0-5, got "${args.loglevel}"`, ExitCode.USAGE);
    }
    // Same pid, argv[0] "OpenSRF Listener [S]" for ps; returns at once in the new image.
    reexecWithTitle(listenerTitle(args.service));
    setCommName(CommName.listener);
    try {
      await startService({
        service: args.service,
        app: args.app,
        config: args.config,
        settingsFromBus: args["settings-from-bus"],
        host: args.host ?? hostname(),
        ...(args.settings ? { settings: args.settings } : {}),
        ...(args.logfile ? { logfile: args.logfile } : {}),
        ...(loglevel !== undefined ? { loglevel } : {}),
      });
    } catch (e) {
      if (e instanceof SettingsError || e instanceof TransportError) fail(`${args.service}: ${e.message}`, ExitCode.TRANSPORT);
      if (e instanceof ConfigError || e instanceof PreforkError) fail(`${args.service}: ${e.message}`, ExitCode.USAGE);
      throw e;
    }
  },
});
