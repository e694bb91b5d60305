#!/usr/bin/env bun
/**
 * Routing across hosts: `opensrf.system.echo` at c=32 from host D, first with only host B's
 * listener registered, then with B's and C's, on the multi-host stack of devkit/netns (router
 * on A, ejabberd nodes on A and B, clustered). Every host is a network namespace on the same
 * machine, sharing its cores: two hosts cannot give more throughput here, so the ratio shows
 * what spreading over hosts costs (nothing, if it is about 1), not what it gains.
 *
 *   bun bench/scaleout.ts                 # 3 rounds of 5 s per case, after a warm-up
 *   bun bench/scaleout.ts --quick         # 1 round of 2 s
 *   bun bench/scaleout.ts --router=c      # behind the real C router (needs the OpenSRF tarball)
 *
 * "One host" takes C out with SIGUSR1 (its listener unregisters; its drones stay, idle): both
 * cases run the same processes, only the routing differs. Needs root (network namespaces).
 */
import type { LoadRecord } from "../devkit/netns/agent-protocol.ts";
import { netnsAvailable } from "../devkit/netns/network.ts";
import { hostOf, type RouterKind, ScaleOutStack } from "../devkit/netns/scaleout.ts";

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const router = (args.find((a) => a.startsWith("--router="))?.split("=")[1] ?? "prefork") as RouterKind;
const ROUNDS = quick ? 1 : 3;
const WINDOW_MS = quick ? 2000 : 5000;
const C = 32;

interface Cell {
  callsPerSec: number;
  p50: number;
  p99: number;
  errors: number;
  hosts: Record<string, number>;
}

function summarize(records: LoadRecord[], ms: number): Cell {
  const ok = records.filter((r) => r.outcome === "ok");
  const lat = ok.map((r) => r.ms).sort((a, b) => a - b);
  const pct = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? 0;
  const hosts: Record<string, number> = {};
  for (const r of ok) hosts[hostOf(r.from)] = (hosts[hostOf(r.from)] ?? 0) + 1;
  return {
    callsPerSec: (ok.length / ms) * 1000,
    p50: pct(0.5),
    p99: pct(0.99),
    errors: records.length - ok.length,
    hosts,
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const ok = netnsAvailable();
  if (!ok.ok) {
    console.error(`bench/scaleout.ts needs network namespaces: ${ok.reason}`);
    process.exit(2);
  }
  const s = await ScaleOutStack.start({
    router,
    // 16 drones per host: c=32 never waits for a drone, on either host count.
    unix: { min_children: 16, max_children: 16, register_interval: 600 },
    serveLoglevel: 3,
    routerLoglevel: 3,
  });
  try {
    const window = async (tag: string): Promise<Cell> => {
      const { reply } = s.agent.load({
        service: s.service,
        method: "opensrf.system.echo",
        params: ["hello", 42],
        total: 10_000_000,
        concurrency: C,
        timeout: 10,
        tag,
        deadlineMs: WINDOW_MS,
      });
      const r = await reply;
      return summarize(r.records, r.elapsedMs);
    };
    const registered = async (n: number) =>
      s.waitFor(`${n} listener(s) registered`, 30_000, async () => (await s.listenerNodes()).length === n);
    const cListener = s.serves.get("c")!;

    await window("warmup"); // every drone on both hosts JIT-compiles
    const one: Cell[] = [];
    const two: Cell[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      cListener.proc.kill("SIGUSR1");
      await registered(1);
      one.push(await window(`one-${i}`));
      cListener.proc.kill("SIGUSR2");
      await registered(2);
      two.push(await window(`two-${i}`));
    }
    const line = (name: string, cells: Cell[]) => {
      const c = cells.map((x) => x.callsPerSec);
      const last = cells.at(-1)!;
      return (
        `| ${name} | ${C} | ${Math.round(median(c)).toLocaleString("en")} | ${median(cells.map((x) => x.p50))} | ` +
        `${median(cells.map((x) => x.p99))} | ${cells.reduce((a, x) => a + x.errors, 0)} | ${JSON.stringify(last.hosts)} |`
      );
    };
    const ratio = median(two.map((x) => x.callsPerSec)) / median(one.map((x) => x.callsPerSec));
    console.log(
      `\nscale-out bench (${router} router, echo, ${ROUNDS} round(s) of ${WINDOW_MS / 1000} s, medians):\n\n` +
        `| hosts serving | c | calls/s | p50 ms | p99 ms | errors | answered by (last round) |\n|---|---:|---:|---:|---:|---:|---|\n` +
        `${line("one (B)", one)}\n${line("two (B + C)", two)}\n\ntwo hosts / one host: ${ratio.toFixed(2)}`,
    );
  } finally {
    await s.stop();
  }
}

await main();
