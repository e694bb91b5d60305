#!/usr/bin/env bun
/**
 * What a drone costs by age: CPU per request over each bucket of a new drone's first requests
 * (stock max_requests 1000: a site's drones never get older), split into its JavaScript thread,
 * the JIT compiler threads and the rest; its spawn → ready, the CPU that took, and its memory
 * idle after `ready` and after the last request.
 *
 * This script is the drone's listener: it spawns real drones (the compiled binary, as deployed,
 * with the listener's own spawner) and hands each request over IPC as the pool does, with the
 * caller's JID as the router's `router_from`; the caller is one XMPP connection that waits for
 * the reply. No router, no listener process: only the drone's own cost is read, per thread,
 * from /proc/PID/task/TID/schedstat (nanoseconds, not clock ticks).
 *
 *   bun bench/drone-age.ts [--drones=4] [--requests=1000] [--bucket=100] [--method=echo|add]
 *                          [--parallel=1] [--loglevel=1] [--source | --bin=PATH] [--env=NAME=VALUE ...]
 *                          [--idle=MS] [--json=FILE] [--smaps=DIR] [--jit=eager|normal] [--warmup=N]
 *                          [--variant=LABEL;bin=PATH;jit=…;env=K=V,…;warmup=N …] [--bus=xmpp|redis]
 *                          [--no-board]
 *
 * --parallel=N runs N drones at once, each with its own closed loop (JIT threads of new drones
 * competing for the two cores, as in a pool at c ≥ 8); --env sets drone environment variables
 * (e.g. BUN_JSC_* tier-up thresholds); several --env flags add up; --bin runs drones from a binary
 * built elsewhere (build options compared) instead of one compiled from src/cli.ts at the start;
 * --idle waits that long after the last request before reading memory (an idle drone, as
 * after a bench's load); --smaps keeps each drone's /proc/PID/smaps idle after ready and at
 * that second reading; --bus=redis runs the drones and the caller on a private redis-server
 * (requests as a Redis listener hands them on: the caller's address as `from`).
 *
 * Drones get a slot on a free-drone board (board.ts) as a listener's do, so that they report
 * a finished request there and not by IPC; --no-board makes them send `available` by IPC
 * after every request (a listener without /dev/shm or a writable temp dir).
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { TEST_USERS, writeCoreConfig } from "../devkit/osrf-config.ts";
import { startRedisServer } from "../devkit/redis-server.ts";
import { startXmppServer } from "../devkit/xmpp-server.ts";
import { EMPTY_MESSAGE_FIELDS } from "../src/bus/message.ts";
import type { BusMessage } from "../src/bus/types.ts";
import { readCoreConfig } from "../src/config/core.ts";
import { PREFORK_DEFAULTS } from "../src/config/prefork-settings.ts";
import type { DroneJit } from "../src/config/types.ts";
import { connectBus } from "../src/connect/bus.ts";
import { createLogger } from "../src/log/logger.ts";
import { ListenerBoard } from "../src/prefork/board.ts";
import { droneJitEnv } from "../src/prefork/jit.ts";
import { BunDroneSpawner } from "../src/prefork/spawner.ts";
import type { DroneHandle } from "../src/prefork/types.ts";
import { encodeBody } from "../src/protocol/codec.ts";
import { makeResource } from "../src/protocol/ids.ts";
import { request } from "../src/protocol/messages.ts";
import { opt } from "./args.ts";
import { droneInit, type Memory, memory } from "./costs.ts";
import { ADD_PARAMS, ECHO_PARAMS } from "./relay.ts";
import { machineLine, mb, say } from "./report.ts";
import { BENCH_HOST, compileBinary } from "./stack.ts";

const drones = Number(opt("drones", "4"));
const requests = Number(opt("requests", "1000"));
const bucket = Number(opt("bucket", "100"));
const method = opt("method", "echo");
const parallel = Number(opt("parallel", "1"));
const loglevel = Number(opt("loglevel", "1"));
const fromSource = process.argv.includes("--source");
const json = opt("json", "");
const smapsDir = opt("smaps", "");
const idleMs = Number(opt("idle", "0"));
const onRedis = opt("bus", "xmpp") === "redis";
const board = process.argv.includes("--no-board") ? undefined : ListenerBoard.create();
if (board) process.once("exit", () => board.remove());
const defaultWarmup = PREFORK_DEFAULTS.warmupRequests;

/** Drones started one way: a binary (or the one compiled here) and extra environment. */
interface Variant {
  label: string;
  bin: string;
  env: Record<string, string>;
  /** unix_config/warmup_requests of its drones. */
  warmup: number;
}

