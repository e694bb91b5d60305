/**
 * `osrf-prefork restart`: `stop`, then `start` (see control-command.ts).
 */
import { defineCommand } from "citty";
import { type ControlArgs, controlArgs, runControl } from "./control-command.ts";

export default defineCommand({
  meta: {
    name: "restart",
    description: "stop, then start",
  },
  args: controlArgs,
  async run({ args }) {
    process.exit(await runControl("restart", args as ControlArgs));
  },
});
