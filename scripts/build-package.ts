/**
 * The npm package service authors install for types and in-process tests:
 * `osrf-prefork-<version>.tgz` with two entry points,
 *
 * - `osrf-prefork`: the public service API (src/app/index.ts), what the binary provides to
 *   the modules it serves;
 * - `osrf-prefork/testing`: `testService` and the in-memory doubles (src/testing/index.ts).
 *
 * JavaScript: one `Bun.build` of both entries with code splitting, so the two share one copy
 * of the runtime (a `MethodException` a service imports from "osrf-prefork" is the class the
 * testing host checks for). Declarations: `tsc` with tsconfig.package.json, keeping only the
 * files the two entry declarations reach. No dependencies: everything is bundled.
 *
 * Under the server, `import … from "osrf-prefork"` never reaches this package: the binary
 * registers its own copy of the module first (src/prefork/app-loader.ts).
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { VERSION } from "../src/version.ts";

const ROOT = resolve(import.meta.dir, "..");
const ENTRIES = { ".": "app/index", "./testing": "testing/index" } as const;

/** A built package. */
export interface BuiltPackage {
  /** Absolute path of `osrf-prefork-<version>.tgz`. */
  tarball: string;
  /** Size of the tarball, bytes. */
  size: number;
  /** Size of its files unpacked, bytes. */
  unpackedSize: number;
  /** Paths inside the package, sorted. */
  files: string[];
}

async function run(cmd: string[], cwd = ROOT): Promise<string> {
  const proc = Bun.spawn(cmd, { cwd, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  if (code !== 0) throw new Error(`${cmd.join(" ")} exited with ${code}:\n${out}${err}`);
  return out;
}

// Relative specifiers of import/export statements (at the start of a line, so examples in
// doc comments are left alone) and of `import("…")` types.
const SPECIFIER = /(^(?:import|export)\b[^;]*?\bfrom\s+|\bimport\(\s*)"(\.{1,2}\/[^"]+)\.ts"/gm;

/**
 * Copies the declarations reachable from the entries (relative imports followed) from
 * `from` to `to`, with `./x.ts` specifiers rewritten to `./x.js` (which TypeScript resolves
 * to `./x.d.ts` whatever the consumer's settings).
 */
function copyReachableDeclarations(from: string, to: string, entries: readonly string[]): string[] {
  const seen = new Set<string>();
  const queue = entries.map((e) => `${e}.d.ts`);
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const text = readFileSync(join(from, file), "utf8");
    for (const m of text.matchAll(SPECIFIER)) queue.push(join(dirname(file), `${m[2]}.d.ts`));
    mkdirSync(dirname(join(to, file)), { recursive: true });
    writeFileSync(join(to, file), text.replace(SPECIFIER, '$1"$2.js"'));
  }
  return [...seen].sort();
}

function packageJson(): string {
  const root = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { description: string; license: string };
  const exports = Object.fromEntries(
    Object.entries(ENTRIES).map(([key, entry]) => [
      key,
      { types: `./dist/${entry}.d.ts`, default: `./dist/${entry}.js` },
    ]),
  );
  return `${JSON.stringify(
    {
      name: "osrf-prefork",
      version: VERSION,
      description: `${root.description}: the service API (types and runtime) and the in-process testing kit`,
      license: root.license,
      type: "module",
      types: `./dist/${ENTRIES["."]}.d.ts`,
      exports: { ...exports, "./package.json": "./package.json" },
      sideEffects: false,
    },
    null,
    2,
  )}\n`;
}

/**
 * Builds `osrf-prefork-<version>.tgz` into `outDir`.
 * @throws Error with the failing tool's output when bundling, tsc or npm pack fails.
 */
export async function buildPackage(outDir: string): Promise<BuiltPackage> {
  const staging = mkdtempSync(join(tmpdir(), "osrf-prefork-package-"));
  try {
    const pkg = join(staging, "package");
    const dist = join(pkg, "dist");
    const built = await Bun.build({
      entrypoints: Object.values(ENTRIES).map((e) => join(ROOT, "src", `${e}.ts`)),
      root: join(ROOT, "src"),
      outdir: dist,
      target: "bun",
      format: "esm",
      splitting: true,
      naming: { entry: "[dir]/[name].[ext]", chunk: "shared-[hash].[ext]" },
    });
    if (!built.success) throw new Error(`Bun.build failed:\n${built.logs.map(String).join("\n")}`);

    const types = join(staging, "types");
    await run([
      process.execPath,
      join(ROOT, "node_modules/typescript/bin/tsc"),
      "-p",
      join(ROOT, "tsconfig.package.json"),
      "--outDir",
      types,
    ]);
    copyReachableDeclarations(types, dist, Object.values(ENTRIES));

    writeFileSync(join(pkg, "package.json"), packageJson());
    cpSync(join(ROOT, "docs/service-api.md"), join(pkg, "README.md"));

    mkdirSync(outDir, { recursive: true });
    const [report] = JSON.parse(await run(["npm", "pack", "--json", "--pack-destination", resolve(outDir)], pkg)) as {
      filename: string;
      size: number;
      unpackedSize: number;
      files: { path: string }[];
    }[];
    if (!report) throw new Error("npm pack reported no package");
    return {
      tarball: join(resolve(outDir), report.filename),
      size: report.size,
      unpackedSize: report.unpackedSize,
      files: report.files.map((f) => f.path).sort(),
    };
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const out = process.argv[2] ?? join(ROOT, "dist");
  const p = await buildPackage(out);
  console.log(`${(p.size / 1024).toFixed(1).padStart(8)} KiB  ${relative(process.cwd(), p.tarball)}`);
}
