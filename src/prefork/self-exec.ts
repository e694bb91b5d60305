/**
 * How to start this same program again, as a compiled binary or as `bun src/cli.ts`.
 */
import { resolve } from "node:path";

/** The internal subcommand a listener starts its drones with. */
const DRONE_SUBCOMMAND = "drone";

/**
 * True inside a `bun build --compile` binary, whose entry point lives in the embedded
 * virtual file system (`/$bunfs/…`) rather than on disk.
 */
export function isCompiled(): boolean {
  return Bun.main.startsWith("/$bunfs/");
}

/** The command that runs `osrf-prefork drone`: the binary itself, or bun with src/cli.ts. */
export function droneCommand(): string[] {
  return isCompiled()
    ? [process.execPath, DRONE_SUBCOMMAND]
    : [process.execPath, resolve(import.meta.dir, "../cli.ts"), DRONE_SUBCOMMAND];
}

/**
 * True for the `process.argv` of a process started as {@link droneCommand} starts drones:
 * `drone` and nothing else (both forms put the program at 0 and the script at 1). Anything
 * more, such as `drone --help`, is for the command-line parser.
 */
export function isDroneArgv(argv: readonly string[]): boolean {
  return argv.length === 3 && argv[2] === DRONE_SUBCOMMAND;
}
