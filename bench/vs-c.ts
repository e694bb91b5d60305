/**
 * `npm run bench -- --vs-c`: osrf-prefork against the REAL C prefork in the same run, behind
 * the same private bus server and the same real C router, with the same load client. On XMPP
 * (the default) that is OpenSRF 3.3.0's osrf_prefork.c behind ejabberd; with `--bus redis`
 * OpenSRF main's behind a redis-server, ours as `osrf-prefork serve --bus redis`. Both are
 * built from their tarballs by devkit/opensrf; what differs by bus is in bench/vs-c-bus.ts.
 *
 *   npm run bench -- --vs-c [--bus redis]            # full: about 12 minutes
 *   npm run bench -- --vs-c [--bus redis] --quick    # under 3 minutes
 *   npm run bench -- --vs-c [--bus redis] --smoke    # seconds of load; numbers meaningless
 *
 * The load client is ours (src/client on the bus's connection, one connection, c closed
 * loops) for both sides: srfsh and the Perl client make one call at a time, and the Perl
 * client's own cost would be most of what is measured.
 *
 * The C side is `opensrf.dbmath` (libosrf_dbmath.so, which implements add/sub/mult/div itself;
 * C opensrf.math forwards to it), ours is examples/math.ts served as `opensrf.tsmath` by
 * `osrf-prefork serve` (a binary compiled at the start unless --source). The real Perl
 * opensrf.settings serves opensrf.xml to the C side; ours reads the same file. Every process
 * logs at level 1 (errors only). Each pool setting is applied to both services; each cell runs
 * the relay ceiling once, then two windows per side in the order C, ours, ours, C (ours, C, C,
 * ours in the next cell), so drift of the shared machine hits both sides alike.
 *
 * Options: --source (run osrf-prefork as `bun src/cli.ts`; smoke runs always do), --json=FILE,
 * --warm (a third pool set whose drones are never replaced: what drone replacement costs).
 */
import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import type { PeerService, UnixConfig } from "../devkit/opensrf/configs.ts";
import { ensurePeer } from "../devkit/opensrf/peer.ts";
import { type OpenSrfStack, startOpenSrfStack } from "../devkit/opensrf/stack.ts";
import { cliCommand } from "../devkit/processes.ts";
import type { BusKind } from "../src/bus/types.ts";
import type { Client } from "../src/client/client.ts";
import { withBus } from "../src/config/bus.ts";
import { readCoreConfig } from "../src/config/core.ts";
import { type Calls, callsTo } from "./calls.ts";
import {
  type ChildWatch,
  childPids,
  childrenCpuSeconds,
  cpuSeconds,
  droneInit,
  type Memory,
  memory,
  runtimeSeconds,
  type SpawnResult,
  spawnStorm,
  watchChildren,
} from "./costs.ts";
import { type LoadResult, runLoad } from "./load.ts";
import { BIG_BYTES, BIG_ECHO_PARAMS, MID_ECHO_BYTES, type Relay, SESSION_REQUESTS, startRelay } from "./relay.ts";
import { avg, fmtRate, machineLine, mb, ms, pct, say } from "./report.ts";
import { compileBinary, connectCaller, ROOT } from "./stack.ts";
import { type VsCBus, vsCBus } from "./vs-c-bus.ts";
import { type Case, cellOrder } from "./vs-c-order.ts";

export type VsCMode = "full" | "quick" | "smoke";

/** Concurrencies whose echo cells get a table of CPU per call by process. */
const CPU_LEVELS = [8, 32] as const;

export interface VsCOptions {
  mode: VsCMode;
  /** Which bus, and so which OpenSRF (default xmpp: 3.3; redis: main). */
  bus?: BusKind;
  /** Also run the {@link WARM_SET} pool set (drones never replaced). */
  warm?: boolean;
  /** Run osrf-prefork from source instead of a compiled binary. */
  source: boolean;
  json?: string;
}

interface Profile {
  /** Load before each measured window (not counted). */
  warmupMs: number;
  measureMs: number;
  bigMeasureMs: number;
  /** Traffic through both freshly started pools before the first window. */
  poolWarmupMs: number;
  /**
   * The cell's own load, run before each side's first window of the cells in `steadyCases`
   * at c >= 8 (not counted): long enough for a pool at that concurrency to replace its
   * drones once, so that the windows see drones of every age, as a site's pool has after
   * minutes of load, and not only the young drones a pool has just grown.
   */
  steadyMs: number;
  steadyCases: readonly Case[];
  maxCalls?: number;
  /** Concurrencies of each case (bigEcho: ours alone; C cannot take a 1 MB request, it is probed at the end). */
  cases: Record<Case, number[]>;
  /** Measure the relay ceiling again for each pool set (else once, in the first). */
  relayEachSet: boolean;
  sequentialSpawns: number;
  /** Calls of the C 1 MB probe at the end. */
  bigProbeCalls: number;
}

