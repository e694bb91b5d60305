/**
 * What processes cost: CPU time and memory from /proc, and drone start-up measured with
 * the listener's own spawner (spawn → the drone's `ready`: runtime start, module load,
 * XMPP login, childInit).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { PREFORK_DEFAULTS } from "../src/config/prefork-settings.ts";
import type { CoreConfig } from "../src/config/types.ts";
import type { DroneInit } from "../src/prefork/ipc.ts";
import { BunDroneSpawner } from "../src/prefork/spawner.ts";
import type { DroneHandle } from "../src/prefork/types.ts";
import { BENCH_HOST, ROOT } from "./stack.ts";

const CLOCK_TICKS = 100; // USER_HZ on Linux

function readProc(pid: number, file: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/${file}`, "utf8");
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system) used so far by `pid`, 0 when it is gone. */
export function cpuSeconds(pid: number): number {
  const stat = readProc(pid, "stat");
  if (!stat) return 0;
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14 and 15 of stat (utime, stime) are 12 and 13 after the command name.
  return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS;
}

/**
 * CPU seconds so far of a single-threaded process (the C router), 0 when it is gone: the
 * scheduler's own count in ns (`schedstat`), not `stat`'s 10 ms ticks, which in a window of
 * under a second are ±10 ms on a figure of tens of ms.
 */
export function runtimeSeconds(pid: number): number {
  const s = readProc(pid, "schedstat");
  return s ? Number(s.split(" ")[0]) / 1e9 : 0;
}

/**
 * Memory of one process in kB (from smaps_rollup): RSS, PSS and private, and anonymous memory
 * (heap, JIT code, stacks: what the process made itself, however many others map the binary).
 */
export interface Memory {
  rssKb: number;
  pssKb: number;
  privateKb: number;
  anonKb: number;
}

/** Memory of `pid`, or undefined when it is gone. */
export function memory(pid: number): Memory | undefined {
  const text = readProc(pid, "smaps_rollup");
  if (!text) return undefined;
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? 0);
  return {
    rssKb: field("Rss"),
    pssKb: field("Pss"),
    privateKb: field("Private_Clean") + field("Private_Dirty"),
    anonKb: field("Anonymous"),
  };
}

/** Live child pids of `pid`. */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    const stat = readProc(Number(e), "stat");
    if (!stat) continue;
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(rest[1]) === pid && rest[0] !== "Z") out.push(Number(e));
  }
  return out;
}

/** CPU seconds of each pid, to diff two snapshots. */
export function cpuSnapshot(pids: number[]): Map<number, number> {
  return new Map(pids.map((p) => [p, cpuSeconds(p)]));
}

/** CPU seconds used between two snapshots, summed over `pids`. */
export function cpuBetween(before: Map<number, number>, after: Map<number, number>, pids: number[]): number {
  let s = 0;
  for (const p of pids) s += (after.get(p) ?? 0) - (before.get(p) ?? 0);
  return s;
}

/** What a spawn run measured. */
export interface SpawnResult {
  drones: number;
  /** Each drone's spawn → ready, ms (sorted). */
  readyMs: number[];
  /** CPU each drone had used when it reported ready (utime+stime), ms (sorted). */
  readyCpuMs: number[];
  /** First spawn → last ready, ms. */
  allReadyMs: number;
  /** Per drone, once all are idle. */
  memory: Memory[];
  failed: number;
}

/** The DroneInit `serve` would send for `service` with default settings. */
export function droneInit(core: CoreConfig, service: string, app: string, logfile: string): DroneInit {
  const d = PREFORK_DEFAULTS;
  return {
    service,
    appPath: join(ROOT, app),
    hostname: BENCH_HOST,
    client: core.opensrf,
    logProtect: core.logProtect,
    settings: {
      keepalive: d.keepalive,
      maxChunkSize: d.maxChunkSize,
      maxBundleSize: d.maxBundleSize,
      maxMemoryMb: 0,
      warmupRequests: d.warmupRequests,
    },
    maxRequests: 1_000_000,
    log: { logfile, loglevel: core.opensrf.loglevel },
  };
}

/**
 * Spawns `count` drones at once with the listener's spawner (running `command`, by default
 * this program's own drone command), waits until every one reported `ready` (or
 * `timeoutMs`), reads their memory while idle, then stops them.
 */
