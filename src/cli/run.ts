/**
 * The command line through its parser (citty): every subcommand, help and errors.
 */
import { runMain } from "citty";
import { main } from "./main.ts";
import { showUsage } from "./usage.ts";

/** Parses `process.argv` and runs the subcommand it names. */
export function runCli(): Promise<void> {
  return runMain(main, { showUsage });
}