const PROFILES: Record<VsCMode, Profile> = {
  full: {
    warmupMs: 1000,
    measureMs: 4000,
    bigMeasureMs: 4000,
    poolWarmupMs: 4000,
    steadyMs: 8000,
    steadyCases: ["echo", "add"],
    cases: { echo: [1, 8, 32], add: [1, 8, 32], session: [1, 8, 32], midEcho: [1, 8], bigEcho: [1] },
    relayEachSet: true,
    sequentialSpawns: 10,
    bigProbeCalls: 10,
  },
  quick: {
    warmupMs: 200,
    measureMs: 800,
    bigMeasureMs: 800,
    poolWarmupMs: 1500,
    steadyMs: 4000,
    steadyCases: ["echo"],
    cases: { echo: [1, 8, 32], add: [8], session: [1, 8], midEcho: [1], bigEcho: [1] },
    relayEachSet: false,
    sequentialSpawns: 5,
    bigProbeCalls: 3,
  },
  smoke: {
    warmupMs: 50,
    measureMs: 200,
    bigMeasureMs: 200,
    poolWarmupMs: 100,
    steadyMs: 0,
    steadyCases: [],
    maxCalls: 20,
    cases: { echo: [1, 8], add: [1], session: [1], midEcho: [1], bigEcho: [1] },
    relayEachSet: false,
    sequentialSpawns: 1,
    bigProbeCalls: 1,
  },
};

/** Pool settings applied to both services. */
export interface PoolSet {
  name: "stock" | "fixed" | "warm";
  /** For the tables. */
  label: string;
  unix: UnixConfig;
  /** Traffic through both pools before the set's first window, ms (default the profile's; at most 10× it). */
  poolWarmupMs?: number;
}

export const POOL_SETS: PoolSet[] = [
  {
    // OpenSRF 3.3's opensrf.xml.example for opensrf.math / opensrf.dbmath.
    name: "stock",
    label: "5–15, spare 2–5",
    unix: { minChildren: 5, maxChildren: 15, minSpareChildren: 2, maxSpareChildren: 5, maxRequests: 1000 },
  },
  {
    // The stock maximum, all started up front: what C grows to under load anyway, without
    // spare management on either side; max_requests as stock, so drones are still replaced.
    name: "fixed",
    label: "15 fixed",
    unix: { minChildren: 15, maxChildren: 15, minSpareChildren: 0, maxSpareChildren: 0, maxRequests: 1000 },
  },
];

/**
 * With `--warm`, a third set after the two: the fixed pool with drones that are never replaced
 * during the run, so that after the pool warm-up every window measures drones whose JIT has
 * compiled the request path. Not what sites run; it shows what drone replacement costs.
 */
const WARM_SET: PoolSet = {
  name: "warm",
  label: "15 fixed, never replaced",
  // A drone's request path is compiled after some thousands of requests; 15 drones share them.
  poolWarmupMs: 15_000,
  unix: { minChildren: 15, maxChildren: 15, minSpareChildren: 0, maxSpareChildren: 0, maxRequests: 1_000_000 },
};

/** The pool sets of a run. */
function poolSets(opts: VsCOptions): PoolSet[] {
  return opts.warm ? [...POOL_SETS, WARM_SET] : POOL_SETS;
}

type Side = "c" | "ours";
const SERVICE: Record<Side, string> = { c: "opensrf.dbmath", ours: "opensrf.tsmath" };
const APP = "examples/math.ts";
const LOGLEVEL = 1;
/**
 * The caller's reply timeout, s: far above any latency seen (seconds under pool thrash), but a
 * lost request must not hold a short run for the default 30.
 */
const CALL_TIMEOUT_S = 5;

const CASE_LABEL: Record<Case, string> = {
  echo: "opensrf.system.echo",
  add: "add 2, 2",
  session: `session (CONNECT+${SESSION_REQUESTS}+DISCONNECT)`,
  midEcho: `echo of ${MID_ECHO_BYTES >> 10} KB (each way)`,
  bigEcho: `echo of ${BIG_BYTES >> 20} MB (each way)`,
};
/** Which relay call stands for each case. */
const RELAY_OF: Record<Case, "echo" | "session" | "midEcho" | "bigEcho"> = {
  echo: "echo",
  add: "echo",
  session: "session",
  midEcho: "midEcho",
  bigEcho: "bigEcho",
};
/** Reply timeout of each call of the C 1 MB probe, s (C answers a 1 MB echo in well under 100 ms when it does). */
const C_BIG_PROBE_TIMEOUT_S = 3;

/** CPU seconds so far of each process (group) on one side's path. */
type CpuReading = Record<string, number>;
const CPU_ROWS: Array<[string, string]> = [
  ["bus", "the bus server (shared)"],
  ["router", "C router (shared)"],
  ["listener", "listener"],
  ["drones", "drones (all, incl. replaced ones)"],
  ["caller", "caller (this process)"],
  ["settings", "Perl opensrf.settings"],
  ["relay", "relay processes (bare clients)"],
];