function parseEnv(list: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const kv of list) {
    const [k, ...v] = kv.split("=");
    if (k) env[k] = v.join("=");
  }
  return env;
}

/**
 * `--variant=LABEL[;bin=PATH][;jit=eager|normal][;env=K=V,K=V][;warmup=N]`; without any, one
 * variant from --bin, --jit, --env and --warmup (defaults: drone_jit's and warmup_requests').
 * `jit` adds the environment a listener gives its drones for that drone_jit (src/prefork/jit.ts).
 */
function variants(): Variant[] {
  const given = process.argv.filter((a) => a.startsWith("--variant=")).map((a) => a.slice("--variant=".length));
  if (given.length === 0) {
    const env = parseEnv(process.argv.filter((a) => a.startsWith("--env=")).map((a) => a.slice("--env=".length)));
    const jit = droneJitEnv(opt("jit", PREFORK_DEFAULTS.droneJit) as DroneJit, {});
    return [
      {
        label: "drones",
        bin: opt("bin", ""),
        env: { ...jit, ...env },
        warmup: Number(opt("warmup", String(defaultWarmup))),
      },
    ];
  }
  return given.map((g) => {
    const [label, ...parts] = g.split(";");
    const get = (k: string) => parts.find((p) => p.startsWith(`${k}=`))?.slice(k.length + 1) ?? "";
    const warmup = get("warmup");
    const jit = droneJitEnv((get("jit") || PREFORK_DEFAULTS.droneJit) as DroneJit, {});
    return {
      label: label!,
      bin: get("bin"),
      env: { ...jit, ...parseEnv(get("env").split(",")) },
      warmup: warmup ? Number(warmup) : defaultWarmup,
    };
  });
}

/** Nanoseconds on CPU so far, by thread kind: the JavaScript thread, JIT compiler threads, the rest. */
interface ThreadNs {
  js: number;
  jit: number;
  other: number;
}

function threadNs(pid: number): ThreadNs {
  const out: ThreadNs = { js: 0, jit: 0, other: 0 };
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tasks) {
    try {
      const ns = Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, "utf8").split(" ")[0]);
      const name = readFileSync(`/proc/${pid}/task/${t}/comm`, "utf8").trim();
      if (t === String(pid)) out.js += ns;
      else if (name.startsWith("JITWorker")) out.jit += ns;
      else out.other += ns;
    } catch {
      // the thread ended
    }
  }
  return out;
}

const minus = (a: ThreadNs, b: ThreadNs): ThreadNs => ({
  js: a.js - b.js,
  jit: a.jit - b.jit,
  other: a.other - b.other,
});

/** With --smaps=DIR, a copy of the drone's /proc/PID/smaps (which mappings hold its memory). */
function keepSmaps(pid: number, when: string): void {
  if (!smapsDir) return;
  mkdirSync(smapsDir, { recursive: true });
  copyFileSync(`/proc/${pid}/smaps`, join(smapsDir, `${pid}-${when}.smaps`));
}

/** One drone's life. */
interface DroneRun {
  readyMs: number;
  /** CPU from spawn to ready. */
  startNs: ThreadNs;
  idle?: Memory;
  served?: Memory;
  /** CPU per bucket of requests. */
  buckets: ThreadNs[];
  /** Wall time per bucket, ms. */
  bucketMs: number[];
}

const xmpp = onRedis
  ? undefined
  : await startXmppServer({
      kind: "ejabberd",
      users: TEST_USERS,
      erlOptions: "+sbwt none +sbwtdcpu none +sbwtdio none",
    });
const redis = onRedis ? await startRedisServer() : undefined;
const plan = variants();
const compiled = fromSource || plan.every((v) => v.bin) ? undefined : compileBinary();
const commandOf = (v: Variant): string[] | undefined =>
  v.bin ? [v.bin, "drone"] : compiled ? [compiled.bin, "drone"] : undefined;
const coreFile = redis
  ? writeCoreConfig(
      { host: redis.host, port: redis.port, domain: "localhost" },
      { loglevel, bus: "redis", accounts: { opensrf: redis.accounts.opensrf, router: redis.accounts.router } },
    )
  : writeCoreConfig(xmpp!, { loglevel });
