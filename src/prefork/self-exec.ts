/**
 * How to start this same program again, as a compiled binary or as `bun src/cli.ts`.
 */
import { resolve } from "node:path";

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
    ? [process.execPath, "drone"]
    : [process.execPath, resolve(import.meta.dir, "../cli.ts"), "drone"];
}
