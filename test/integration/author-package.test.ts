/**
 * The npm package for service authors (`bun run build.ts package`): what the tarball holds,
 * that its two entry points export exactly the public API of src/app/index.ts and
 * src/testing/index.ts, and that they share one runtime (a MethodException made with the
 * "osrf-prefork" entry keeps its status code in the "osrf-prefork/testing" host).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { type BuiltPackage, buildPackage } from "../../scripts/build-package.ts";
import * as api from "../../src/app/index.ts";
import * as testing from "../../src/testing/index.ts";
import { VERSION } from "../../src/version.ts";

let dir: string;
let built: BuiltPackage;
let pkg: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "osrf-author-package-"));
  built = await buildPackage(join(dir, "out"));
  const tar = Bun.spawnSync(["tar", "xzf", built.tarball, "-C", dir]);
  if (tar.exitCode !== 0) throw new Error(`tar: ${tar.stderr.toString()}`);
  pkg = join(dir, "package");
}, 120_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("osrf-prefork-<version>.tgz", () => {
  test("is named for the binary's version and has no dependencies", () => {
    expect(built.tarball).toEndWith(`/osrf-prefork-${VERSION}.tgz`);
    const manifest = JSON.parse(readFileSync(join(pkg, "package.json"), "utf8"));
    expect(manifest).toMatchObject({ name: "osrf-prefork", version: VERSION, type: "module" });
    for (const field of ["dependencies", "peerDependencies", "optionalDependencies", "scripts"]) {
      expect(manifest[field]).toBeUndefined();
    }
    expect(manifest.exports).toEqual({
      ".": { types: "./dist/app/index.d.ts", default: "./dist/app/index.js" },
      "./testing": { types: "./dist/testing/index.d.ts", default: "./dist/testing/index.js" },
      "./package.json": "./package.json",
    });
    for (const target of [manifest.exports["."], manifest.exports["./testing"]]) {
      expect(existsSync(join(pkg, target.types))).toBe(true);
      expect(existsSync(join(pkg, target.default))).toBe(true);
    }
  });

  test("holds JavaScript, declarations, package.json and README only; no source", () => {
    expect(built.files).toContain("README.md");
    for (const f of built.files) expect(f).toMatch(/^(package\.json|README\.md|dist\/.+\.(js|d\.ts))$/);
    expect(built.files.filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))).toEqual([]);
  });

  test("every relative import of a declaration resolves inside the package", () => {
    for (const f of built.files.filter((f) => f.endsWith(".d.ts"))) {
      const text = readFileSync(join(pkg, f), "utf8");
      expect(text).not.toMatch(/^(?:import|export)\b[^;]*?\bfrom "\.{1,2}\/[^"]+\.ts"/m);
      for (const m of text.matchAll(/^(?:import|export)\b[^;]*?\bfrom "(\.{1,2}\/[^"]+)\.js"/gm)) {
        expect(existsSync(join(pkg, dirname(f), `${m[1]}.d.ts`))).toBe(true);
      }
    }
  });

  test("the entries export exactly the public API of src/app and src/testing", async () => {
    const builtApi = await import(join(pkg, "dist/app/index.js"));
    const builtTesting = await import(join(pkg, "dist/testing/index.js"));
    expect(Object.keys(builtApi).sort()).toEqual(Object.keys(api).sort());
    expect(Object.keys(builtTesting).sort()).toEqual(Object.keys(testing).sort());
    const declared = readFileSync(join(pkg, "dist/app/index.d.ts"), "utf8");
    for (const name of Object.keys(api)) expect(declared).toContain(name);
  });

  test("the two entries share one runtime: a MethodException keeps its code in testService", async () => {
    const builtApi = (await import(join(pkg, "dist/app/index.js"))) as typeof api;
    const builtTesting = (await import(join(pkg, "dist/testing/index.js"))) as typeof testing;
    const service = builtApi.defineService({
      name: "pkg.check",
      methods: [{ name: "refuse", handler: () => Promise.reject(new builtApi.MethodException(403, "not for you")) }],
    });
    const t = builtTesting.testService(service);
    const e = await t.call("refuse").catch((err: unknown) => err);
    expect(e).toBeInstanceOf(builtTesting.MethodError);
    expect((e as testing.MethodError).statusCode).toBe(403);
    await t.close();
  });
});