interface Window {
  load: LoadResult;
  /** Children of the listener that appeared during the measured window. */
  started: number;
  /** CPU seconds used during the measured window. */
  cpu: CpuReading;
  /** Calls that failed after the window closed (a lost request times out there). */
  lateErrors: number;
  /** From the window's end until every call in flight ended. */
  tailMs: number;
}

interface Cell {
  set: PoolSet["name"];
  case: Case;
  c: number;
  relay: LoadResult | undefined;
  /** The relay window's CPU seconds (the bus server's: what it costs to move the messages alone). */
  relayCpu: CpuReading | undefined;
  windows: Record<Side, Window[]>;
}

interface MemoryReading {
  set: PoolSet["name"];
  side: Side;
  listener: Memory | undefined;
  drones: Memory[];
}

/** Mean over a side's windows. */
function summary(ws: Window[]) {
  const calls = ws.reduce((a, w) => a + w.load.calls, 0);
  return {
    perSecond: avg(ws.map((w) => w.load.perSecond)),
    p50: avg(ws.map((w) => w.load.p50)),
    p99: avg(ws.map((w) => w.load.p99)),
    errors: ws.reduce((a, w) => a + w.load.errors, 0),
    firstError: ws.find((w) => w.load.firstError)?.load.firstError,
    late: ws.reduce((a, w) => a + w.lateErrors, 0),
    started: ws.reduce((a, w) => a + w.started, 0),
    seconds: ws.reduce((a, w) => a + w.load.seconds, 0),
    calls,
    cpu: Object.fromEntries(CPU_ROWS.map(([k]) => [k, ws.reduce((a, w) => a + (w.cpu[k] ?? 0), 0)])),
  };
}

