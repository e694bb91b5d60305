#!/usr/bin/env bun
/**
 * Summarizes the markdown CPU profiles written by bench/profile.ts (or `--profile=DIR` of
 * bench/run.ts): per process, its role and its hottest functions by self time.
 *
 *   bun bench/profile-summary.ts DIR [--top=15]
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const dir = process.argv[2] ?? "profiles";
const top = Number(process.argv.find((a) => a.startsWith("--top="))?.split("=")[1] ?? 15);

/** Which process a profile came from, by the code it ran. */
function role(text: string): string {
  if (text.includes("src/prefork/drone.ts")) return "drone";
  if (text.includes("src/prefork/pool.ts") || text.includes("src/prefork/listener.ts")) return "listener";
  if (text.includes("src/router/router.ts")) return "router";
  if (text.includes("/bench/")) return "caller (bench)";
  return "other";
}

const files = readdirSync(dir).filter((f) => f.endsWith(".md"));
const byRole = new Map<string, Array<{ file: string; text: string }>>();
for (const f of files) {
  const text = readFileSync(join(dir, f), "utf8");
  const r = role(text);
  byRole.set(r, [...(byRole.get(r) ?? []), { file: f, text }]);
}
for (const [r, list] of byRole) {
  // The busiest process of a role stands for it (drones are alike).
  const samples = (t: string) => Number(/\| [\d.]+m?s \| (\d+) \|/.exec(t)?.[1] ?? 0);
  list.sort((a, b) => samples(b.text) - samples(a.text));
  const { file, text } = list[0]!;
  process.stdout.write(
    `\n### ${r} (${list.length} process${list.length > 1 ? "es" : ""}; busiest: ${file}, ${samples(text)} samples)\n\n`,
  );
  // Self time in these profiles charges idle gaps to the next sample; sample counts do not.
  const details = [...text.matchAll(/^### `([^`]*)`\n`([^`]*)` \| Self: [^|]*\| Total: [^|]*\| Samples: (\d+)/gm)];
  const total = details.reduce((n, m) => n + Number(m[3]), 0);
  const hot = details.map((m) => ({
    fn: m[1]!,
    where: m[2]!.replace(/^.*?\/(src|bench|test|node_modules)\//, "$1/"),
    n: Number(m[3]),
  }));
  hot.sort((a, b) => b.n - a.n);
  process.stdout.write("| samples | share | function | location |\n|---:|---:|---|---|\n");
  for (const h of hot.slice(0, top)) {
    process.stdout.write(`| ${h.n} | ${((h.n / total) * 100).toFixed(1)}% | ${h.fn} | ${h.where} |\n`);
  }
}
