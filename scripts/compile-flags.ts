/**
 * The `bun build --compile` flags of every osrf-prefork binary: release builds (build.ts) and
 * the one the bench compiles (bench/stack.ts compileBinary()), so that what is measured is
 * what ships.
 */
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
];
