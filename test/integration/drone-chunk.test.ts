/**
 * What a drone loads at start in the binary as it ships (the release flags: a chunk per
 * subcommand). Each module kept out of the drone's static graph was measured to cost every
 * drone memory and start-up CPU (BENCHMARKS.md, "Drones from their first request"); this
 * keeps them out. The bus transports may be there, but only behind a dynamic import. A drone
 * started as the listener starts it does not go through the command-line parser either.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { COMPILE_FLAGS } from "../../scripts/compile-flags.ts";

const ROOT = resolve(import.meta.dir, "../..");
const out = mkdtempSync(join(tmpdir(), "osrf-drone-chunk-"));

afterAll(() => rmSync(out, { recursive: true, force: true }));

/** Source files (as the bundler's `// path` comments name them) of a chunk and its static imports. */
function staticGraph(entry: string): { files: string[]; dynamic: string[] } {
  const files: string[] = [];
  const dynamic: string[] = [];
  const seen = new Set<string>();
  const walk = (chunk: string) => {
    if (seen.has(chunk)) return;
    seen.add(chunk);
    const text = readFileSync(join(out, chunk), "utf8");
    for (const m of text.matchAll(/^\/\/ (\S+\.(?:ts|js|mjs|cjs))$/gm)) files.push(m[1]!);
    for (const m of text.matchAll(/import\("\.\/([^"]+)"\)/g)) dynamic.push(m[1]!);
    for (const m of text.matchAll(/^import\s[^;]*?from\s*"\.\/([^"]+)"/gm)) walk(m[1]!);
    for (const m of text.matchAll(/^import\s*"\.\/([^"]+)"/gm)) walk(m[1]!);
  };
  walk(entry);
  return { files, dynamic };
}

describe("the drone's chunk", () => {
  test("loads neither the command-line parser, the XML config reader, a bus client nor XML stanza code statically", () => {
    // The release flags without --compile and the bytecode ones: the same chunks, as readable files.
    const flags = COMPILE_FLAGS.filter((f) => !f.startsWith("--bytecode"));
    const r = Bun.spawnSync([process.execPath, "build", ...flags, "--target=bun", "src/cli.ts", "--outdir", out], {
      cwd: ROOT,
    });
    expect(r.exitCode).toBe(0);
    // The chunk the entry point imports for a drone (src/cli.ts), not the `drone` subcommand's.
    const entry = readFileSync(join(out, "cli.js"), "utf8");
    const drone = /import\("\.\/([^"]+)"\)\.then\(\(\w+\) => \w+\.runDrone\(\)\)/.exec(entry)?.[1];
    expect(drone).toBeDefined();
    const { files, dynamic } = staticGraph(drone!);
    expect(files).toContain("src/prefork/drone.ts");
    expect(files).toContain("src/app/host.ts");
    const banned = [
      "citty",
      "src/cli/",
      "fast-xml-parser",
      "src/config/xml.ts",
      "src/config/core.ts",
      "src/redis/connection.ts",
      "src/xmpp/connection.ts",
      "@xmpp/client",
      // XML stanza code: an XMPP drone loads it with its connection, a Redis drone never.
      "ltx",
      "src/xmpp/stanza.ts",
    ];
    for (const b of banned) expect(files.filter((f) => f.includes(b))).toEqual([]);
    // The transports are still reachable, when a drone's bus asks for them.
    expect(dynamic.some((d) => d.startsWith("connection-"))).toBe(true);
  }, 60_000);
});
