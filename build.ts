#!/usr/bin/env bun
/**
 * Build the single-binary `osrf-prefork` for each platform with `bun build --compile`, and
 * the npm package service authors install for types and tests (`osrf-prefork-<version>.tgz`,
 * see scripts/build-package.ts), all into dist/.
 *
 *   bun run build.ts                      # every binary and the package
 *   bun run build.ts linux-x64 linux-arm64
 *   bun run build.ts package              # the package only (seconds; no runtimes needed)
 *
 * The package is built with the binaries by default so that a release never has a binary
 * without the author kit of the same version and API.
 *
 * Cross targets need that platform's Bun runtime. Rather than letting `bun build`
 * download it (which fails offline), the runtime comes from its npm package
 * (@oven/bun-<platform>, same version as the building Bun), fetched once with
 * `npm pack` into node_modules/.cache and reused from then on, offline.
 * The output is never stripped: stripping drops the embedded bundle.
 */
import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { buildPackage } from "./scripts/build-package.ts";
import { COMPILE_FLAGS } from "./scripts/compile-flags.ts";

interface Target {
  /** Our name, used in the output file name. */
  name: string;
  /** `--target` for bun build. */
  bunTarget: string;
  /** npm package holding that runtime; undefined = the building Bun itself. */
  runtimePackage?: string;
  exe?: boolean;
}

const HOST = `${process.platform}-${process.arch}`;
const TARGETS: Target[] = [
  { name: "linux-x64", bunTarget: "bun-linux-x64", runtimePackage: "@oven/bun-linux-x64" },
  { name: "linux-arm64", bunTarget: "bun-linux-arm64", runtimePackage: "@oven/bun-linux-aarch64" },
  { name: "linux-x64-musl", bunTarget: "bun-linux-x64-musl", runtimePackage: "@oven/bun-linux-x64-musl" },
  { name: "darwin-arm64", bunTarget: "bun-darwin-arm64", runtimePackage: "@oven/bun-darwin-aarch64" },
  { name: "darwin-x64", bunTarget: "bun-darwin-x64", runtimePackage: "@oven/bun-darwin-x64" },
  { name: "windows-x64", bunTarget: "bun-windows-x64", runtimePackage: "@oven/bun-windows-x64", exe: true },
];

const ROOT = import.meta.dir;
const DIST = join(ROOT, "dist");
const CACHE = join(ROOT, "node_modules/.cache/osrf-prefork-runtimes");

async function run(cmd: string[], cwd = ROOT): Promise<void> {
  const proc = Bun.spawn(cmd, { cwd, stdout: "inherit", stderr: "inherit", stdin: "ignore" });
  const code = await proc.exited;
  if (code !== 0) throw new Error(`${cmd.join(" ")} exited with ${code}`);
}

/** Path of the Bun runtime for a target, fetching its npm package on first use. */
async function runtimeFor(t: Target): Promise<string | undefined> {
  if (t.name === HOST) return undefined; // the building Bun is that runtime
  const pkg = t.runtimePackage!;
  const dir = join(CACHE, `${pkg.replace("/", "+")}-${Bun.version}`);
  const bin = join(dir, "package/bin", t.exe ? "bun.exe" : "bun");
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  console.log(`fetching the ${t.name} runtime (${pkg}@${Bun.version}) from the npm registry …`);
  await run(["npm", "pack", "--silent", `${pkg}@${Bun.version}`, "--pack-destination", dir]);
  const tgz = readdirSync(dir).find((f) => f.endsWith(".tgz"));
  if (!tgz) throw new Error(`npm pack left no tarball in ${dir}`);
  await run(["tar", "xzf", tgz], dir);
  if (!existsSync(bin)) throw new Error(`${pkg} has no ${bin}`);
  return bin;
}

async function build(t: Target): Promise<string> {
  const out = join(DIST, `osrf-prefork-${t.name}${t.exe ? ".exe" : ""}`);
  const runtime = await runtimeFor(t);
  await run([
    process.execPath,
    "build",
    "--compile",
    `--target=${t.bunTarget}`,
    ...(runtime ? [`--compile-executable-path=${runtime}`] : []),
    ...COMPILE_FLAGS,
    join(ROOT, "src/cli.ts"),
    "--outfile",
    out,
  ]);
  return out;
}

/** Target name selecting the npm package. */
const PACKAGE = "package";

const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => w !== PACKAGE && !TARGETS.some((t) => t.name === w));
if (unknown.length) {
  const known = [...TARGETS.map((t) => t.name), PACKAGE].join(", ");
  console.error(`build.ts: unknown target ${unknown.join(", ")}; known: ${known}`);
  process.exit(2);
}
mkdirSync(DIST, { recursive: true });
const results: Array<[string, string]> = [];
let failed = 0;
for (const t of TARGETS.filter((t) => wanted.length === 0 || wanted.includes(t.name))) {
  try {
    const out = await build(t);
    results.push([out, `${(statSync(out).size / 2 ** 20).toFixed(1)} MiB`]);
  } catch (e) {
    failed++;
    results.push([`osrf-prefork-${t.name}`, `FAILED: ${(e as Error).message}`]);
  }
}
if (wanted.length === 0 || wanted.includes(PACKAGE)) {
  try {
    const p = await buildPackage(DIST);
    results.push([p.tarball, `${(p.size / 1024).toFixed(1)} KiB`]);
  } catch (e) {
    failed++;
    results.push([`osrf-prefork package`, `FAILED: ${(e as Error).message}`]);
  }
}
for (const [file, size] of results) console.log(`${size.padStart(10)}  ${resolve(file).replace(`${ROOT}/`, "")}`);
process.exit(failed ? 1 : 0);
