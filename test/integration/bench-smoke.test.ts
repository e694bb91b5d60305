/**
 * `npm run bench -- --smoke`: the whole benchmark in miniature (relay ceiling, OpenSRF calls,
 * the 1 MB and session cases, drone start-up, in-process baseline, parser) completes and
 * prints its table with every row compared to the relay ceiling; `--vs-c --smoke` (against
 * the real C prefork of OpenSRF 3.3 on XMPP) and `--vs-c --bus redis --smoke` (against OpenSRF
 * main's on Redis) complete and print their ratio, CPU and memory tables. Speed is never
 * asserted: smoke numbers come from a few dozen calls on a shared machine.
 */
import { expect, test } from "bun:test";
import { join, resolve } from "node:path";
import { ensurePeer, peerAvailableForTests } from "../../devkit/opensrf/peer.ts";
import { runCommand } from "../../devkit/processes.ts";

const ROOT = resolve(import.meta.dir, "../..");

test("bench --smoke completes and prints the ratio table", async () => {
  // The bench's own default is ejabberd; a run that chose its XMPP server keeps it.
  const xmpp = process.env.OSRF_TEST_XMPP || "ejabberd";
  const stdout = await runBench(["--smoke", `--xmpp=${xmpp}`]);

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

/** Runs bench/run.ts with `args`; its stdout, or a failure with the tails of both streams. */
async function runBench(args: string[]): Promise<string> {
  const { code, stdout, stderr } = await runCommand([process.execPath, join(ROOT, "bench/run.ts"), ...args], {
    cwd: ROOT,
    timeoutMs: 150_000,
  });
  if (code !== 0) {
    throw new Error(`bench ${args.join(" ")} exited with ${code}\n${stderr.slice(-3000)}\n${stdout.slice(-2000)}`);
  }
  return stdout;
}

/** Every table of a `--vs-c` report, with ours/C a number in every cell both sides ran. */
function expectVsCTables(stdout: string, title: string, busServer: string): void {
  expect(stdout).toContain(title);
  expect(stdout).toContain("| case | pool | c | ours/C | ours calls/s | C calls/s | relay |");
  const rows = stdout.split("\n").filter((l) => l.startsWith("| ") && !l.startsWith("| case"));
  for (const pool of ["5–15, spare 2–5", "15 fixed"]) {
    for (const name of ["opensrf.system.echo", "add 2, 2", "session (CONNECT", "echo of 60 KB"]) {
      const found = rows.filter((l) => l.startsWith(`| ${name}`) && l.includes(`| ${pool} |`));
      expect(found.length).toBeGreaterThan(0);
      // ours/C: a number for every row both sides ran; the relay ceiling too.
      for (const l of found) {
        expect(l.split("|")[4]!.trim()).toMatch(/^\*\*\d+(\.\d+)?\*\*$/);
        expect(l.split("|")[7]!.trim()).toMatch(/^\d[\d,.]*$/);
      }
    }
    expect(rows.some((l) => l.startsWith("| echo of 1 MB") && l.includes(`| ${pool} |`))).toBe(true);
  }
  expect(stdout).toContain("C and a 1 MB request:");
  expect(stdout).toContain("CPU per echo call at c=8");
  expect(stdout).toContain(`| ${busServer} (shared) |`);
  expect(stdout).toContain("| drones (all, incl. replaced ones) |");
  expect(stdout).toContain("| relay processes (bare clients) |");
  expect(stdout).toContain(`| ${busServer} alone, one core: calls/s |`);
  expect(stdout).toContain("| side | pool | drones | drone RSS / PSS / private (avg) | listener RSS / PSS / private |");
  expect(stdout).toContain("Our drone spawn → ready");
}

// Against the real C prefork: needs the OpenSRF 3.3 peer (devkit/opensrf; CI builds it first).
// About 30 s on a warm peer cache. Speed is never asserted here either.
const HAVE_PEER = peerAvailableForTests("bench --vs-c --smoke");

test.skipIf(!HAVE_PEER)(
  "bench --vs-c --smoke runs both sides under both pool settings and prints every table",
  async () => {
    await ensurePeer();
    const stdout = await runBench(["--vs-c", "--smoke"]);
    expectVsCTables(stdout, "## osrf-prefork vs the C prefork — smoke, XMPP (OpenSRF 3.3.0)", "ejabberd");
  },
  160_000,
);

// The same on Redis against OpenSRF main's C prefork: needs the main peer (built from its tarball).
const HAVE_MAIN_PEER = peerAvailableForTests("bench --vs-c --bus redis --smoke", "main");

test.skipIf(!HAVE_MAIN_PEER)(
  "bench --vs-c --bus redis --smoke runs ours and C main on Redis under both pool settings and prints every table",
  async () => {
    await ensurePeer("main");
    const stdout = await runBench(["--vs-c", "--bus", "redis", "--smoke"]);
    expectVsCTables(stdout, "## osrf-prefork vs the C prefork — smoke, Redis (OpenSRF main", "redis-server");
    expect(stdout).toContain("`osrf-prefork serve` from bun src/cli.ts; C: OpenSRF main");
    expect(stdout).toContain("one Redis connection");
  },
  160_000,
);
