/**
 * The osrf-prefork command and its subcommands (each in src/cli/<name>.ts, loaded when used).
 */
import { defineCommand } from "citty";
import { VERSION } from "../version.ts";

export const main = defineCommand({
  meta: {
    name: "osrf-prefork",
    version: VERSION,
    description: "OpenSRF application server, router and client for services written in TypeScript",
  },
  subCommands: {
    router: () => import("./router.ts").then((m) => m.default),
    request: () => import("./request.ts").then((m) => m.default),
    serve: () => import("./serve.ts").then((m) => m.default),
    status: () => import("./status.ts").then((m) => m.default),
    start: () => import("./start.ts").then((m) => m.default),
    stop: () => import("./stop.ts").then((m) => m.default),
    restart: () => import("./restart.ts").then((m) => m.default),
    settings: () => import("./settings.ts").then((m) => m.default),
    init: () => import("./init.ts").then((m) => m.default),
    drone: () => import("./drone.ts").then((m) => m.default),
    version: () => import("./version.ts").then((m) => m.default),
  },
});
