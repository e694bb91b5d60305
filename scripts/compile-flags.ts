/**
 * The `bun build --compile` flags of every osrf-prefork binary: release builds (build.ts) and
 * the one the bench compiles (bench/stack.ts compileBinary()), so that what is measured is
 * what ships.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";

/**
 * Which functions a drone runs, from start-up through 1000 echo requests, recorded by a
 * binary built with these flags (hashes of functions, no code). The bytecode they use is laid
 * out together at the front of the executable: measured 13–23% less start-up CPU per drone
 * (BENCHMARKS.md). A profile from an older build still applies to what did not change; to
 * record it again:
 *
 *   bun bench/drone-age.ts --drones=1 --env=BUN_BYTECODE_ORDER_OUT=$PWD/scripts/bytecode-order/drone.txt
 *
 * An XMPP drone's: a profile recorded on Redis (`--bus=redis`) made Redis drones no faster
 * than this one, so their few functions of their own are left out.
 */
export const DRONE_BYTECODE_ORDER = join(import.meta.dir, "bytecode-order/drone.txt");

export const COMPILE_FLAGS: readonly string[] = [
  "--minify-syntax",
  // The bundle's bytecode is made at build time: a process starts without parsing and
  // compiling half a megabyte of JavaScript. Drones start often (stock max_requests 1000).
  "--bytecode",
  // Each subcommand's modules in chunks of their own, loaded by its `import()` (src/cli/main.ts).
  // In one ESM bundle every import is hoisted to the top, so every process loaded every
  // node: builtin any subcommand uses (util, tls, dns, crypto, …: most of the start-up CPU);
  // now a drone loads what the drone path imports. Splitting needs the ESM format.
  "--format=esm",
  "--splitting",
  ...(existsSync(DRONE_BYTECODE_ORDER) ? [`--bytecode-order=${DRONE_BYTECODE_ORDER}`] : []),
];
