/**
 * `osrf-prefork stop`: stops listeners started by `start`, like osrf_control --stop (see
 * control-command.ts).
 */
import { defineCommand } from "citty";
import { type ControlArgs, controlArgs, runControl } from "./control-command.ts";

export default defineCommand({
  meta: {
    name: "stop",
    description:
      "Stop listeners started by `start`, like osrf_control --stop/--stop-all: SIGTERM, then SIGINT, then SIGKILL; removes pid files",
  },
  args: controlArgs,
  async run({ args }) {
    process.exit(await runControl("stop", args as ControlArgs));
  },
});
