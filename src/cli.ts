#!/usr/bin/env bun
/**
 * osrf-prefork command line: subcommands only (src/cli/main.ts); each lives in src/cli/<name>.ts.
 *
 * A drone, started as the listener starts it, goes straight to its own code: the parser and
 * what it loads (node:util among them) would cost every drone's start-up for nothing, and
 * drones start often (stock max_requests 1000).
 */
import { isDroneArgv } from "./prefork/self-exec.ts";

if (isDroneArgv(process.argv)) void import("./prefork/drone.ts").then((m) => m.runDrone());
else void import("./cli/run.ts").then((m) => m.runCli());
