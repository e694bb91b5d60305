/**
 * `osrf-prefork start`: the host's services as daemons, like osrf_control --start (see
 * control-command.ts).
 */
import { defineCommand } from "citty";
import { type ControlArgs, controlArgs, runControl } from "./control-command.ts";

export default defineCommand({
  meta: {
    name: "start",
    description:
      "Start the host's TypeScript services as daemons, like osrf_control --start/--start-all: one listener per service, pid file <pid dir>/<service>.pid",
  },
  args: controlArgs,
  async run({ args }) {
    process.exit(await runControl("start", args as ControlArgs));
  },
});
