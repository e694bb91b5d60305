#!/usr/bin/env bun
/**
 * Where the CPU of one workload goes: CPU per call of every process on the path (from
 * /proc, over the measured window), and optionally CPU profiles of router, listener and
 * drones (Bun's --cpu-prof-md through BUN_OPTIONS) and of the caller (this process, when
 * started with `bun --cpu-prof-md`). One markdown profile per process lands in DIR; read
 * them with bench/profile-summary.ts.
 *
 *   bun bench/profile.ts DIR [--method=echo|add|big|session|relay] [--c=8] [--drones=8]
 *                            [--seconds=5] [--warmup=1] [--no-prof] [--bus=redis]
 *                            [--max-requests=1000000]
 *   bun --cpu-prof-md --cpu-prof-dir=DIR bench/profile.ts DIR ...   # the caller too
 *
 * On XMPP (the default) the service runs behind our router on a private ejabberd. With
 * `--bus=redis` it runs as in `bench --vs-c --bus redis`: `osrf-prefork serve --bus redis`
 * behind the real C router of OpenSRF main (devkit/opensrf) on a private redis-server, called
 * by our Client on Redis. `--max-requests` sets the pool's max_requests (1000 is the stock
 * setting, under which drones are replaced before they are warm).
 */
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { startOpenSrfStack } from "../devkit/opensrf/stack.ts";
import type { Client } from "../src/client/client.ts";
import { withBus } from "../src/config/bus.ts";
import { readCoreConfig } from "../src/config/core.ts";
import { opt } from "./args.ts";
import { childrenCpuSeconds, childrenOf, cpuBetween, cpuSnapshot, ioCounters } from "./costs.ts";
import { runLoad } from "./load.ts";
import { ADD_PARAMS, BIG_BYTES, ECHO_PARAMS, type Relay, SESSION_REQUESTS, startRelay } from "./relay.ts";
import { connectCaller, ROOT, startServe, startStack } from "./stack.ts";
import { threadCpu } from "./threads.ts";

const dir = resolve(process.argv[2] ?? "profiles");
const method = opt("method", "echo");
const c = Number(opt("c", "8"));
const drones = Number(opt("drones", "8"));
const seconds = Number(opt("seconds", "5"));
const warmup = Number(opt("warmup", "1"));
const profile = !process.argv.includes("--no-prof");
const redis = opt("bus", "xmpp") === "redis";
const maxRequests = Number(opt("max-requests", "1000000"));
mkdirSync(dir, { recursive: true });
const profEnv: Record<string, string> = profile
  ? { BUN_OPTIONS: `--cpu-prof-md --cpu-prof-interval=250 --cpu-prof-dir=${dir}` }
  : {};

/** The bus with its router, one caller, and a way to serve one service on it. */
interface Bench {
  client: Client;
  /** The bus server's and the routers' pids. */
  busPid: number;
  routerPids: number[];
  relay(): Promise<Relay>;
  serve(service: string, app: string): Promise<{ pid: number; stop(): Promise<void> }>;
  stop(): Promise<void>;
}

async function xmppBench(): Promise<Bench> {
  const stack = await startStack("ejabberd", profEnv);
  return {
    client: stack.client,
    busPid: stack.xmpp.pid,
    routerPids: [stack.router.pid],
    relay: () => startRelay({ kind: "xmpp", xmpp: stack.xmpp }, stack.dir),
    async serve(service, app) {
      if (maxRequests !== 1_000_000) throw new Error("--max-requests needs --bus=redis");
      const served = await startServe(stack, { service, app, drones });
      return { pid: served.proc.pid, stop: () => served.stop() };
    },
    stop: () => stack.stop(),
  };
}

async function redisBench(): Promise<Bench> {
  const unixConfig = {
    minChildren: drones,
    maxChildren: drones,
    minSpareChildren: 0,
    maxSpareChildren: 0,
    maxRequests,
  };
  const apps: Array<[string, string]> = [
    ["opensrf.math", "examples/math.ts"],
    ["opensrf.stream", "examples/stream.ts"],
  ];
  // No Perl settings server and no C service: ours reads opensrf.xml itself.
  const stack = await startOpenSrfStack({
    release: "main",
    settings: false,
    loglevel: 1,
    services: apps.map(([name, app]) => ({
      name,
      language: "typescript",
      implementation: join(ROOT, app),
      keepalive: 3,
      unixConfig,
    })),
  });
  const read = readCoreConfig(stack.paths.core);
  const client = await connectCaller({ ...read, opensrf: withBus(read.opensrf, { flag: "redis" }) }, stack.dir);
  return {
    client,
    busPid: stack.redis.pid,
    routerPids: stack.routerPids(),
    relay: () => startRelay({ kind: "redis", redis: stack.redis }, stack.dir),
    async serve(service, app) {
      const cli = await stack.servePrefork(service, join(ROOT, app), ["--bus", "redis"], profEnv);
      return { pid: cli.pid, stop: () => stack.stopService(service, 15_000) };
    },
    async stop() {
      await client.close();
      await stack.stop();
    },
  };
}

const bench = redis ? await redisBench() : await xmppBench();
const roles: Array<[string, number[]]> = [
  ["router", bench.routerPids],
  [redis ? "redis-server" : "xmpp", [bench.busPid]],
  ["caller", [process.pid]],
];
let call: () => Promise<unknown>;
let stop: () => Promise<void>;
let droneThreads: number[] = [];
/** The listener whose children are the drones (0 for the relay). */
let listenerPid = 0;

if (method === "relay") {
  const relay = await bench.relay();
  roles.splice(0, 1, ["relay nodes", relay.pids()]);
  call = relay.echo;
  stop = () => relay.stop();
} else {
  const service = method === "big" ? "opensrf.stream" : "opensrf.math";
  const served = await bench.serve(service, method === "big" ? "examples/stream.ts" : "examples/math.ts");
  const client = bench.client;
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
  const listener = served.pid;
  listenerPid = listener;
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
// Drones replaced during the window (max_requests) are counted through the listener's
// cutime+cstime; a snapshot of the drone pids at the start would miss them.
let dronesBefore = 0;
let dronesAfter = 0;
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
        dronesBefore = listenerPid ? childrenCpuSeconds(listenerPid) : 0;
        threadsBefore = threads;
      } else {
        after = cpuSnapshot(pids);
        dronesAfter = listenerPid ? childrenCpuSeconds(listenerPid) : 0;
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
  `CPU µs per call: ${roles.map(([n, p]) => `${n} ${perCall(n === "drones" ? dronesAfter - dronesBefore : cpuBetween(before, after, p))}`).join(", ")}\n`,
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
await bench.stop();
if (profile) process.stderr.write(`profiles in ${dir}\n`);
process.exit(0);
