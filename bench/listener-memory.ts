#!/usr/bin/env bun
/**
 * What a real `osrf-prefork serve` listener holds: its memory (smaps_rollup) once registered,
 * and again after serving requests and idling, and its CPU from exec to registered.
 * Binaries take turns (A B A B …) so that the shared machine's drift hits each alike.
 *
 *   bun bench/listener-memory.ts --variant=LABEL;bin=PATH[;env=K=V,K=V] [--variant=…] [--rounds=4]
 *                                [--drones=5] [--requests=2000] [--idle=1000] [--smaps=DIR]
 *
 * The router runs from source (`bun src/cli.ts`), so it shares no pages with any variant's
 * binary: the listener's PSS is its own and its drones' share of the binary.
 */
import { copyFileSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { opt } from "./args.ts";
import { cpuSeconds, type Memory, memory } from "./costs.ts";
import { machineLine, mb, say } from "./report.ts";
import { startServe, startStack } from "./stack.ts";

const rounds = Number(opt("rounds", "4"));
const drones = Number(opt("drones", "5"));
const requests = Number(opt("requests", "2000"));
const idleMs = Number(opt("idle", "1000"));
const smapsDir = opt("smaps", "");

interface Variant {
  label: string;
  bin: string;
  /** Extra environment of the listener (and so of its drones). */
  env: Record<string, string>;
}
const plan: Variant[] = process.argv
  .filter((a) => a.startsWith("--variant="))
  .map((a) => {
    const [label, ...parts] = a.slice("--variant=".length).split(";");
    const get = (k: string) => parts.find((p) => p.startsWith(`${k}=`))?.slice(k.length + 1) ?? "";
    const bin = get("bin");
    if (!label || !bin) throw new Error(`--variant needs LABEL;bin=PATH, got ${a}`);
    const env: Record<string, string> = {};
    for (const kv of get("env").split(",").filter(Boolean)) {
      const [k, ...v] = kv.split("=");
      env[k!] = v.join("=");
    }
    return { label, bin, env };
  });
if (plan.length === 0) throw new Error("give at least one --variant=LABEL;bin=PATH");

/** One listener's figures. */
interface Run {
  /** CPU seconds from exec to registered. */
  startCpu: number;
  /** The listener's CPU per request, µs (one caller, one request at a time). */
  perRequestUs: number;
  registered?: Memory;
  served?: Memory;
}

/** CPU nanoseconds of all of `pid`'s threads so far (schedstat). */
function cpuNs(pid: number): number {
  let ns = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // the thread ended
    }
  }
  return ns;
}

function keepSmaps(pid: number, label: string, when: string): void {
  if (!smapsDir) return;
  mkdirSync(smapsDir, { recursive: true });
  copyFileSync(`/proc/${pid}/smaps`, join(smapsDir, `${label}-${pid}-${when}.smaps`));
}

delete process.env.OSRF_PREFORK_BIN;
const stack = await startStack("ejabberd");
const runs = new Map<Variant, Run[]>(plan.map((v) => [v, []]));
say(`listener-memory: ${rounds} rounds, ${drones} drones, ${requests} add requests, ${idleMs} ms idle`);
try {
  for (let round = 0; round < rounds; round++) {
    for (const v of plan) {
      process.env.OSRF_PREFORK_BIN = v.bin;
      stack.env = v.env;
      const served = await startServe(stack, { service: "opensrf.math", app: "examples/math.ts", drones });
      const pid = served.proc.pid;
      const run: Run = { startCpu: cpuSeconds(pid), perRequestUs: 0 };
      await Bun.sleep(500);
      run.registered = memory(pid);
      keepSmaps(pid, v.label, "registered");
      const before = cpuNs(pid);
      for (let i = 0; i < requests; i++) await stack.client.request("opensrf.math", "add", [i, 1]).first();
      run.perRequestUs = (cpuNs(pid) - before) / requests / 1000;
      await Bun.sleep(idleMs);
      run.served = memory(pid);
      keepSmaps(pid, v.label, "served");
      await served.stop();
      runs.get(v)!.push(run);
    }
  }
} finally {
  delete process.env.OSRF_PREFORK_BIN;
  await stack.stop();
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const out: string[] = [];
out.push(`Listener memory, median of ${rounds} listeners per variant, ${drones} drones each (${machineLine()})`);
out.push("");
for (const v of plan) {
  const env = Object.entries(v.env).map(([k, x]) => `${k}=${x}`);
  out.push(`- ${v.label}: ${v.bin}${env.length ? `; ${env.join(" ")}` : ""}`);
}
out.push("");
out.push(`| listener (median) | ${plan.map((v) => v.label).join(" | ")} |`);
out.push(`|---|${plan.map(() => "---:").join("|")}|`);
const row = (what: string, f: (rs: Run[]) => string) =>
  out.push(`| ${what} | ${plan.map((v) => f(runs.get(v)!)).join(" | ")} |`);
row("CPU exec → registered, ms", (rs) => (median(rs.map((r) => r.startCpu)) * 1000).toFixed(0));
row("CPU per request, µs", (rs) => median(rs.map((r) => r.perRequestUs)).toFixed(1));
const mem = (pick: (r: Run) => Memory | undefined) => (rs: Run[]) => {
  const m = rs.map(pick).filter((x): x is Memory => x !== undefined);
  return `${mb(median(m.map((x) => x.rssKb)))} / ${mb(median(m.map((x) => x.pssKb)))} / ${mb(median(m.map((x) => x.privateKb)))} / ${mb(median(m.map((x) => x.anonKb)))}`;
};
row(
  "registered: RSS / PSS / private / anonymous",
  mem((r) => r.registered),
);
row(
  `after ${requests} requests and ${idleMs} ms idle: RSS / PSS / private / anonymous`,
  mem((r) => r.served),
);
console.log(out.join("\n"));
process.exit(0);