const core = readCoreConfig(coreFile);
const dir = mkdtempSync(join(tmpdir(), "osrf-bench-age-"));
const logfile = join(dir, "osrfsys.log");
const init = { ...droneInit(core, "opensrf.math", "examples/math.ts", logfile), maxRequests: requests + 1 };
const callerLog = createLogger({ service: "bench", logfile, loglevel: 1 });
const caller = await connectBus(core.opensrf, {
  resource: makeResource("", BENCH_HOST),
  logger: callerLog,
  reconnect: false,
});
const replies = new Map<string, () => void>();
caller.onMessage((s) => {
  // echo and add answer in one stanza (results + STATUS complete in one bundle)
  replies.get(s.thread)?.();
});
const body =
  method === "add"
    ? encodeBody([request(1, "add", ADD_PARAMS)])
    : encodeBody([request(1, "opensrf.system.echo", ECHO_PARAMS)]);
let threadNo = 0;

/** Resolves once `n` drones of a round have called it: the round's drones are read together. */
function barrier(n: number): () => Promise<void> {
  let arrived = 0;
  let open!: () => void;
  const all = new Promise<void>((r) => (open = r));
  return () => {
    if (++arrived >= n) open();
    return all;
  };
}

async function runDrone(v: Variant, together: () => Promise<void>): Promise<DroneRun> {
  const command = commandOf(v);
  const spawner = new BunDroneSpawner({
    init: { ...init, settings: { ...init.settings, warmupRequests: v.warmup } },
    jitter: 0,
    env: v.env,
    ...(command ? { command } : {}),
    ...(board ? { board } : {}),
  });
  let onReady!: () => void;
  const ready = new Promise<void>((r) => (onReady = r));
  let onAvailable: (() => void) | undefined;
  let onExit!: () => void;
  let exitedWith = "";
  const exited = new Promise<void>((r) => (onExit = r));
  const t0 = performance.now();
  const handle: DroneHandle = spawner.spawn({
    message(m) {
      const type = (m as { type?: string }).type;
      if (type === "ready") onReady();
      else if (type === "available") onAvailable?.();
    },
    exit: (code, signal) => {
      exitedWith = signal ?? `code ${code}`;
      onExit();
    },
  });
  // A drone that dies before ready (e.g. a JSC option this Bun does not know) ends the run.
  await Promise.race([ready, exited]);
  if (exitedWith !== "") {
    say(`drone-age: variant ${v.label}: the drone exited before ready (${exitedWith}); see its stderr above`);
    process.exit(1);
  }
  const readyMs = performance.now() - t0;
  const run: DroneRun = { readyMs, startNs: threadNs(handle.pid), buckets: [], bucketMs: [] };
  await Bun.sleep(300);
  run.idle = memory(handle.pid);
  keepSmaps(handle.pid, "idle");
  let before = threadNs(handle.pid);
  let tb = performance.now();
  for (let i = 1; i <= requests; i++) {
    const thread = `age-${process.pid}-${++threadNo}`;
    const replied = new Promise<void>((r) => replies.set(thread, r));
    // XMPP: forwarded by the router to the listener's JID; Redis: popped from the service's queue.
    const stanza: BusMessage = redis
      ? { ...EMPTY_MESSAGE_FIELDS, to: "", from: caller.address, thread, body, fromQueue: "opensrf.math" }
      : {
          ...EMPTY_MESSAGE_FIELDS,
          to: caller.address.replace(/\/.*/, "/opensrf.math_listener"),
          from: `router@${core.opensrf.domain}/router`,
          thread,
          body,
          routerFrom: caller.address,
        };
    // Without a board the drone says `available` by IPC; with one it only publishes a count.
    const available = handle.finished ? undefined : new Promise<void>((r) => (onAvailable = r));
    handle.send({ type: "request", stanza });
    if (available) await Promise.all([replied, available]);
    else {
      // On the board, as the pool reads it: the drone publishes the count once its reply is out.
      await replied;
      while ((handle.finished?.() ?? i) < i) await Bun.sleep(0);
    }
    replies.delete(thread);
    if (i % bucket === 0) {
      const now = threadNs(handle.pid);
      run.buckets.push(minus(now, before));
      run.bucketMs.push(performance.now() - tb);
      before = now;
      tb = performance.now();
    }
  }
  // Drones of a round read their memory at the same moment, all alive: PSS shares the
  // binary's pages between them as in a pool of that size.
  await together();
  await Bun.sleep(idleMs);
  run.served = memory(handle.pid);
  keepSmaps(handle.pid, "served");
  handle.send({ type: "shutdown", graceful: true, reason: "shutdown" });
  await Promise.race([exited, Bun.sleep(10_000)]);
  return run;
}

