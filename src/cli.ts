#!/usr/bin/env bun
/**
 * osrf-prefork command line: subcommands only; each lives in src/cli/<name>.ts.
 */
import { defineCommand, runMain } from "citty";
import { VERSION } from "./version.ts";

const main = defineCommand({
  meta: {
    name: "osrf-prefork",
    version: VERSION,
    description: "OpenSRF application server, router and client for services written in TypeScript",
  },
  subCommands: {
    router: () => import("./cli/router.ts").then((m) => m.default),
    request: () => import("./cli/request.ts").then((m) => m.default),
    serve: () => import("./cli/serve.ts").then((m) => m.default),
    status: () => import("./cli/status.ts").then((m) => m.default),
    start: () => import("./cli/start.ts").then((m) => m.default),
    stop: () => import("./cli/stop.ts").then((m) => m.default),
    restart: () => import("./cli/restart.ts").then((m) => m.default),
    settings: () => import("./cli/settings.ts").then((m) => m.default),
    init: () => import("./cli/init.ts").then((m) => m.default),
    drone: () => import("./cli/drone.ts").then((m) => m.default),
    version: () => import("./cli/version.ts").then((m) => m.default),
  },
});

void runMain(main);