export async function runVsC(opts: VsCOptions): Promise<number> {
  const P = PROFILES[opts.mode];
  const bus = vsCBus(opts.bus ?? "xmpp");
  const sets = poolSets(opts);
  const fromBinary = opts.mode !== "smoke" && !opts.source;
  const t0 = performance.now();
  const cells: Cell[] = [];
  const memoryReadings: MemoryReading[] = [];
  const cBigProbe = { tried: 0, answered: 0 };
  /** Waits for C's listener to hand out requests left from earlier windows, ms (only those > 500 ms). */
  const drains: number[] = [];
  let cRestarts = 0;
  const spawns: SpawnResult = { drones: 0, readyMs: [], readyCpuMs: [], allReadyMs: 0, memory: [], failed: 0 };
  let compiled: ReturnType<typeof compileBinary> | undefined;
  let stack: OpenSrfStack | undefined;
  let relay: Relay | undefined;
  let client: Client | undefined;
  let exitCode = 0;

  const services = (set: PoolSet): PeerService[] => [
    { name: SERVICE.c, language: "c", implementation: "libosrf_dbmath.so", keepalive: 3, unixConfig: set.unix },
    {
      name: SERVICE.ours,
      language: "typescript",
      implementation: join(ROOT, APP),
      keepalive: 3,
      unixConfig: set.unix,
    },
  ];

  try {
    say(`osrf-prefork vs the C prefork of ${bus.cName} on ${bus.kind} (${opts.mode}); ${machineLine()}`);
    if (fromBinary) {
      compiled = compileBinary();
      say(`compiled ${compiled.bin}`);
    }
    const peer = await ensurePeer(bus.release);
    const t = performance.now();
    stack = await startOpenSrfStack({
      peer,
      cServices: [SERVICE.c],
      services: services(POOL_SETS[0]!),
      loglevel: LOGLEVEL,
      ...bus.stackOptions,
    });
    await stack.servePrefork(SERVICE.ours, join(ROOT, APP), bus.serveArgs);
    say(`real C router, Perl settings, C ${SERVICE.c} and our ${SERVICE.ours} up in ${ms(performance.now() - t)} ms`);
    const read = readCoreConfig(stack.paths.core);
    const core = { ...read, opensrf: withBus(read.opensrf, { flag: bus.kind }) };
    client = await connectCaller(core, stack.dir, CALL_TIMEOUT_S);
    relay = await startRelay(bus.relayServer(stack), stack.dir);
    const st = stack;
    const cl = client;
    const calls: Record<Side, Calls> = { c: callsTo(cl, SERVICE.c), ours: callsTo(cl, SERVICE.ours) };
    await checkAnswers(calls);

    const settingsPid = () => {
      try {
        return st.listenerPid("opensrf.settings");
      } catch {
        return 0;
      }
    };
    const reading = (side: Side | "relay", listener: number): CpuReading => {
      const r: CpuReading = {
        bus: cpuSeconds(bus.serverPid(st)),
        router: st.routerPids().reduce((a, p) => a + runtimeSeconds(p), 0),
        caller: cpuSeconds(process.pid),
      };
      if (side === "relay") {
        r.relay = relay!.pids().reduce((a, p) => a + cpuSeconds(p), 0);
        return r;
      }
      const s = settingsPid();
      r.listener = cpuSeconds(listener);
      r.drones = childrenCpuSeconds(listener);
      r.settings = s ? cpuSeconds(s) + childrenCpuSeconds(s) : 0;
      return r;
    };

    const measure = async (side: Side | "relay", c: number, measureMs: number, call: () => Promise<unknown>) => {
      const listener = side === "relay" ? 0 : st.listenerPid(SERVICE[side]);
      let before: CpuReading = {};
      let after: CpuReading = {};
      let watch: ChildWatch | undefined;
      let started = 0;
      // Calls still running when the window closes are waited for (runLoad); one that never
      // gets an answer holds the run for the client's timeout: count those too.
      let windowEnd = 0;
      const late = { errors: 0, first: "" };
      const tracked = async () => {
        try {
          return await call();
        } catch (e) {
          if (windowEnd > 0) {
            late.errors++;
            late.first ||= (e as Error).message;
          }
          throw e;
        }
      };
      const load = await runLoad(
        {
          concurrency: c,
          warmupMs: P.warmupMs,
          measureMs,
          ...(P.maxCalls !== undefined ? { maxCalls: P.maxCalls } : {}),
          onWindow: (edge) => {
            if (edge === "start") {
              before = reading(side, listener);
              if (listener) watch = watchChildren(listener);
            } else {
              after = reading(side, listener);
              started = watch?.stop().started ?? 0;
              windowEnd = performance.now();
            }
          },
        },
        tracked,
      );
      const tailMs = performance.now() - windowEnd;
      const cpu: CpuReading = {};
      for (const k of Object.keys(after)) cpu[k] = (after[k] ?? 0) - (before[k] ?? 0);
      const errors =
        (load.errors ? `  errors ${load.errors}: ${load.firstError}` : "") +
        (late.errors ? `  after the window: ${late.errors} errors: ${late.first}` : "") +
        (tailMs > 1000 ? `  (calls in flight took ${ms(tailMs)} ms to end)` : "");
      const spawned = side === "relay" ? "" : `  drones started ${started}`;
      const routerUs = load.calls > 0 ? `  router ${(((cpu.router ?? 0) / load.calls) * 1e6).toFixed(0)} µs/call` : "";
      say(
        `    ${side.padEnd(5)} ${load.perSecond.toFixed(0).padStart(6)}/s  p50 ${ms(load.p50)} ms  p99 ${ms(load.p99)} ms${spawned}${routerUs}${errors}`,
      );
      return { load, started, cpu, lateErrors: late.errors, tailMs } satisfies Window;
    };

    const relayCalls = { echo: relay.echo, session: relay.session, midEcho: relay.midEcho, bigEcho: relay.bigEcho };
    const relayCache = new Map<string, Window>();
    let cellNo = 0;
    let bigChecked = false;
    for (const [setNo, set] of sets.entries()) {
      if (setNo > 0) {
        const t1 = performance.now();
        await reconfigure(st, services(set), bus);
        say(`pools restarted with ${set.name} settings in ${ms(performance.now() - t1)} ms`);
      }
      say(`${set.name} pool settings (${set.label}, max_requests ${set.unix.maxRequests}) on both:`);
      await warmPools(calls, Math.min(set.poolWarmupMs ?? P.poolWarmupMs, P.poolWarmupMs * 10));
      if (setNo > 0 && P.relayEachSet) relayCache.clear();
      for (const [kase, c] of cellOrder(P.cases, set.unix.maxChildren ?? 15)) {
        if (kase === "bigEcho" && !bigChecked) {
          await checkBigAnswer(calls.ours);
          bigChecked = true;
        }
        say(`  ${CASE_LABEL[kase]} c=${c} (at ${((performance.now() - t0) / 1000).toFixed(0)} s):`);
        const windowMs = kase === "bigEcho" || kase === "midEcho" ? P.bigMeasureMs : P.measureMs;
        const relayKey = `${RELAY_OF[kase]}:${c}`;
        let relayWindow = relayCache.get(relayKey);
        if (!relayWindow) {
          relayWindow = await measure("relay", c, windowMs, relayCalls[RELAY_OF[kase]]);
          relayCache.set(relayKey, relayWindow);
        }
        const cell: Cell = {
          set: set.name,
          case: kase,
          c,
          relay: relayWindow.load,
          relayCpu: relayWindow.cpu,
          windows: { c: [], ours: [] },
        };
        const order: Side[] =
          kase === "bigEcho"
            ? ["ours", "ours"]
            : cellNo++ % 2 === 0
              ? ["c", "ours", "ours", "c"]
              : ["ours", "c", "c", "ours"];
        const crowded = c > (set.unix.maxChildren ?? 15);
        const steady = new Set<Side>(c >= 8 && P.steadyMs > 0 && P.steadyCases.includes(kase) ? ["c", "ours"] : []);
        // C's listener is restarted for each of its windows where callers outnumber drones
        // (below): its drones are forks, with nothing to warm, and a warm-up would leave it a
        // queue that drains at one request a second.
        if (crowded && bus.cListenerQueues) steady.delete("c");
        for (const side of order) {
          if (steady.delete(side)) {
            const t = performance.now();
            const w = await runLoad({ concurrency: c, warmupMs: 0, measureMs: P.steadyMs }, calls[side][kase]);
            say(`    ${side.padEnd(5)} steady load ${w.calls} calls in ${ms(performance.now() - t)} ms (not counted)`);
          }
          // C's listener must not still hold requests of an earlier window (see cellOrder).
          if (side === "c") await drainC(cl, drains);
          cell.windows[side].push(await measure(side, c, windowMs, calls[side][kase]));
          if (side === "c" && crowded && bus.cListenerQueues) {
            // What this window left queued in C's listener would take a second each to drain,
            // and stale CONNECTs would pin its drones for the keepalive: a fresh listener instead.
            await st.stopService(SERVICE.c);
            await st.startCService(SERVICE.c);
            cRestarts++;
          }
        }
        cells.push(cell);
      }
      // What each process holds once the load is over and the pools settled.
      await Bun.sleep(1000);
      for (const side of ["c", "ours"] as Side[]) {
        const listener = st.listenerPid(SERVICE[side]);
        memoryReadings.push({
          set: set.name,
          side,
          listener: memory(listener),
          drones: childPids(listener)
            .map(memory)
            .filter((m): m is Memory => m !== undefined),
        });
      }
    }

    // Last, as it may leave C drones confused: a cut-short request leaves its rest in the pipe.
    await drainC(cl, drains);
    say(`C ${SERVICE.c} with a 1 MB request (${P.bigProbeCalls} calls, ${C_BIG_PROBE_TIMEOUT_S} s each):`);
    for (let i = 0; i < P.bigProbeCalls; i++) {
      const got = await cl
        .request(SERVICE.c, "opensrf.system.echo", BIG_ECHO_PARAMS, { timeout: C_BIG_PROBE_TIMEOUT_S })
        .collect()
        .catch(() => undefined);
      cBigProbe.tried++;
      if (typeof got?.[0] === "string" && got[0].length === BIG_BYTES) cBigProbe.answered++;
    }
    say(`  ${cBigProbe.answered} of ${cBigProbe.tried} answered`);

    say("our drone spawn → ready (the listener's own spawner):");
    const init = droneInit(core, SERVICE.ours, APP, join(stack.dir, "spawn.log"));
    const command = [...(compiled ? [compiled.bin] : cliCommand()), "drone"];
    for (let i = 0; i < P.sequentialSpawns; i++) {
      const r = await spawnStorm(init, 1, {}, command);
      spawns.drones++;
      spawns.readyMs.push(...r.readyMs);
      spawns.readyCpuMs.push(...r.readyCpuMs);
      spawns.failed += r.failed;
    }
    spawns.readyMs.sort((a, b) => a - b);
    spawns.readyCpuMs.sort((a, b) => a - b);
    say(`  median ${ms(pct(spawns.readyMs, 50))} ms of ${spawns.readyMs.length}`);
  } catch (e) {
    say(`bench --vs-c failed: ${(e as Error).stack ?? e}`);
    if (stack) say(stack.logTail(15));
    exitCode = 1;
  } finally {
    await client?.close().catch(() => {});
    await relay?.stop().catch(() => {});
    await stack?.stop().catch((e) => say(`stopping the stack: ${(e as Error).message}`));
    compiled?.remove();
  }

  const out = report(
    opts,
    sets,
    bus,
    P,
    fromBinary,
    cells,
    memoryReadings,
    spawns,
    cBigProbe,
    drains,
    cRestarts,
    (performance.now() - t0) / 1000,
  );
  process.stdout.write(`${out}\n`);
  if (opts.json) {
    writeFileSync(
      opts.json,
      JSON.stringify(
        {
          mode: opts.mode,
          bus: bus.kind,
          release: bus.release,
          fromBinary,
          poolSets: sets,
          cells,
          memoryReadings,
          spawns,
          cBigProbe,
        },
        null,
        2,
      ),
    );
  }
  return exitCode;
}

