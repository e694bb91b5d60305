/**
 * `npm run demo` as a user runs it, with `--once` so it stops by itself: on XMPP, on Redis,
 * and on Redis behind the real C router of OpenSRF main (when its tarball is there). Each
 * must bring its stack up, print the answers of the example services and exit 0, leaving none
 * of the processes it started on its config running.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { peerAvailableForTests } from "../../devkit/opensrf/peer.ts";

const ROOT = resolve(import.meta.dir, "../..");

async function demo(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn([process.execPath, "scripts/demo.ts", "--once", ...args], {
    cwd: ROOT,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { code, stdout, stderr };
}

/** Pids of live processes whose command line names `text`. */
function processesNaming(text: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, "latin1").includes(text)) out.push(Number(e));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** What every variant prints: the answers of math, stream, the router and the cart session. */
function expectAnswers(r: { code: number; stdout: string; stderr: string }): void {
  expect(r.code, r.stdout + r.stderr).toBe(0);
  expect(r.stdout).toContain("# stateless\n4\n");
  expect(r.stdout).toContain('# system method\n"hello"\n42\n');
  expect(r.stdout).toContain("# streaming\n1\n2\n3\n4\n5\n");
  expect(r.stdout).toContain("cart total → 3\n");
  expect(r.stdout).toContain("stopping the demo stack");
  const config = /config (\S+opensrf_core\.xml)/.exec(r.stdout)?.[1];
  expect(config).toBeDefined();
  expect(processesNaming(config!)).toEqual([]);
}

describe("npm run demo -- --once", () => {
  test("XMPP (prosody), our router", async () => {
    const r = await demo(["--prosody"]);
    expectAnswers(r);
    expect(r.stdout).toContain("our router and 3 prefork services are up on XMPP");
  }, 120_000);

  test("--bus redis: a private redis-server, our router", async () => {
    const r = await demo(["--bus", "redis"]);
    expectAnswers(r);
    expect(r.stdout).toContain("our router and 3 prefork services are up on Redis");
    expect(r.stdout).toContain("$ osrf-prefork request --bus redis opensrf.math add 2 2");
  }, 120_000);

  test.skipIf(!peerAvailableForTests("test/integration/demo.test.ts", "main"))(
    "--bus redis --router c: the real C router of OpenSRF main, and its srfsh",
    async () => {
      const r = await demo(["--bus", "redis", "--router", "c"]);
      expectAnswers(r);
      expect(r.stdout).toContain("the real C router of OpenSRF main and 3 prefork services are up on Redis");
      expect(r.stdout).toContain("Received Data: 42\n");
    },
    15 * 60_000,
  );

  test("a wrong --bus: one line naming the choices, exit 2", async () => {
    const r = await demo(["--bus", "nats"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('demo: --bus takes xmpp or redis, not "nats"');
  });
});
