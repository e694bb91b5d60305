#!/usr/bin/env bun
/**
 * osrf-prefork command line: subcommands only (src/cli/main.ts); each lives in src/cli/<name>.ts.
 *
 * A drone, started as the listener starts it, goes straight to its own code: the parser and
 * what it loads (node:util among them) would cost every drone's start-up for nothing, and
 * drones start often (stock max_requests 1000).
 */
import { isDroneArgv } from "./prefork/self-exec.ts";

/** Last resort for an error before a command's own handling is in place: one line, exit 1. */
function fatal(what: string): (err: unknown) => never {
  return (err) => {
    process.stderr.write(`osrf-prefork ${what}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  };
}

if (isDroneArgv(process.argv)) {
  import("./prefork/drone.ts").then((m) => m.runDrone()).catch(fatal("drone"));
} else {
  import("./cli/run.ts").then((m) => m.runCli()).catch(fatal("start-up"));
}
