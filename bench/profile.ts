#!/usr/bin/env bun
/**
 * Where the CPU of one workload goes: CPU per call of every process on the path (from
 * /proc, over the measured window), and optionally CPU profiles of router, listener and
 * drones (Bun's --cpu-prof-md through BUN_OPTIONS) and of the caller (this process, when
 * started with `bun --cpu-prof-md`). One markdown profile per process lands in DIR; read
 * them with bench/profile-summary.ts.
 *
 *   bun bench/profile.ts DIR [--method=echo|add|big|session|relay] [--c=8] [--drones=8]
 *                            [--seconds=5] [--warmup=1] [--no-prof]
 *   bun --cpu-prof-md --cpu-prof-dir=DIR bench/profile.ts DIR ...   # the caller too
 */
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { childrenOf, cpuBetween, cpuSnapshot, ioCounters } from "./costs.ts";
import { runLoad } from "./load.ts";
import { ADD_PARAMS, BIG_BYTES, ECHO_PARAMS, SESSION_REQUESTS, startRelay } from "./relay.ts";
import { startServe, startStack } from "./stack.ts";
import { threadCpu } from "./threads.ts";

const opt = (name: string, fallback: string) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1] ?? fallback;
const dir = resolve(process.argv[2] ?? "profiles");
const method = opt("method", "echo");
const c = Number(opt("c", "8"));
const drones = Number(opt("drones", "8"));
const seconds = Number(opt("seconds", "5"));
const warmup = Number(opt("warmup", "1"));
const profile = !process.argv.includes("--no-prof");
mkdirSync(dir, { recursive: true });

const stack = await startStack(
  "ejabberd",
  profile ? { BUN_OPTIONS: `--cpu-prof-md --cpu-prof-interval=250 --cpu-prof-dir=${dir}` } : {},
);
const roles: Array<[string, number[]]> = [
  ["router", [stack.router.pid]],
  ["xmpp", [stack.xmpp.pid]],
  ["caller", [process.pid]],
];
let call: () => Promise<unknown>;
let stop: () => Promise<void>;
let droneThreads: number[] = [];

if (method === "relay") {
  const relay = await startRelay({ kind: "xmpp", xmpp: stack.xmpp }, stack.dir);
  roles.splice(0, 1, ["relay nodes", relay.pids()]);
  call = relay.echo;
  stop = () => relay.stop();
} else {
  const service = method === "big" ? "opensrf.stream" : "opensrf.math";
  const served = await startServe(stack, {
    service,
    app: method === "big" ? "examples/stream.ts" : "examples/math.ts",
    drones,
  });
  const client = stack.client;
  const session = async () => {
    const s = client.session(service);
    await s.connect();
    for (let i = 0; i < SESSION_REQUESTS; i++) await s.request("opensrf.system.echo", ECHO_PARAMS).collect();
    s.disconnect();
  };
  const calls: Record<string, () => Promise<unknown>> = {
    echo: () => client.request(service, "opensrf.system.echo", ECHO_PARAMS).collect(),
    add: () => client.request(service, "add", ADD_PARAMS).first(),
    big: () => client.request(service, "big", [BIG_BYTES]).first(),
    session,
  };
  call = calls[method] ?? calls.echo!;
  const listener = served.proc.pid;
  droneThreads = childrenOf(listener);
  roles.unshift(["listener", [listener]], ["drones", droneThreads]);
  stop = () => served.stop();
}

const pids = roles.flatMap(([, p]) => p);
let before = new Map<number, number>();
let after = new Map<number, number>();
let threadsBefore = new Map<number, Map<string, number>>();
let threadsAfter = new Map<number, Map<string, number>>();
const io = () => new Map(pids.map((p) => [p, ioCounters(p)]));
let ioBefore = io();
let ioAfter = io();
const r = await runLoad(
  {
    concurrency: c,
    warmupMs: warmup * 1000,
    measureMs: seconds * 1000,
    onWindow: (edge) => {
      const threads = new Map(droneThreads.map((p) => [p, threadCpu(p)]));
      if (edge === "start") {
        ioBefore = io();
        before = cpuSnapshot(pids);
        threadsBefore = threads;
      } else {
        after = cpuSnapshot(pids);
        ioAfter = io();
        threadsAfter = threads;
      }
    },
  },
  call,
);
const perCall = (s: number) => ((s / r.calls) * 1e6).toFixed(0);
process.stderr.write(
  `${method} c=${c}: ${r.perSecond.toFixed(0)}/s p50 ${r.p50.toFixed(2)} ms p99 ${r.p99.toFixed(2)} ms (${r.errors} errors)\n`,
);
process.stderr.write(
  `CPU µs per call: ${roles.map(([n, p]) => `${n} ${perCall(cpuBetween(before, after, p))}`).join(", ")}\n`,
);
if (process.argv.includes("--io")) {
  const sum = (ps: number[], k: "wchar" | "rchar" | "syscw" | "syscr") =>
    ps.reduce((n, p) => n + ((ioAfter.get(p)?.[k] ?? 0) - (ioBefore.get(p)?.[k] ?? 0)), 0);
  const per = (v: number) => (v / r.calls).toFixed(1);
  process.stderr.write(
    `I/O per call (bytes written, write calls, bytes read, read calls): ${roles.map(([n, p]) => `${n} ${per(sum(p, "wchar"))}/${per(sum(p, "syscw"))}/${per(sum(p, "rchar"))}/${per(sum(p, "syscr"))}`).join(", ")}\n`,
  );
}
if (droneThreads.length > 0) {
  const byThread = new Map<string, number>();
  for (const p of droneThreads) {
    for (const [n, v] of threadsAfter.get(p) ?? [])
      byThread.set(n, (byThread.get(n) ?? 0) + v - (threadsBefore.get(p)?.get(n) ?? 0));
  }
  const shown = [...byThread].filter(([, v]) => v > 0).map(([n, v]) => `${n} ${perCall(v)}`);
  process.stderr.write(`drone threads, CPU µs per call: ${shown.join(", ")}\n`);
}
await stop();
await stack.stop();
if (profile) process.stderr.write(`profiles in ${dir}\n`);
process.exit(0);