export async function spawnStorm(
  init: DroneInit,
  count: number,
  env: Record<string, string>,
  command?: string[],
  timeoutMs = 120_000,
): Promise<SpawnResult> {
  const spawner = new BunDroneSpawner({ init, jitter: 0, env, ...(command ? { command } : {}) });
  const readyMs: number[] = [];
  const readyCpuMs: number[] = [];
  let failed = 0;
  const handles: DroneHandle[] = [];
  const exited: Array<Promise<void>> = [];
  const t0 = performance.now();
  let lastReady = t0;
  await new Promise<void>((resolve) => {
    let settled = 0;
    const settle = () => {
      if (++settled === count) resolve();
    };
    for (let i = 0; i < count; i++) {
      const started = performance.now();
      let done = false;
      let exitedResolve: () => void = () => {};
      exited.push(new Promise<void>((r) => (exitedResolve = r)));
      const handle: DroneHandle = spawner.spawn({
        message(m) {
          if (done || (m as { type?: string }).type !== "ready") return;
          done = true;
          lastReady = performance.now();
          readyMs.push(lastReady - started);
          readyCpuMs.push(cpuSeconds(handle.pid) * 1000);
          settle();
        },
        exit() {
          exitedResolve();
          if (done) return;
          done = true;
          failed++;
          settle();
        },
      });
      handles.push(handle);
    }
    setTimeout(resolve, timeoutMs);
  });
  const allReadyMs = lastReady - t0;
  await Bun.sleep(300); // let start-up garbage settle before reading memory
  const mem = handles.map((h) => memory(h.pid)).filter((m): m is Memory => m !== undefined);
  for (const h of handles) if (!h.send({ type: "shutdown", graceful: true, reason: "shutdown" })) h.kill("SIGKILL");
  const stopped = await Promise.race([Promise.all(exited).then(() => true), Bun.sleep(15_000).then(() => false)]);
  if (!stopped) for (const h of handles) h.kill("SIGKILL");
  readyMs.sort((a, b) => a - b);
  readyCpuMs.sort((a, b) => a - b);
  return { drones: count, readyMs, readyCpuMs, allReadyMs, memory: mem, failed };
}

/** Bytes and write/read syscalls so far (/proc/PID/io): wchar, rchar, syscw, syscr. */
export function ioCounters(pid: number): { wchar: number; rchar: number; syscw: number; syscr: number } | undefined {
  const text = readProc(pid, "io");
  if (!text) return undefined;
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(text)?.[1] ?? 0);
  return { wchar: field("wchar"), rchar: field("rchar"), syscw: field("syscw"), syscr: field("syscr") };
}

/**
 * Live child pids of `pid`, from /proc/PID/task/TID/children (every thread's: a runtime may
 * spawn from any of its threads). Far cheaper than {@link childrenOf}'s walk of all of /proc,
 * so it can be polled while load runs. Zombies are included until reaped.
 */
export function childPids(pid: number): number[] {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const t of tasks) {
    const text = readProc(pid, `task/${t}/children`);
    if (text) for (const c of text.trim().split(/\s+/)) if (c) out.push(Number(c));
  }
  return out;
}

/** CPU seconds (user + system) of reaped children of `pid` (stat's cutime + cstime), 0 when it is gone. */
export function reapedChildrenCpuSeconds(pid: number): number {
  const stat = readProc(pid, "stat");
  if (!stat) return 0;
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 16 and 17 of stat (cutime, cstime) are 14 and 15 after the command name.
  return (Number(f[13]) + Number(f[14])) / CLOCK_TICKS;
}

/**
 * CPU seconds used so far by the children of `pid` — live ones plus those it has reaped —
 * so that the difference of two readings covers drones that started or exited in between
 * (a pool that replaces drones during a window; a snapshot of fixed pids would miss them).
 */
export function childrenCpuSeconds(pid: number): number {
  let s = reapedChildrenCpuSeconds(pid);
  for (const c of childPids(pid)) s += cpuSeconds(c);
  return s;
}

/** Watches a process's children while load runs: which pids were new, polled every `everyMs`. */
export interface ChildWatch {
  /** Stops polling; returns how many children appeared that were not there at the start. */
  stop(): { started: number; atStart: number; atEnd: number };
}

/**
 * Polls the children of `pid` every `everyMs` (default 20 ms) and remembers every pid seen.
 * A child that starts and exits between two polls is missed; a drone lives longer than its
 * start-up (tens of milliseconds for ours, a fork for C's), so counts are lower bounds only
 * in theory.
 */
export function watchChildren(pid: number, everyMs = 20): ChildWatch {
  const initial = new Set(childPids(pid));
  const seen = new Set<number>();
  const poll = () => {
    for (const c of childPids(pid)) if (!initial.has(c)) seen.add(c);
  };
  const timer = setInterval(poll, everyMs);
  return {
    stop() {
      clearInterval(timer);
      poll();
      return { started: seen.size, atStart: initial.size, atEnd: childPids(pid).length };
    },
  };
}
