/**
 * `npm run bench -- --smoke`: the whole benchmark in miniature (relay ceiling, OpenSRF calls,
 * the 1 MB and session cases, drone start-up, in-process baseline, parser) completes and
 * prints its table with every row compared to the relay ceiling. Speed is never asserted:
 * smoke numbers come from a few dozen calls on a shared machine.
 */
import { expect, test } from "bun:test";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../..");

test("bench --smoke completes and prints the ratio table", async () => {
  // The bench's own default is ejabberd; a run that chose its XMPP server keeps it.
  const xmpp = process.env.OSRF_TEST_XMPP || "ejabberd";
  const proc = Bun.spawn([process.execPath, join(ROOT, "bench/run.ts"), "--smoke", `--xmpp=${xmpp}`], {
    cwd: ROOT,
    stdout: "pipe",
    stderr: "pipe",
    stdin: "ignore",
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), 150_000);
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  clearTimeout(timer);
  if (code !== 0) throw new Error(`bench --smoke exited with ${code}\n${stderr.slice(-3000)}\n${stdout.slice(-2000)}`);

  expect(stdout).toContain(`## osrf-prefork bench — smoke, ${xmpp}`);
  expect(stdout).toContain("| case | pool | c | calls/s | p50 ms | p95 ms | p99 ms | p99/p50 | vs relay |");
  const rows = stdout.split("\n").filter((l) => l.startsWith("| ") && !l.startsWith("| case") && !l.startsWith("|---"));
  const row = (name: string) => rows.filter((l) => l.startsWith(`| ${name}`));
  expect(row("relay: echo-sized round trip").length).toBeGreaterThan(0);
  for (const name of [
    "opensrf.system.echo",
    "opensrf.math add",
    "session (CONNECT",
    "opensrf.stream big",
    "in-process",
  ]) {
    const found = row(name);
    expect(found.length).toBeGreaterThan(0);
    // The last column is the ratio to the relay ceiling: a number for every row.
    for (const l of found) expect(l.split("|").at(-2)!.trim()).toMatch(/^\d+(\.\d+)?/);
  }
  expect(stdout).toContain("drone spawn → ready");
  expect(stdout).toContain("idle drone RSS / PSS");
  expect(stdout).toContain("tokenize 1 MB in 64 KB chunks");
  expect(stdout).toContain('IPC "json"');
}, 160_000);
