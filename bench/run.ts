#!/usr/bin/env bun
/**
 * The benchmark: OpenSRF calls through a real bus on loopback, against the relay ceiling
 * and the in-process baseline, plus what processes cost. See BENCHMARKS.md.
 *
 *   npm run bench                  # full run, about four minutes
 *   npm run bench -- --quick       # shorter windows, under a minute
 *   npm run bench -- --smoke       # seconds; for the test suite, numbers meaningless
 *   npm run bench -- --vs-c [--quick|--smoke]   # against the real C prefork (bench/vs-c.ts)
 *   npm run bench -- --vs-c --bus redis [--quick|--smoke] [--warm]   # the same on Redis, against OpenSRF main
 *
 * Options: --xmpp=ejabberd|prosody (default ejabberd); --source (run router, listener and
 * drones as `bun src/cli.ts` instead of a binary compiled at the start, as deployed; smoke
 * runs always use the source); --json=FILE (raw results); --profile=DIR (CPU profiles of
 * router, listener and drones as markdown, via BUN_OPTIONS; summarize with
 * bench/profile-summary.ts).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join, resolve } from "node:path";
import { cliCommand } from "../devkit/processes.ts";
import type { XmppServerKind } from "../devkit/xmpp-server.ts";
import type { BusKind } from "../src/bus/types.ts";
import { type ComponentResult, formatComponents, runComponents } from "./components.ts";
import {
  childrenOf,
  cpuBetween,
  cpuSnapshot,
  droneInit,
  type Memory,
  memory,
  type SpawnResult,
  spawnStorm,
} from "./costs.ts";
import { type InProcessResult, runInProcess } from "./inprocess.ts";
import { type LoadPlan, type LoadResult, runLoad } from "./load.ts";
import { formatParseResults, type ParseResult, runParseBench } from "./parse.ts";
import { ADD_PARAMS, BIG_BYTES, ECHO_PARAMS, type Relay, SESSION_REQUESTS, startRelay } from "./relay.ts";
import { avg, commit, fmtRate, machineLine, mb, ms, pct, say } from "./report.ts";
import { compileBinary, type Served, type Stack, startServe, startStack } from "./stack.ts";

type Mode = "full" | "quick" | "smoke";

interface Profile {
  /** Before each measured window. */
  warmupMs: number;
  measureMs: number;
  /** Traffic through a freshly started pool before its first window (JIT warm-up in every drone). */
  poolWarmupMs: number;
  maxCalls?: number;
  pools: number[];
  concurrency: number[];
  sessionConcurrency: number[];
  bigMs: number;
  sequentialSpawns: number;
  storms: number[];
  inProcessMs: number;
  parseMs: number;
  componentMs: number;
}

const PROFILES: Record<Mode, Profile> = {
  full: {
    warmupMs: 1000,
    measureMs: 5000,
    poolWarmupMs: 4000,
    pools: [8, 32],
    concurrency: [1, 8, 32],
    sessionConcurrency: [1, 8],
    bigMs: 4000,
    sequentialSpawns: 10,
    storms: [100, 256],
    inProcessMs: 1000,
    parseMs: 1000,
    componentMs: 1000,
  },
  quick: {
    warmupMs: 300,
    measureMs: 1500,
    poolWarmupMs: 1500,
    pools: [8, 32],
    concurrency: [1, 8, 32],
    sessionConcurrency: [1, 8],
    bigMs: 1500,
    sequentialSpawns: 5,
    storms: [100],
    inProcessMs: 300,
    parseMs: 250,
    componentMs: 200,
  },
  smoke: {
    warmupMs: 100,
    measureMs: 500,
    poolWarmupMs: 100,
    maxCalls: 40,
    pools: [2],
    concurrency: [1, 8],
    sessionConcurrency: [1],
    bigMs: 300,
    sequentialSpawns: 1,
    storms: [],
    inProcessMs: 50,
    parseMs: 30,
    componentMs: 20,
  },
};

