/**
 * The static gates `.ci/run` runs before the tests (Biome format + lint, tsc, the dependency
 * rules of scripts/check-deps.ts) must each fail on a planted violation — otherwise a gate
 * that silently passes everything would look green. Each case plants one violation in a
 * temp tree and runs the real tool on it with the repository's own configuration.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../..");
const BIN = join(ROOT, "node_modules/.bin");
const dirs: string[] = [];

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A temp tree with the given files (paths relative to it). */
function tree(files: Record<string, string>): string {
  const d = mkdtempSync(join(tmpdir(), "osrf-gates-"));
  dirs.push(d);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(d, path)), { recursive: true });
    writeFileSync(join(d, path), text);
  }
  return d;
}

function run(cmd: string[], cwd: string): { code: number; out: string } {
  const p = Bun.spawnSync({ cmd, cwd, stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } });
  return { code: p.exitCode ?? -1, out: p.stdout.toString() + p.stderr.toString() };
}

// No ambient types: the planted files need none, and bun's live in the repository's node_modules.
const TSCONFIG = JSON.stringify({
  extends: join(ROOT, "tsconfig.json"),
  compilerOptions: { types: [] },
  include: ["src", "test"],
});

describe("CI gates fail on planted violations", () => {
  test("check-deps: a file cycle, a folder cycle in src/ and src/ importing test/", () => {
    const d = tree({
      "tsconfig.json": TSCONFIG,
      "src/a/one.ts": 'import { two } from "../b/two.ts";\nexport const one = () => two;\n',
      "src/b/two.ts": 'import { three } from "../a/three.ts";\nexport const two = three;\n',
      "src/a/three.ts": "export const three = 3;\n",
      "src/c/p.ts": 'import { q } from "./q.ts";\nexport const p = () => q;\n',
      "src/c/q.ts": 'import { p } from "./p.ts";\nexport const q = () => p;\n',
      "src/d/uses-test.ts": 'import { helper } from "../../test/helper.ts";\nexport const x = helper;\n',
      "test/helper.ts": "export const helper = 1;\n",
    });
    const r = run([join(BIN, "bun"), join(ROOT, "scripts/check-deps.ts"), "--root", d], ROOT);
    expect(r.code).toBe(1);
    expect(r.out).toContain("file cycle: src/c/p.ts → src/c/q.ts → src/c/p.ts");
    expect(r.out).toContain("folder cycle in src/: a → b → a");
    expect(r.out).toContain("layer: src/d/uses-test.ts imports test/helper.ts (src/ may not import test/)");
  });

  test("check-deps: the repository itself is clean", () => {
    const r = run([join(BIN, "bun"), join(ROOT, "scripts/check-deps.ts")], ROOT);
    expect(r.out).toContain("check-deps: ok");
    expect(r.code).toBe(0);
  });

  test("biome: a formatting slip and a lint finding each fail the check", () => {
    // The repository's own biome.json, in a tree of its own (its includes are relative paths).
    const { $schema: _, ...config } = JSON.parse(readFileSync(join(ROOT, "biome.json"), "utf8"));
    const d = tree({
      "biome.json": JSON.stringify(config),
      "src/badly-formatted.ts": "export const x = {a:1,\n b:2}\n",
      "src/lint-finding.ts": "export function f(xs: number[]): void {\n  xs.forEach((x) => xs.push(x));\n}\n",
    });
    const fmt = run([join(BIN, "biome"), "format", "src/badly-formatted.ts"], d);
    expect(fmt.out).toContain("Formatter would have printed");
    expect(fmt.code).not.toBe(0);
    const lint = run([join(BIN, "biome"), "lint", "src/lint-finding.ts"], d);
    expect(lint.out).toContain("useIterableCallbackReturn");
    expect(lint.code).not.toBe(0);
  });

  test("tsc: an unused local and an unused parameter fail the type check", () => {
    const d = tree({
      "tsconfig.json": TSCONFIG,
      "src/unused.ts": "export function f(a: number, b: number): number {\n  const c = 1;\n  return a;\n}\n",
    });
    const r = run([join(BIN, "tsc"), "--noEmit", "-p", d], d);
    expect(r.code).not.toBe(0);
    expect(r.out).toContain("TS6133"); // 'b' and 'c' are declared but never read
    expect(r.out).toMatch(/'b' is declared/);
    expect(r.out).toMatch(/'c' is declared/);
  });
});