say(
  `drone-age: ${drones} drones per variant, ${parallel} at a time, ${requests} ${method} requests each, ${board ? "finished requests on the free-drone board" : "`available` by IPC after each request"}`,
);
// Variants take turns (A B C A B C …), so that the shared machine's drift hits each alike.
const runs = new Map<Variant, DroneRun[]>(plan.map((v) => [v, []]));
for (let round = 0; round < drones; round += parallel) {
  for (const v of plan) {
    const n = Math.min(parallel, drones - round);
    const together = barrier(n);
    runs.get(v)!.push(...(await Promise.all(Array.from({ length: n }, () => runDrone(v, together)))));
  }
}
await caller.close();
await xmpp?.stop();
await redis?.stop();
compiled?.remove();
rmSync(dir, { recursive: true, force: true });
rmSync(dirname(coreFile), { recursive: true, force: true });

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const us = (ns: number, per: number) => (ns / per / 1000).toFixed(0);
const all = (t: ThreadNs) => t.js + t.jit + t.other;
const nb = Math.floor(requests / bucket);
const out: string[] = [];
out.push(`Drone CPU per ${method} request by age, median of ${drones} drones per variant (${machineLine()})`);
out.push("");
for (const v of plan) {
  const env = Object.entries(v.env).map(([k, x]) => `${k}=${x}`);
  out.push(
    `- ${v.label}: ${v.bin || "compiled from src/cli.ts"}; warmup_requests ${v.warmup}${env.length ? `; ${env.join(" ")}` : ""}`,
  );
}
out.push("");
out.push(`CPU µs per request (JS thread + JIT threads + other threads):`);
out.push("");
out.push(`| requests | ${plan.map((v) => v.label).join(" | ")} |`);
out.push(`|---|${plan.map(() => "---:").join("|")}|`);
const cell = (rs: DroneRun[], pick: (r: DroneRun) => ThreadNs, per: number) => {
  const ts = rs.map(pick);
  return `${us(median(ts.map(all)), per)} (${us(median(ts.map((t) => t.js)), per)} + ${us(median(ts.map((t) => t.jit)), per)} + ${us(median(ts.map((t) => t.other)), per)})`;
};
for (let b = 0; b < nb; b++) {
  out.push(
    `| ${b * bucket + 1}–${(b + 1) * bucket} | ${plan.map((v) => cell(runs.get(v)!, (r) => r.buckets[b]!, bucket)).join(" | ")} |`,
  );
}
const sum = (r: DroneRun): ThreadNs =>
  r.buckets.reduce((a, t) => ({ js: a.js + t.js, jit: a.jit + t.jit, other: a.other + t.other }), {
    js: 0,
    jit: 0,
    other: 0,
  });
out.push(`| all ${nb * bucket} | ${plan.map((v) => cell(runs.get(v)!, sum, nb * bucket)).join(" | ")} |`);
out.push("");
const row = (what: string, f: (rs: DroneRun[]) => string) =>
  out.push(`| ${what} | ${plan.map((v) => f(runs.get(v)!)).join(" | ")} |`);
out.push(`| per drone (median) | ${plan.map((v) => v.label).join(" | ")} |`);
out.push(`|---|${plan.map(() => "---:").join("|")}|`);
row(
  "spawn → ready, ms (max)",
  (rs) => `${median(rs.map((r) => r.readyMs)).toFixed(1)} (${Math.max(...rs.map((r) => r.readyMs)).toFixed(0)})`,
);
row("CPU spawn → ready, ms (JS + JIT + other)", (rs) => {
  const ms = (f: (t: ThreadNs) => number) => (median(rs.map((r) => f(r.startNs))) / 1e6).toFixed(1);
  return `${ms(all)} (${ms((t) => t.js)} + ${ms((t) => t.jit)} + ${ms((t) => t.other)})`;
});
row("CPU spawn → ready + all requests, ms", (rs) =>
  (median(rs.map((r) => all(r.startNs) + all(sum(r)))) / 1e6).toFixed(1),
);
const mem = (pick: (r: DroneRun) => Memory | undefined) => (rs: DroneRun[]) => {
  const m = rs.map(pick).filter((x): x is Memory => x !== undefined);
  return `${mb(median(m.map((x) => x.rssKb)))} / ${mb(median(m.map((x) => x.pssKb)))} / ${mb(median(m.map((x) => x.anonKb)))}`;
};
row(
  "idle after ready: RSS / PSS / anonymous",
  mem((r) => r.idle),
);
row(
  `after ${requests} requests${idleMs ? ` and ${idleMs} ms idle` : ""}, the round's ${parallel} alive: RSS / PSS / anonymous`,
  mem((r) => r.served),
);
console.log(out.join("\n"));
if (json) writeFileSync(json, JSON.stringify({ method, requests, bucket, plan, runs: [...runs.values()] }, null, 2));
process.exit(0);