/**
 * Waits until C's listener holds no request of an earlier window: one echo, which it hands out
 * only after everything queued before it (at once when nothing is). Waits above 500 ms go to
 * `drains` and stderr.
 */
async function drainC(client: Client, drains: number[]): Promise<void> {
  const t = performance.now();
  await client.request(SERVICE.c, "opensrf.system.echo", ["drain"], { timeout: 120 }).collect();
  const waited = performance.now() - t;
  if (waited > 500) {
    drains.push(waited);
    say(`    (C's listener still held earlier requests: waited ${ms(waited)} ms for them)`);
  }
}

/** Both sides answer what they should before anything is timed. */
async function checkAnswers(calls: Record<Side, Calls>): Promise<void> {
  for (const side of ["c", "ours"] as Side[]) {
    const echo = JSON.stringify(await calls[side].echo());
    const add = JSON.stringify(await calls[side].add());
    const midOk = echoedString(await calls[side].midEcho(), MID_ECHO_BYTES);
    if (echo !== '["hello",42]' || Number(JSON.parse(add)) !== 4 || !midOk) {
      throw new Error(`${SERVICE[side]} answers wrongly: echo ${echo}, add ${add}, mid echo ${midOk}`);
    }
    await calls[side].session();
  }
}

/**
 * Ours echoes 1 MB: checked only before its first one-sided cell, as a 1 MB request makes the
 * C router slower for that class from then on (see cellOrder). C (3.3 and main) cannot take
 * one (see MID_ECHO_BYTES); it is probed at the end.
 */