function arg(name: string): string | undefined {
  const hit = process.argv.find((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (hit === undefined) return undefined;
  return hit.includes("=") ? hit.slice(hit.indexOf("=") + 1) : "";
}

const mode: Mode = arg("smoke") !== undefined ? "smoke" : arg("quick") !== undefined ? "quick" : "full";
const P = PROFILES[mode];
const kind = (arg("xmpp") || "ejabberd") as XmppServerKind;
const jsonOut = arg("json");
const profileDir = arg("profile") ? resolve(arg("profile")!) : undefined;
const fromBinary = mode !== "smoke" && arg("source") === undefined;

const busArg = busFlag();
if (arg("vs-c") !== undefined) {
  // Against the real C prefork: its own plan and report (bench/vs-c.ts).
  if (arg("xmpp") || profileDir) say("--vs-c runs on ejabberd or Redis (--bus) and takes no --xmpp or --profile");
  const { runVsC } = await import("./vs-c.ts");
  const json = jsonOut ? { json: jsonOut } : {};
  process.exit(
    await runVsC({ mode, bus: busArg, source: arg("source") !== undefined, warm: arg("warm") !== undefined, ...json }),
  );
}
if (busArg !== "xmpp") {
  say("--bus redis needs --vs-c: the relay and component bench runs on XMPP");
  process.exit(2);
}

/** `--bus xmpp|redis` or `--bus=…` (default xmpp). */
function busFlag(): BusKind {
  const i = process.argv.indexOf("--bus");
  const value = i >= 0 ? (process.argv[i + 1] ?? "") : arg("bus");
  if (value === undefined) return "xmpp";
  if (value === "xmpp" || value === "redis") return value;
  say(`--bus: unknown bus "${value}" (xmpp or redis)`);
  process.exit(2);
}

/** One row of the main table. */
interface Row {
  case: string;
  pool: string;
  load: LoadResult;
  /** The relay result this row is compared with. */
  relay: LoadResult | undefined;
  unit: string;
}

const rows: Row[] = [];
const started = performance.now();

async function measure(
  label: string,
  pool: string,
  c: number,
  relay: LoadResult | undefined,
  call: () => Promise<unknown>,
  opts: { unit?: string; measureMs?: number; onWindow?: LoadPlan["onWindow"] } = {},
): Promise<LoadResult> {
  const plan: LoadPlan = { concurrency: c, warmupMs: P.warmupMs, measureMs: opts.measureMs ?? P.measureMs };
  if (P.maxCalls !== undefined) plan.maxCalls = P.maxCalls;
  if (opts.onWindow) plan.onWindow = opts.onWindow;
  const load = await runLoad(plan, call);
  rows.push({ case: label, pool, load, relay, unit: opts.unit ?? "calls" });
  const errors = load.errors ? `  errors ${load.errors}: ${load.firstError}` : "";
  say(
    `  ${label.padEnd(38)} pool ${pool.padEnd(3)} c=${String(c).padEnd(3)} ${load.perSecond.toFixed(0).padStart(6)}/s  p50 ${load.p50.toFixed(2)} ms  p99 ${load.p99.toFixed(2)} ms${errors}`,
  );
  return load;
}

// -------------------------------------------------------------------------------------------

const env: Record<string, string> = {};
if (profileDir) {
  mkdirSync(profileDir, { recursive: true });
  env.BUN_OPTIONS = `--cpu-prof-md --cpu-prof-dir=${profileDir}`;
}

say(`osrf-prefork bench (${mode}) on ${kind}; commit ${commit()}`);
let compiled: { bin: string; remove(): void } | undefined;
let stack: Stack | undefined;
let relay: Relay | undefined;
const served: Served[] = [];
const relayAt = new Map<number, LoadResult>();
let relayBig: LoadResult | undefined;
const relaySession = new Map<number, LoadResult>();
let inProcess: InProcessResult[] = [];
let parse: ParseResult[] = [];
let components: ComponentResult[] = [];
const spawnRuns: SpawnResult[] = [];
const sequential: Array<{ how: string; result: SpawnResult }> = [];
let idleDrones: Memory[] = [];
let listenerMem: Memory | undefined;
let routerMem: Memory | undefined;
const cpu: Record<string, number> = {};
let cpuCalls = 0;

try {
  const sourceCommand = cliCommand();
  if (fromBinary) {
    // As deployed: one compiled binary for router, listener and (self-spawned) drones.
    compiled = compileBinary();
    say(`compiled ${compiled.bin}`);
  }

  stack = await startStack(kind, env);
  say(`${kind} up on port ${stack.xmpp.port}; router online`);

  // Relay ceiling first, on the same server.
  relay = await startRelay({ kind: "xmpp", xmpp: stack.xmpp }, stack.dir);
  say("relay ceiling:");
  for (const c of P.concurrency)
    relayAt.set(c, await measure("relay: echo-sized round trip", "—", c, undefined, relay.echo));
  relayBig = await measure(`relay: ${BIG_BYTES >> 20} MB result`, "—", 1, undefined, relay.big, { measureMs: P.bigMs });
  for (const c of P.sessionConcurrency) {
    relaySession.set(
      c,
      await measure(`relay: session (CONNECT+${SESSION_REQUESTS}+DISCONNECT)`, "—", c, undefined, relay.session, {
        unit: "sessions",
      }),
    );
  }
  await relay.stop();
  relay = undefined;

  const client = stack.client;
  const echo = () => client.request("opensrf.math", "opensrf.system.echo", ECHO_PARAMS).collect();
  const add = () => client.request("opensrf.math", "add", ADD_PARAMS).first();
  const big = () => client.request("opensrf.stream", "big", [BIG_BYTES]).first();
  const session = async () => {
    const s = client.session("opensrf.math");
    await s.connect();
    for (let i = 0; i < SESSION_REQUESTS; i++) await s.request("opensrf.system.echo", ECHO_PARAMS).collect();
    s.disconnect();
  };
  let flip = 0;
  const mixed = () => (flip++ % 2 === 0 ? echo() : add());

  for (const [i, drones] of P.pools.entries()) {
    say(`opensrf.math with ${drones} drones:`);
    const math = await startServe(stack, { service: "opensrf.math", app: "examples/math.ts", drones });
    served.push(math);
    // Every drone logged in (one call each at once), then warm: JIT compilation happens in
    // every drone process on its own.
    await runLoad({ concurrency: drones, warmupMs: 0, measureMs: 0 }, echo);
    await runLoad({ concurrency: 8, warmupMs: 0, measureMs: P.poolWarmupMs }, mixed);
    const pool = String(drones);
    const listenerPid = math.proc.pid;
    for (const c of P.concurrency) {
      if (i !== 0 || c !== 8) {
        await measure("opensrf.system.echo", pool, c, relayAt.get(c), echo);
        continue;
      }
      // CPU per call of every process on the path, over the measured window of echo at c=8.
      const dronePids = childrenOf(listenerPid);
      const pids = [listenerPid, ...dronePids, stack.router.pid, stack.xmpp.pid, process.pid];
      let before = new Map<number, number>();
      let after = new Map<number, number>();
      const r = await measure("opensrf.system.echo", pool, c, relayAt.get(c), echo, {
        onWindow: (edge) => {
          if (edge === "start") before = cpuSnapshot(pids);
          else after = cpuSnapshot(pids);
        },
      });
      cpuCalls = r.calls;
      cpu.listener = cpuBetween(before, after, [listenerPid]);
      cpu.drones = cpuBetween(before, after, dronePids);
      cpu.router = cpuBetween(before, after, [stack.router.pid]);
      cpu.xmpp = cpuBetween(before, after, [stack.xmpp.pid]);
      cpu.caller = cpuBetween(before, after, [process.pid]);
      cpu.seconds = r.seconds;
    }
    for (const c of P.concurrency) await measure("opensrf.math add", pool, c, relayAt.get(c), add);
    if (i === 0) {
      for (const c of P.sessionConcurrency) {
        await measure(`session (CONNECT+${SESSION_REQUESTS}+DISCONNECT)`, pool, c, relaySession.get(c), session, {
          unit: "sessions",
        });
      }
      await Bun.sleep(500); // idle: what a waiting drone holds
      idleDrones = childrenOf(listenerPid)
        .map(memory)
        .filter((m): m is Memory => m !== undefined);
      listenerMem = memory(listenerPid);
      routerMem = memory(stack.router.pid);
    }
    await math.stop();
    served.splice(served.indexOf(math), 1);
  }

  say("opensrf.stream big:");
  const stream = await startServe(stack, { service: "opensrf.stream", app: "examples/stream.ts", drones: 2 });
  served.push(stream);
  await runLoad({ concurrency: 1, warmupMs: 0, measureMs: Math.min(P.poolWarmupMs, 1000) }, big);
  await measure(`opensrf.stream big (${BIG_BYTES >> 20} MB result)`, "2", 1, relayBig, big, { measureMs: P.bigMs });
  await stream.stop();
  served.splice(served.indexOf(stream), 1);

  say("drone start-up:");
  const init = droneInit(stack.core, "opensrf.math", "examples/math.ts", join(stack.dir, "spawn.log"));
  const binCommand = fromBinary ? [process.env.OSRF_PREFORK_BIN!, "drone"] : undefined;
  const ways: Array<[string, string[] | undefined]> = [
    ...(binCommand ? ([["compiled binary", binCommand]] as Array<[string, string[]]>) : []),
    [`${sourceCommand.length > 1 ? "bun src/cli.ts" : "OSRF_PREFORK_BIN"}`, [...sourceCommand, "drone"]],
  ];
  for (const [how, command] of ways) {
    const one: SpawnResult = { drones: 0, readyMs: [], readyCpuMs: [], allReadyMs: 0, memory: [], failed: 0 };
    for (let i = 0; i < P.sequentialSpawns; i++) {
      const r = await spawnStorm(init, 1, env, command);
      one.drones++;
      one.readyMs.push(...r.readyMs);
      one.memory.push(...r.memory);
      one.failed += r.failed;
    }
    one.readyMs.sort((a, b) => a - b);
    sequential.push({ how, result: one });
    say(`  spawn → ready, one at a time (${how}): median ${pct(one.readyMs, 50).toFixed(1)} ms`);
  }
  for (const n of P.storms) {
    const r = await spawnStorm(init, n, env, binCommand);
    spawnRuns.push(r);
    say(
      `  ${n} at once: all ready in ${r.allReadyMs.toFixed(0)} ms, ${r.failed} failed, PSS total ${mb(r.memory.reduce((a, m) => a + m.pssKb, 0))}`,
    );
  }

  say("in-process baseline, parser, pieces:");
  inProcess = await runInProcess(join(stack.dir, "inprocess.log"), P.inProcessMs);
  parse = runParseBench(P.parseMs);
  components = await runComponents(P.componentMs);
} catch (e) {
  say(`bench failed: ${(e as Error).stack ?? e}`);
  process.exitCode = 1;
} finally {
  for (const s of served) await s.stop().catch(() => {});
  await relay?.stop().catch(() => {});
  await stack?.stop().catch(() => {});
  compiled?.remove();
}

// -------------------------------------------------------------------------------------------
// Report

const out: string[] = [];
out.push(`## osrf-prefork bench — ${mode}, ${kind}`);
out.push("");
out.push(machineLine());
out.push(`processes run from ${fromBinary ? "a compiled binary" : "bun src/cli.ts"}; loglevel 3 to a file`);
out.push("");
out.push("| case | pool | c | calls/s | p50 ms | p95 ms | p99 ms | p99/p50 | vs relay |");
out.push("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
for (const r of rows) {
  const l = r.load;
  const ratio = !r.relay
    ? "1.00"
    : r.relay.calls > 0 && l.calls > 0
      ? (l.perSecond / r.relay.perSecond).toFixed(2)
      : "—";
  const unit = r.unit === "calls" ? "" : ` ${r.unit}`;
  const errors = l.errors ? ` (${l.errors} errors: ${l.firstError?.slice(0, 60)})` : "";
  const spread = l.calls > 0 ? (l.p99 / l.p50).toFixed(1) : "—";
  out.push(
    `| ${r.case} | ${r.pool} | ${l.concurrency} | ${fmtRate(l.perSecond)}${unit} | ${ms(l.p50)} | ${ms(l.p95)} | ${ms(l.p99)} | ${spread} | ${ratio}${errors} |`,
  );
}
const relay1 = relayAt.get(1);
for (const r of inProcess) {
  out.push(
    `| in-process — ${r.case} | — | 1 | ${fmtRate(r.perSecond)} | | | | | ${relay1 ? (r.perSecond / relay1.perSecond).toFixed(1) : "—"} |`,
  );
}
out.push("");
out.push(
  "vs relay: calls/s divided by the relay ceiling's at the same concurrency (in-process rows: by the relay at c=1).",
);

out.push("");
out.push("| cost | value |");
out.push("|---|---:|");
for (const { how, result } of sequential) {
  if (result.readyMs.length === 0) continue;
  const max = result.readyMs[result.readyMs.length - 1]!;
  out.push(
    `| drone spawn → ready, one at a time, ${how} (median / max of ${result.readyMs.length}) | ${pct(result.readyMs, 50).toFixed(1)} / ${max.toFixed(1)} ms |`,
  );
}
if (idleDrones.length) {
  const field = (k: keyof Memory) => mb(avg(idleDrones.map((m) => m[k])));
  out.push(
    `| idle drone RSS / PSS / private (avg of ${idleDrones.length}) | ${field("rssKb")} / ${field("pssKb")} / ${field("privateKb")} |`,
  );
}
if (listenerMem) out.push(`| listener RSS / PSS | ${mb(listenerMem.rssKb)} / ${mb(listenerMem.pssKb)} |`);
if (routerMem) out.push(`| router RSS / PSS | ${mb(routerMem.rssKb)} / ${mb(routerMem.pssKb)} |`);
if (cpuCalls > 0) {
  const per = (s: number) => `${((s / cpuCalls) * 1e6).toFixed(0)} µs`;
  out.push(`| CPU per echo call at c=8, pool ${P.pools[0]}: listener | ${per(cpu.listener!)} |`);
  out.push(`| … drones (all) | ${per(cpu.drones!)} |`);
  out.push(`| … listener ÷ drones | ${((cpu.listener! / cpu.drones!) * 100).toFixed(0)}% |`);
  out.push(`| … router | ${per(cpu.router!)} |`);
  out.push(`| … XMPP server | ${per(cpu.xmpp!)} |`);
  out.push(`| … caller (this process) | ${per(cpu.caller!)} |`);
  const total = cpu.listener! + cpu.drones! + cpu.router! + cpu.xmpp! + cpu.caller!;
  out.push(
    `| … all of them; CPU busy | ${per(total)}; ${((total / cpu.seconds! / cpus().length) * 100).toFixed(0)}% of ${cpus().length} cores |`,
  );
}
for (const s of spawnRuns) {
  const pss = s.memory.reduce((a, m) => a + m.pssKb, 0);
  const failed = s.failed ? ` (${s.failed} failed)` : "";
  out.push(
    `| ${s.drones} drones at once: all ready / spawn→ready p50 / p95 | ${s.allReadyMs.toFixed(0)} / ${pct(s.readyMs, 50).toFixed(0)} / ${pct(s.readyMs, 95).toFixed(0)} ms${failed} |`,
  );
  out.push(
    `| ${s.drones} drones: PSS total / per drone; RSS per drone | ${mb(pss)} / ${mb(pss / Math.max(1, s.memory.length))}; ${mb(avg(s.memory.map((m) => m.rssKb)))} |`,
  );
}
if (parse.length) {
  out.push("");
  out.push("XML parsing (src/xmpp/xml-tokenizer.ts vs ltx's tokenizer):");
  out.push("");
  out.push(formatParseResults(parse));
}
if (components.length) {
  out.push("");
  out.push("One request's pieces, each on its own:");
  out.push("");
  out.push(formatComponents(components));
}
out.push("");
out.push(`(${((performance.now() - started) / 1000).toFixed(0)} s)`);
process.stdout.write(`${out.join("\n")}\n`);

if (jsonOut) {
  const raw = {
    mode,
    kind,
    commit: commit(),
    fromBinary,
    rows,
    inProcess,
    sequential,
    spawnRuns,
    idleDrones,
    listenerMem,
    routerMem,
    cpu,
    cpuCalls,
    parse,
    components,
  };
  writeFileSync(jsonOut, JSON.stringify(raw, null, 2));
}
if (profileDir) say(`CPU profiles in ${profileDir} (one markdown file per process)`);
process.exit(process.exitCode ?? 0);
