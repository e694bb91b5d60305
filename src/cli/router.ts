/**
 * `osrf-prefork router`: runs the routers of opensrf_core.xml (one per entry, or the one for
 * `--domain`) until SIGTERM/SIGINT/SIGQUIT; SIGHUP reopens the logs, on the bus chosen as
 * for every subcommand (`--bus`, `$OSRF_BUS`, `<bus>`).
 */
import { defineCommand } from "citty";
import { ConnectError } from "../bus/errors.ts";
import { busOf } from "../config/bus.ts";
import { readCoreConfig } from "../config/core.ts";
import { ConfigError } from "../config/errors.ts";
import { startRouter } from "../connect/router.ts";
import { createLogger } from "../log/logger.ts";
import { busArg } from "./bus-arg.ts";
import { coreConfigArg } from "./config-args.ts";
import { ExitCode, fail } from "./exit-codes.ts";
import { logFormatArg, parseLogFormat } from "./log-format.ts";

export default defineCommand({
  meta: {
    name: "router",
    description:
      "Run OpenSRF routers from /config/routers/router of opensrf_core.xml (one per entry, or the one for --domain)",
  },
  args: {
    config: coreConfigArg(),
    bus: busArg,
    domain: { type: "string", description: "Run only the router whose transport server is this domain" },
    logfile: { type: "string", description: "Override <logfile> (a path, 'stderr' or 'syslog')" },
    loglevel: { type: "string", description: "Override <loglevel> (1 error … 5 internal)" },
    "log-format": logFormatArg,
  },
  async run({ args }) {
    const format = parseLogFormat(args["log-format"]);
    let core: ReturnType<typeof readCoreConfig>;
    let bus: ReturnType<typeof busOf>;
    try {
      core = readCoreConfig(args.config);
      bus = busOf(core.opensrf, { flag: args.bus });
    } catch (e) {
      if (e instanceof ConfigError) fail(e.message, ExitCode.USAGE);
      throw e;
    }
    const configs = core.routers.filter((r) => !args.domain || r.transport.server === args.domain);
    if (configs.length === 0) {
      fail(
        `${args.config}: /config/routers/router: no router${args.domain ? ` for domain ${args.domain}` : ""} (add a <router> with <transport> to <routers>)`,
        ExitCode.USAGE,
      );
    }
    const routers: Array<{ stop(): Promise<void> }> = [];
    const loggers: Array<{ reopen(): void }> = [];
    for (const cfg of configs) {
      const logger = createLogger({
        service: "router",
        logfile: args.logfile ?? cfg.logfile,
        loglevel: args.loglevel ? Number(args.loglevel) : cfg.loglevel,
        ...(cfg.syslog ? { syslog: cfg.syslog } : {}),
        format,
      });
      loggers.push(logger);
      try {
        routers.push(await startRouter(bus, cfg, core, logger));
      } catch (e) {
        if (e instanceof ConnectError) fail(`router for ${cfg.transport.server}: ${e.message}`, ExitCode.TRANSPORT);
        throw e;
      }
    }
    const stop = async () => {
      await Promise.all(routers.map((r) => r.stop().catch(() => {})));
      process.exit(ExitCode.OK);
    };
    for (const sig of ["SIGTERM", "SIGINT", "SIGQUIT"] as const) process.on(sig, () => void stop());
    // The routing table lives in memory only; HUP just reopens logs for logrotate.
    process.on("SIGHUP", () => {
      for (const l of loggers) l.reopen();
    });
  },
});