async function checkBigAnswer(calls: Calls): Promise<void> {
  const r = await calls.bigEcho();
  if (!echoedString(r, BIG_BYTES)) {
    throw new Error(`${SERVICE.ours} answers a 1 MB echo wrongly: ${JSON.stringify(r)?.slice(0, 200)}`);
  }
}

/** The answer of an echo of one string of `bytes` characters. */
function echoedString(r: unknown, bytes: number): boolean {
  return Array.isArray(r) && r.length === 1 && typeof r[0] === "string" && r[0].length === bytes;
}

/** Every drone logged in and JIT-warmed as far as the pool lets it: the same traffic for both sides. */
async function warmPools(calls: Record<Side, Calls>, ms: number): Promise<void> {
  for (const side of ["c", "ours"] as Side[]) {
    let flip = 0;
    const mixed = () => (flip++ % 2 === 0 ? calls[side].echo() : calls[side].add());
    await runLoad({ concurrency: 15, warmupMs: 0, measureMs: 0 }, calls[side].echo);
    await runLoad({ concurrency: 8, warmupMs: 0, measureMs: ms }, mixed);
  }
}

/**
 * New pool settings for both sides: the C service reads them from the Perl settings server,
 * which reads opensrf.xml once at start, so that restarts too; ours reads the file.
 */
async function reconfigure(stack: OpenSrfStack, services: PeerService[], bus: VsCBus): Promise<void> {
  await stack.stopService(SERVICE.ours, 20_000);
  await stack.stopService(SERVICE.c);
  await stack.stopService("opensrf.settings");
  stack.updateServices(services);
  await stack.startPerlSettings();
  await stack.startCService(SERVICE.c);
  await stack.servePrefork(SERVICE.ours, join(ROOT, APP), bus.serveArgs);
}

// -------------------------------------------------------------------------------------------

