/**
 * `osrf-prefork drone`: the internal subcommand a listener spawns each drone with (refuses to run
 * without the listener's IPC channel).
 */
import { defineCommand } from "citty";
import { runDrone } from "../prefork/drone.ts";

export default defineCommand({
  meta: {
    name: "drone",
    description: "Internal: a worker process started by `serve` (configured over its IPC channel)",
  },
  run() {
    runDrone();
  },
});
