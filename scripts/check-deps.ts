#!/usr/bin/env bun
/**
 * The dependency rules of the tree, checked in CI (`bun scripts/check-deps.ts`):
 *
 * - no import cycle between files, anywhere;
 * - no cycle between the folders of `src/` (e.g. metrics/ → prefork/ → metrics/), which
 *   file-level checks miss;
 * - layers: `src/` imports nothing outside itself (package.json aside); `devkit/` imports
 *   nothing from `test/`, `bench/` or `scripts/`; `scripts/` and `bench/` nothing from `test/`.
 *
 * Prints one line per finding and exits 1 when there is any. `--root DIR` checks another
 * tree (the test of this script plants violations in a temp dir).
 */
import { existsSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import madge from "madge";

/** Top-level folders and what each may not import. */
const FORBIDDEN: Record<string, readonly string[]> = {
  src: ["devkit", "test", "bench", "scripts", "examples"],
  devkit: ["test", "bench", "scripts"],
  scripts: ["test"],
  bench: ["test"],
};

const TREES = ["src", "devkit", "test", "bench", "scripts", "examples"];

/** Returns the findings for the tree at `root`, one line each. */
export async function checkDependencies(root: string): Promise<string[]> {
  const trees = TREES.filter((t) => existsSync(join(root, t)));
  const tsConfig = join(root, "tsconfig.json");
  const graph = await madge(
    trees.map((t) => join(root, t)),
    {
      baseDir: root,
      fileExtensions: ["ts"],
      ...(existsSync(tsConfig) ? { tsConfig } : {}),
      detectiveOptions: { ts: { skipTypeImports: false } },
    },
  );
  const deps = graph.obj();
  const findings: string[] = [];

  for (const cycle of graph.circular()) findings.push(`file cycle: ${[...cycle, cycle[0]].join(" → ")}`);

  for (const [file, imports] of Object.entries(deps)) {
    const top = file.split("/")[0] ?? "";
    for (const target of imports) {
      const targetTop = target.split("/")[0] ?? "";
      if (FORBIDDEN[top]?.includes(targetTop))
        findings.push(`layer: ${file} imports ${target} (${top}/ may not import ${targetTop}/)`);
    }
  }

  for (const cycle of folderCycles(deps)) findings.push(`folder cycle in src/: ${cycle.join(" → ")}`);
  return findings;
}

/** Cycles in the graph of src/ folders (src/a/x.ts → src/b/y.ts is the edge a → b). */
function folderCycles(deps: Record<string, string[]>): string[][] {
  const edges = new Map<string, Set<string>>();
  const folderOf = (f: string): string | undefined => {
    const parts = f.split("/");
    return parts[0] === "src" && parts.length > 2 ? parts[1] : undefined;
  };
  for (const [file, imports] of Object.entries(deps)) {
    const from = folderOf(file);
    if (from === undefined) continue;
    for (const target of imports) {
      const to = folderOf(target);
      if (to === undefined || to === from) continue;
      if (!edges.has(from)) edges.set(from, new Set());
      edges.get(from)?.add(to);
    }
  }
  // Depth-first search; each cycle is reported once, starting at its smallest folder name.
  const cycles = new Map<string, string[]>();
  const visit = (node: string, path: string[]): void => {
    for (const next of edges.get(node) ?? []) {
      const at = path.indexOf(next);
      if (at >= 0) {
        const loop = path.slice(at);
        const start = loop.indexOf([...loop].sort()[0]!);
        const canonical = [...loop.slice(start), ...loop.slice(0, start)];
        cycles.set(canonical.join(">"), [...canonical, canonical[0]!]);
        continue;
      }
      visit(next, [...path, next]);
    }
  };
  for (const node of edges.keys()) visit(node, [node]);
  return [...cycles.values()];
}

if (import.meta.main) {
  const i = process.argv.indexOf("--root");
  const root = resolve(i >= 0 ? (process.argv[i + 1] ?? ".") : join(import.meta.dir, ".."));
  const findings = await checkDependencies(root);
  for (const f of findings) process.stdout.write(`check-deps: ${f}\n`);
  const where = relative(process.cwd(), root) || ".";
  if (findings.length > 0) {
    process.stdout.write(`check-deps: ${findings.length} finding(s) in ${where}\n`);
    process.exit(1);
  }
  process.stdout.write(`check-deps: ok (${where}: no cycles, layers respected)\n`);
}