function report(
  opts: VsCOptions,
  sets: PoolSet[],
  bus: VsCBus,
  P: Profile,
  fromBinary: boolean,
  cells: Cell[],
  mem: MemoryReading[],
  spawns: SpawnResult,
  cBigProbe: { tried: number; answered: number },
  drains: number[],
  cRestarts: number,
  seconds: number,
): string {
  const out: string[] = [];
  const ratio = (a: number, b: number) =>
    b > 0 && Number.isFinite(a) && Number.isFinite(b) ? (a / b).toFixed(2) : "—";
  out.push(`## osrf-prefork vs the C prefork — ${opts.mode}, ${bus.label} (${bus.cName})`);
  out.push("");
  out.push(machineLine());
  out.push(
    `ours: examples/math.ts as ${SERVICE.ours}, \`osrf-prefork serve\` from ${fromBinary ? "a compiled binary" : "bun src/cli.ts"}; ` +
      `C: ${bus.cName} ${SERVICE.c}; both behind ${bus.serverConditions} and the real ` +
      `C router, settings from the real Perl opensrf.settings; log level ${LOGLEVEL} everywhere; one caller (our Client, ` +
      `one ${bus.label} connection, c closed loops). Windows: ${P.warmupMs} ms warm-up + ${P.measureMs} ms, two per side per cell ` +
      `(C, ours, ours, C, then the other way round), relay ceiling once per cell${P.relayEachSet ? " and pool set" : ""}.` +
      (P.steadyMs > 0
        ? ` Before each side's first window of ${P.steadyCases.join(" and ")} at c ≥ 8, ${P.steadyMs / 1000} s of the ` +
          "cell's own load, not counted: the pool replaces its drones once, so windows see drones of every age as " +
          "a site's pool does, not only the young ones of a pool just grown (C's listener is restarted for each window " +
          "where callers outnumber drones, so it gets none there)."
        : ""),
  );
  out.push("");
  out.push(
    "| case | pool | c | ours/C | ours calls/s | C calls/s | relay | ours p50 / p99 ms | C p50 / p99 ms | drones started ours / C |",
  );
  out.push("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
  const setLabel = (n: string) => sets.find((s) => s.name === n)?.label ?? n;
  const caseRank = Object.keys(CASE_LABEL);
  const setRank = sets.map((p) => p.name as string);
  const rank = (x: Cell) => [setRank.indexOf(x.set), caseRank.indexOf(x.case), x.c];
  const sorted = [...cells].sort((x, y) => {
    const [a, b] = [rank(x), rank(y)];
    return a[0]! - b[0]! || a[1]! - b[1]! || a[2]! - b[2]!;
  });
  for (const cell of sorted) {
    const o = summary(cell.windows.ours);
    const c = summary(cell.windows.c);
    const failed = (who: string, x: ReturnType<typeof summary>) =>
      x.errors ? `${who}: ${x.errors} calls failed: ${x.firstError?.replace(/ \(thread.*/, "").slice(0, 70)}` : "";
    const errors = [failed("ours", o), failed("C", c)].filter(Boolean).join("; ");
    const unit = cell.case === "session" ? " sessions" : "";
    const noC = cell.windows.c.length === 0;
    const cRate = noC ? "C: see below" : fmtRate(c.perSecond);
    out.push(
      `| ${CASE_LABEL[cell.case]} | ${setLabel(cell.set)} | ${cell.c} | **${ratio(o.perSecond, c.perSecond)}** | ` +
        `${fmtRate(o.perSecond)}${unit} | ${cRate} | ${cell.relay ? fmtRate(cell.relay.perSecond) : "—"} | ` +
        `${ms(o.p50)} / ${ms(o.p99)} | ${noC ? "—" : `${ms(c.p50)} / ${ms(c.p99)}`} | ` +
        `${o.started} / ${noC ? "—" : c.started}${errors ? ` (${errors})` : ""} |`,
    );
  }
  out.push("");
  out.push(
    "ours/C: calls/s of ours divided by C's, each the mean of its two windows (p50 and p99 too); relay: the bare " +
      `${bus.serverName} ceiling of the same cell (bench/relay.ts; the 1 MB cell sends a 1 MB request as well); drones started: new ` +
      "children of each listener seen during the measured windows (both windows together, polled every 20 ms); " +
      `calls failed: calls started in a window that got no reply within the caller's ${CALL_TIMEOUT_S} s.`,
  );
  const cLost = sorted.filter((c) => summary(c.windows.c).late > 0);
  const lostNote = cLost.length
    ? `C's failed calls (${cLost.map((c) => `${CASE_LABEL[c.case]} c=${c.c}, ${setLabel(c.set)}`).join("; ")}) ` +
      "were all in flight when a window closed. "
    : "";
  if (bus.cListenerQueues && (cLost.length || drains.length || cRestarts)) {
    out.push("");
    out.push(
      lostNote +
        `With requests queued (more callers than drones), ${bus.cName}'s C listener hands out one queued request per ` +
        "message it receives, or per second without one (osrf_prefork.c, prefork_run: client_recv(…, 1)): the queue " +
        "never shrinks while traffic flows, and what is queued when the callers stop drains at one request a second. " +
        "Stale CONNECTs it hands out later pin drones until the keepalive. So cells with more callers than " +
        `max_children run last in each pool set, C's listener is restarted after each of its windows in them ` +
        `(${cRestarts} times; its drones are forks, nothing to warm up), and before each C window the bench waits ` +
        `for C's queue to be empty${drains.length ? ` (it waited ${drains.map((d) => `${(d / 1000).toFixed(1)} s`).join(", ")})` : " (it never had to)"}.`,
    );
  } else if (cLost.length || drains.length) {
    out.push("");
    out.push(
      lostNote +
        `${bus.cName}'s C listener leaves requests in the service's list while every drone is busy (it waits for a ` +
        "free drone), so nothing is held over between windows; before each C window the bench still checks that " +
        `C answers at once${drains.length ? ` (it waited ${drains.map((d) => `${(d / 1000).toFixed(1)} s`).join(", ")})` : ""}.`,
    );
  }
  if (cBigProbe.tried > 0) {
    out.push("");
    out.push(
      `C and a 1 MB request: ${cBigProbe.answered} of ${cBigProbe.tried} echo calls of 1 MB answered within ` +
        `${C_BIG_PROBE_TIMEOUT_S} s. ${bus.cName}'s C drone reads a request from its listener's pipe until the pipe is ` +
        "momentarily empty (osrf_prefork.c, prefork_child_wait: O_NONBLOCK after the first read), so a request larger " +
        "than the pipe (64 KB) is often cut short, fails to parse and is never answered. The table's large case is " +
        `therefore an echo of ${MID_ECHO_BYTES >> 10} KB, which fits in the pipe; the 1 MB row is ours alone.`,
    );
  }

  // CPU per call: echo at c=8 and at c=32 (requests waiting for a drone), for each pool set.
  for (const level of CPU_LEVELS) {
    const cpuCells = cells.filter((c) => c.case === "echo" && c.c === level);
    if (cpuCells.length === 0) continue;
    out.push("");
    out.push(
      `CPU per echo call at c=${level} (µs; utime+stime from /proc over the measured windows of that cell, each side's own windows; ` +
        "drones include those that exited in the window, through the listener's cutime+cstime; the C router's from its " +
        "schedstat, as its tens of ms per window are too few for /proc's 10 ms ticks):",
    );
    out.push("");
    // The relay's window (once per pool set at most): its bus server cost is the bare cost of moving the messages.
    const relayCell = cpuCells.find((c) => c.relay && c.relayCpu);
    const relaySum = relayCell
      ? {
          ...summary([]),
          calls: relayCell.relay!.calls,
          seconds: relayCell.relay!.seconds,
          perSecond: relayCell.relay!.perSecond,
          cpu: Object.fromEntries(CPU_ROWS.map(([k]) => [k, relayCell.relayCpu![k] ?? 0])),
        }
      : undefined;
    const head = [
      ...cpuCells.flatMap((c) => [`ours, ${setLabel(c.set)}`, `C, ${setLabel(c.set)}`]),
      ...(relaySum ? ["relay"] : []),
    ];
    out.push(`| process | ${head.join(" | ")} |`);
    out.push(`|---|${head.map(() => "---:").join("|")}|`);
    const sums = [
      ...cpuCells.flatMap((c) => [summary(c.windows.ours), summary(c.windows.c)]),
      ...(relaySum ? [relaySum] : []),
    ];
    const per = (s: ReturnType<typeof summary>, k: string) =>
      s.calls > 0 ? ((s.cpu[k]! / s.calls) * 1e6).toFixed(0) : "—";
    for (const [k, label] of CPU_ROWS) {
      const name = k === "bus" ? `${bus.serverName} (shared)` : label;
      out.push(`| ${name} | ${sums.map((s) => per(s, k)).join(" | ")} |`);
    }
    const total = (s: ReturnType<typeof summary>) => CPU_ROWS.reduce((a, [k]) => a + (s.cpu[k] ?? 0), 0);
    out.push(
      `| all of them | ${sums.map((s) => (s.calls > 0 ? ((total(s) / s.calls) * 1e6).toFixed(0) : "—")).join(" | ")} |`,
    );
    out.push(
      `| CPU busy (of ${cpus().length} cores) | ${sums.map((s) => `${((total(s) / s.seconds / cpus().length) * 100).toFixed(0)}%`).join(" | ")} |`,
    );
    out.push(`| calls/s | ${sums.map((s) => fmtRate(s.perSecond)).join(" | ")} |`);
    // What the bus server could move if it were the only thing running: one core's worth of
    // its CPU per call (redis-server does its work on one thread).
    const serverLimit = (s: ReturnType<typeof summary>) =>
      s.calls > 0 && (s.cpu.bus ?? 0) > 0 ? fmtRate(s.calls / (s.cpu.bus ?? 0)) : "—";
    out.push(`| ${bus.serverName} alone, one core: calls/s | ${sums.map(serverLimit).join(" | ")} |`);
  }

  if (mem.length) {
    out.push("");
    out.push("Memory once the load is over (1 s idle), per pool set:");
    out.push("");
    out.push("| side | pool | drones | drone RSS / PSS / private (avg) | listener RSS / PSS / private |");
    out.push("|---|---|---:|---:|---:|");
    for (const m of mem) {
      const f = (k: keyof Memory) => mb(avg(m.drones.map((d) => d[k])));
      const l = m.listener;
      out.push(
        `| ${m.side === "c" ? "C" : "ours"} | ${setLabel(m.set)} | ${m.drones.length} | ${f("rssKb")} / ${f("pssKb")} / ${f("privateKb")} | ` +
          `${l ? `${mb(l.rssKb)} / ${mb(l.pssKb)} / ${mb(l.privateKb)}` : "—"} |`,
      );
    }
  }
  if (spawns.readyMs.length) {
    out.push("");
    const max = spawns.readyMs[spawns.readyMs.length - 1]!;
    out.push(
      `Our drone spawn → ready, one at a time (${fromBinary ? "compiled binary" : "bun src/cli.ts"}; runtime start, ` +
        `module load, ${bus.label} login, childInit): median ${ms(pct(spawns.readyMs, 50))} ms, max ${ms(max)} ms of ` +
        `${spawns.readyMs.length}${spawns.failed ? ` (${spawns.failed} failed)` : ""}. A C drone is a fork() of its ` +
        "listener, which has the service loaded already.",
    );
    if (spawns.readyCpuMs.length) {
      // A drone retired after max_requests costs its start-up once per that many requests.
      const cpuMs = pct(spawns.readyCpuMs, 50);
      const maxRequests = POOL_SETS[0]!.unix.maxRequests ?? 1000;
      out.push(
        `CPU a drone has used when it reports ready: median ${ms(cpuMs)} ms (max ` +
          `${ms(spawns.readyCpuMs[spawns.readyCpuMs.length - 1]!)} ms); with max_requests ${maxRequests}, ` +
          `${((cpuMs / maxRequests) * 1000).toFixed(0)} µs per request before it serves any.`,
      );
    }
  }
  out.push("");
  out.push(`(${seconds.toFixed(0)} s)`);
  return out.join("\n");
}
