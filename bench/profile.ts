#!/usr/bin/env bun
/**
 * CPU profiles of every process on the path of one workload: router, listener and drones
 * (Bun's --cpu-prof-md through BUN_OPTIONS), and the caller (this process, when started
 * with `bun --cpu-prof-md`). One markdown profile per process lands in DIR.
 *
 *   bun --cpu-prof-md --cpu-prof-dir=DIR bench/profile.ts DIR [--method=echo|add|big|session] [--c=8] [--drones=8] [--seconds=5]
 *   bun bench/profile.ts DIR --no-prof      # CPU per call of each process only, no profiles
 */
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { childrenOf, cpuBetween, cpuSnapshot } from "./costs.ts";
import { runLoad } from "./load.ts";
import { threadCpu } from "./threads.ts";
import { ADD_PARAMS, BIG_BYTES, ECHO_PARAMS, SESSION_REQUESTS } from "./relay.ts";
import { startServe, startStack } from "./stack.ts";

const opt = (name: string, fallback: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1] ?? fallback;
const dir = resolve(process.argv[2] ?? "profiles");
const method = opt("method", "echo");
const c = Number(opt("c", "8"));
const drones = Number(opt("drones", "8"));
const seconds = Number(opt("seconds", "5"));
mkdirSync(dir, { recursive: true });

const profile = !process.argv.includes("--no-prof");
const stack = await startStack("ejabberd", profile ? { BUN_OPTIONS: `--cpu-prof-md --cpu-prof-interval=250 --cpu-prof-dir=${dir}` } : {});
const service = method === "big" ? "opensrf.stream" : "opensrf.math";
const served = await startServe(stack, { service, app: method === "big" ? "examples/stream.ts" : "examples/math.ts", drones });
const session = async () => {
  const s = stack.client.session(service);
  await s.connect();
  for (let i = 0; i < SESSION_REQUESTS; i++) await s.request("opensrf.system.echo", ECHO_PARAMS).collect();
  s.disconnect();
};
const call =
  method === "session"
    ? session
    : method === "add"
    ? () => stack.client.request(service, "add", ADD_PARAMS).first()
    : method === "big"
      ? () => stack.client.request(service, "big", [BIG_BYTES]).first()
      : () => stack.client.request(service, "opensrf.system.echo", ECHO_PARAMS).collect();
const listener = served.proc.pid;
const dronePids = childrenOf(listener);
const roles: Array<[string, number[]]> = [["listener", [listener]], ["drones", dronePids], ["router", [stack.router.pid]], ["xmpp", [stack.xmpp.pid]], ["caller", [process.pid]]];
const pids = roles.flatMap(([, p]) => p);
let before = new Map<number, number>();
let after = new Map<number, number>();
let threadsBefore = new Map<number, Map<string, number>>();
const r = await runLoad({ concurrency: c, warmupMs: Number(opt("warmup", "1")) * 1000, measureMs: seconds * 1000, onWindow: (e) => {
  if (e === "start") {
    before = cpuSnapshot(pids);
    threadsBefore = new Map([...dronePids, listener].map((p) => [p, threadCpu(p)]));
  } else after = cpuSnapshot(pids);
} }, call);
process.stderr.write(`${method} c=${c}: ${r.perSecond.toFixed(0)}/s p50 ${r.p50.toFixed(2)} ms p99 ${r.p99.toFixed(2)} ms (${r.errors} errors)\n`);
const threadsAfter = new Map([...dronePids, listener].map((p) => [p, threadCpu(p)]));
const byThread = new Map<string, number>();
for (const p of dronePids) for (const [n, v] of threadsAfter.get(p) ?? []) byThread.set(n, (byThread.get(n) ?? 0) + v - (threadsBefore.get(p)?.get(n) ?? 0));
process.stderr.write(`drone threads, µs per call: ${[...byThread].filter(([, v]) => v > 0).map(([n, v]) => `${n} ${((v / r.calls) * 1e6).toFixed(0)}`).join(", ")}\n`);
process.stderr.write(`CPU µs per call: ${roles.map(([n, p]) => `${n} ${((cpuBetween(before, after, p) / r.calls) * 1e6).toFixed(0)}`).join(", ")}\n`);
await served.stop();
await stack.stop();
process.stderr.write(`profiles in ${dir}\n`);
process.exit(0);
