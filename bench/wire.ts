#!/usr/bin/env bun
/**
 * What one call costs on the wire, ours against the real C prefork in the same run: TCP
 * segments and bytes per call on every XMPP connection (tcpdump on the private ejabberd's
 * port), read/write system calls and CPU per call of every process, and the exact stanzas of
 * one call as each process wrote them and as ejabberd delivered them.
 *
 *   bun bench/wire.ts [--calls=3000] [--c=8] [--rate=0] [--rounds=2] [--method=echo|add]
 *                     [--pool=fixed|stock] [--max-requests=1000000] [--base=BIN]
 *                     [--strace] [--strace-log=FILE] [--perf=PREFIX] [--dump] [--source]
 *
 * Both services get the same fixed pool (15 drones), behind one ejabberd (busy-wait off, as in
 * bench/vs-c.ts), the real C router and the real Perl opensrf.settings. Each round measures C
 * then ours (then ours, C in the next): exactly `calls` calls at concurrency `c` — in closed
 * loops, or with `--rate` started at that many a second (at most `c` in flight), so that both
 * sides are measured at the same rate: CPU per call of a process depends on how many messages
 * each of its wake-ups finds, so comparing sides at different rates compares batching too.
 * `--strace` also attaches `strace -c -f` to the listener and drones of the side measured
 * (slows them: read its counts per call, not its times). `--dump` prints every stanza of one
 * call at c=1 on each side, as written (→ ejabberd) and as delivered (ejabberd →). The
 * listener's CPU is also given by thread (its JavaScript thread, JIT and GC helpers) with its
 * wake-ups per call (voluntary context switches); `--perf` records each listener with
 * `perf record -g` for `perf report`.
 * Needs tcpdump (and strace for --strace) and the rights to capture on loopback.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { PeerService } from "../devkit/opensrf/configs.ts";
import { ensurePeer } from "../devkit/opensrf/peer.ts";
import { startOpenSrfStack } from "../devkit/opensrf/stack.ts";
import type { Client } from "../src/client/client.ts";
import { readCoreConfig } from "../src/config/core.ts";
import { opt } from "./args.ts";
import { type Calls, callsTo } from "./calls.ts";
import { portOwners, runCalls, startCapture, startPerf } from "./capture.ts";
import { childPids, childrenCpuSeconds, cpuSeconds, ioCounters } from "./costs.ts";
import { say } from "./report.ts";
import { compileBinary, connectCaller, ROOT } from "./stack.ts";
import { threadCpu } from "./threads.ts";

const CALLS = Number(opt("calls", "3000"));
const C = Number(opt("c", "8"));
const ROUNDS = Number(opt("rounds", "2"));
const METHOD = opt("method", "echo") as "echo" | "add";
const MAX_REQUESTS = Number(opt("max-requests", "1000000"));
const STRACE = process.argv.includes("--strace");
/** Writes a timestamped strace of the socket calls of one side's listener and drones to this file. */
const STRACE_LOG = opt("strace-log", "");
const DUMP = process.argv.includes("--dump");
const SOURCE = process.argv.includes("--source");
/** `--perf=PREFIX`: `perf record -g` of each side's listener during its windows, to PREFIX.<side>.<round>.data. */
const PERF = opt("perf", "");
/** "fixed": 15 drones from the start; "stock": opensrf.xml.example's 5–15 with spares 2–5 (as in bench/vs-c.ts). */
const POOL = opt("pool", "fixed") as "fixed" | "stock";
/** Calls started per second (open loop, at most `c` in flight); 0 = closed loops. */
const RATE = Number(opt("rate", "0"));

/**
 * `--base=BIN`: also an osrf-prefork binary built from another commit, serving its own copy of
 * the service, measured in the same run as a third side (before/after a change).
 */
const BASE_BIN = opt("base", "");
type Side = "c" | "ours" | "base";
const SERVICE: Record<Side, string> = { c: "opensrf.dbmath", ours: "opensrf.tsmath", base: "opensrf.tsbase" };
const SIDES: Side[] = BASE_BIN ? ["c", "base", "ours"] : ["c", "ours"];
const LABEL: Record<Side, string> = { c: "C", ours: "ours", base: "base" };
const ERL_NO_BUSY_WAIT = "+sbwt none +sbwtdcpu none +sbwtdio none";

/** Who holds each local port connected to ejabberd. */
type Role = "caller" | "router" | "listener" | "drone" | "other";

interface Segments {
  /** Segments with data, and pure ACKs, and payload bytes, each way. */
  toServer: { data: number; acks: number; bytes: number };
  fromServer: { data: number; acks: number; bytes: number };
}

/** Per local port: segments each way, from a capture read back with `tcpdump -r`. */
function readCapture(file: string, xmppPort: number): Map<number, Segments> {
  const out = spawnSync("tcpdump", ["-r", file, "-nn", "-q", "-S"], { encoding: "utf8", maxBuffer: 1 << 30 });
  const byPort = new Map<number, Segments>();
  const re = /IP 127\.0\.0\.1\.(\d+) > 127\.0\.0\.1\.(\d+): tcp (\d+)/;
  for (const line of out.stdout.split("\n")) {
    const m = re.exec(line);
    if (!m) continue;
    const [src, dst, len] = [Number(m[1]), Number(m[2]), Number(m[3])];
    const toServer = dst === xmppPort;
    const port = toServer ? src : dst;
    let s = byPort.get(port);
    if (!s) {
      s = { toServer: { data: 0, acks: 0, bytes: 0 }, fromServer: { data: 0, acks: 0, bytes: 0 } };
      byPort.set(port, s);
    }
    const way = toServer ? s.toServer : s.fromServer;
    if (len > 0) {
      way.data++;
      way.bytes += len;
    } else way.acks++;
  }
  return byPort;
}

function startStrace(pids: number[], file: string, log = false) {
  const how = log ? ["-tt", "-e", "trace=sendto,sendmsg,recvfrom,recvmsg,read,write,writev"] : ["-c"];
  const args = [...how, "-f", "-o", file, ...pids.flatMap((p) => ["-p", String(p)])];
  const p = spawn("strace", args, { stdio: ["ignore", "ignore", "pipe"] });
  return {
    stop: async () => {
      p.kill("SIGINT");
      await new Promise((r) => p.once("exit", r));
      return log ? new Map<string, number>() : parseStraceSummary(readFileSync(file, "utf8"));
    },
  };
}

/** `strace -c` table → calls per syscall name. */
function parseStraceSummary(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/);
    // % time, seconds, usecs/call, calls, [errors], syscall
    if (f.length >= 5 && /^\d/.test(f[0]!) && /^\d+$/.test(f[3]!)) out.set(f[f.length - 1]!, Number(f[3]));
  }
  return out;
}

/** Starts `n` calls at `rate` a second, at most `c` in flight (a call due while `c` are in flight waits). */
async function runAtRate(call: () => Promise<unknown>, n: number, c: number, rate: number): Promise<number> {
  let started = 0;
  let inFlight = 0;
  let failed = 0;
  const t = performance.now();
  await new Promise<void>((resolve) => {
    const tick = () => {
      const due = Math.min(n, Math.floor(((performance.now() - t) / 1000) * rate) + 1);
      while (started < due && inFlight < c) {
        started++;
        inFlight++;
        call()
          .catch(() => void failed++)
          .finally(() => {
            inFlight--;
            if (started === n && inFlight === 0) resolve();
          });
      }
      if (started < n) setTimeout(tick, 1);
    };
    tick();
  });
  if (failed) say(`    (${failed} calls failed)`);
  return (performance.now() - t) / 1000;
}

interface RoundResult {
  side: Side;
  seconds: number;
  /** Per role: segments each way, summed over its connections, and how many connections carried data. */
  wire: Map<Role, Segments & { conns: number }>;
  cpu: Record<string, number>;
  io: Record<string, { syscr: number; syscw: number }>;
  strace?: Map<string, number>;
  /** The listener's CPU seconds by thread name. */
  listenerThreads: Map<string, number>;
  /** The listener's voluntary context switches (each a sleep and a wake-up). */
  listenerWakeups: number;
}

/** Voluntary context switches of a process's main thread so far. */
function wakeups(pid: number): number {
  try {
    const m = /voluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

const fmt = (v: number, calls: number, digits = 2) => (v / calls).toFixed(digits);

async function main(): Promise<void> {
  const compiled = SOURCE ? undefined : compileBinary();
  const dir = mkdtempSync(join(tmpdir(), "osrf-wire-"));
  const unix =
    POOL === "stock"
      ? { minChildren: 5, maxChildren: 15, minSpareChildren: 2, maxSpareChildren: 5, maxRequests: MAX_REQUESTS }
      : { minChildren: 15, maxChildren: 15, minSpareChildren: 0, maxSpareChildren: 0, maxRequests: MAX_REQUESTS };
  const services: PeerService[] = [
    { name: SERVICE.c, language: "c", implementation: "libosrf_dbmath.so", keepalive: 3, unixConfig: unix },
    ...SIDES.filter((x) => x !== "c").map((x) => ({
      name: SERVICE[x],
      language: "typescript",
      implementation: join(ROOT, "examples/math.ts"),
      keepalive: 3,
      unixConfig: unix,
    })),
  ];
  const stack = await startOpenSrfStack({
    peer: await ensurePeer(),
    cServices: [SERVICE.c],
    services,
    loglevel: 1,
    xmppErlOptions: ERL_NO_BUSY_WAIT,
  });
  let client: Client | undefined;
  try {
    await stack.servePrefork(SERVICE.ours, join(ROOT, "examples/math.ts"));
    if (BASE_BIN) {
      // Processes are started from whatever OSRF_PREFORK_BIN names at the time.
      const own = process.env.OSRF_PREFORK_BIN;
      process.env.OSRF_PREFORK_BIN = BASE_BIN;
      await stack.servePrefork(SERVICE.base, join(ROOT, "examples/math.ts"));
      if (own === undefined) delete process.env.OSRF_PREFORK_BIN;
      else process.env.OSRF_PREFORK_BIN = own;
    }
    const core = readCoreConfig(stack.paths.core);
    client = await connectCaller(core, stack.dir, 10);
    const xmppPort = stack.xmpp.port;
    const calls = Object.fromEntries(SIDES.map((x) => [x, callsTo(client!, SERVICE[x])])) as Record<Side, Calls>;
    say(`warming the pools (${Math.max(CALLS, 3000)} calls each at c=15)`);
    for (const side of SIDES) await runCalls(calls[side][METHOD], Math.max(CALLS, 3000), 15);

    if (DUMP) for (const side of SIDES) await dumpOneCall(side, calls[side][METHOD], xmppPort, dir);

    const results: RoundResult[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? SIDES : [...SIDES].reverse();
      for (const side of order) {
        const listener = stack.listenerPid(SERVICE[side]);
        const rolePids = (): Record<string, number[]> => ({
          xmpp: [stack.xmpp.pid],
          router: stack.routerPids(),
          listener: [listener],
          drones: childPids(listener),
          caller: [process.pid],
        });
        const owners = portOwners(xmppPort);
        const seenDrones = new Set(childPids(listener));
        const roleOf = (pids: number[] | undefined): Role => {
          const p = rolePids();
          if (pids === undefined) return "other";
          if (pids.includes(process.pid)) return "caller";
          if (pids.some((x) => p.router!.includes(x))) return "router";
          if (pids.includes(listener)) return "listener";
          if (pids.some((x) => p.drones!.includes(x) || seenDrones.has(x))) return "drone";
          return "other";
        };
        const pcap = join(dir, `r${round}-${side}.pcap`);
        const cap = startCapture(pcap, xmppPort, 96);
        await cap.ready();
        const traced = [listener, ...childPids(listener)];
        const st = STRACE_LOG
          ? startStrace(traced, `${STRACE_LOG}.${side}`, true)
          : STRACE
            ? startStrace(traced, join(dir, `r${round}-${side}.strace`))
            : undefined;
        if (st) await Bun.sleep(300);
        const perf = PERF ? startPerf(listener, `${PERF}.${side}.${round}.data`) : undefined;
        if (perf) await Bun.sleep(300);
        const cpu0: Record<string, number> = {};
        const io0: Record<string, { syscr: number; syscw: number }> = {};
        const snapshot = (cpu: Record<string, number>, io: Record<string, { syscr: number; syscw: number }>) => {
          const p = rolePids();
          for (const [k, pids] of Object.entries(p)) {
            cpu[k] = k === "drones" ? childrenCpuSeconds(listener) : pids.reduce((a, x) => a + cpuSeconds(x), 0);
            io[k] = pids.reduce(
              (a, x) => {
                const c = ioCounters(x);
                return { syscr: a.syscr + (c?.syscr ?? 0), syscw: a.syscw + (c?.syscw ?? 0) };
              },
              { syscr: 0, syscw: 0 },
            );
          }
        };
        snapshot(cpu0, io0);
        const threads0 = threadCpu(listener);
        const wake0 = wakeups(listener);
        const seconds =
          RATE > 0
            ? await runAtRate(calls[side][METHOD], CALLS, C, RATE)
            : await runCalls(calls[side][METHOD], CALLS, C);
        // Connections of drones started during the window (they may have exited again: "other").
        for (const [port, pids] of portOwners(xmppPort)) if (!owners.has(port)) owners.set(port, pids);
        for (const d of childPids(listener)) seenDrones.add(d);
        const cpu1: Record<string, number> = {};
        const io1: Record<string, { syscr: number; syscw: number }> = {};
        snapshot(cpu1, io1);
        const threads1 = threadCpu(listener);
        const listenerWakeups = wakeups(listener) - wake0;
        const listenerThreads = new Map([...threads1].map(([k, v]) => [k, v - (threads0.get(k) ?? 0)]));
        const strace = await st?.stop();
        await perf?.stop();
        await cap.stop();
        const wire = new Map<Role, Segments & { conns: number }>();
        for (const [port, seg] of readCapture(pcap, xmppPort)) {
          const role = roleOf(owners.get(port));
          let w = wire.get(role);
          if (!w) {
            w = { toServer: { data: 0, acks: 0, bytes: 0 }, fromServer: { data: 0, acks: 0, bytes: 0 }, conns: 0 };
            wire.set(role, w);
          }
          if (seg.toServer.data + seg.fromServer.data > 0) w.conns++;
          for (const way of ["toServer", "fromServer"] as const) {
            w[way].data += seg[way].data;
            w[way].acks += seg[way].acks;
            w[way].bytes += seg[way].bytes;
          }
        }
        const cpu = Object.fromEntries(Object.keys(cpu1).map((k) => [k, cpu1[k]! - (cpu0[k] ?? 0)]));
        const io = Object.fromEntries(
          Object.keys(io1).map((k) => [
            k,
            { syscr: io1[k]!.syscr - (io0[k]?.syscr ?? 0), syscw: io1[k]!.syscw - (io0[k]?.syscw ?? 0) },
          ]),
        );
        rmSync(pcap, { force: true });
        const result: RoundResult = {
          side,
          seconds,
          wire,
          cpu,
          io,
          listenerThreads,
          listenerWakeups,
          ...(strace ? { strace } : {}),
        };
        results.push(result);
        say(`  round ${round + 1} ${side.padEnd(4)} ${(CALLS / seconds).toFixed(0)} calls/s`);
      }
    }
    process.stdout.write(`${report(results)}\n`);
  } finally {
    await client?.close().catch(() => {});
    await stack.stop().catch(() => {});
    compiled?.remove();
    rmSync(dir, { recursive: true, force: true });
  }
}

function report(results: RoundResult[]): string {
  const out: string[] = [];
  out.push(
    `## ${METHOD} at c=${C}${RATE > 0 ? `, ${RATE} calls/s` : ""}: ${CALLS} calls per window, pools ${POOL === "fixed" ? "15 fixed" : "5–15, spare 2–5"}, max_requests ${MAX_REQUESTS}; per call (means of windows)`,
  );
  out.push("");
  const sides = SIDES;
  const bySide = (s: Side) => results.filter((r) => r.side === s);
  const mean = (rs: RoundResult[], f: (r: RoundResult) => number) => rs.reduce((a, r) => a + f(r), 0) / rs.length;
  out.push(`| per call | ${sides.map((x) => LABEL[x]).join(" | ")} |`);
  out.push(`|---|${sides.map(() => "---:").join("|")}|`);
  out.push(`| calls/s | ${sides.map((s) => mean(bySide(s), (r) => CALLS / r.seconds).toFixed(0)).join(" | ")} |`);
  for (const role of ["caller", "router", "listener", "drone", "other"] as Role[]) {
    for (const way of ["toServer", "fromServer"] as const) {
      const arrow = way === "toServer" ? "→ ejabberd" : "ejabberd →";
      const cell = (s: Side, f: (w: Segments[typeof way]) => number) =>
        fmt(
          mean(bySide(s), (r) => (r.wire.get(role) ? f(r.wire.get(role)![way]) : 0)),
          CALLS,
        );
      if (!sides.some((s) => bySide(s).some((r) => r.wire.get(role)))) continue;
      const row = (what: string, f: (w: Segments[typeof way]) => number) =>
        out.push(`| ${role} ${arrow}: ${what} | ${sides.map((x) => cell(x, f)).join(" | ")} |`);
      row("data segments", (w) => w.data);
      row("pure ACKs", (w) => w.acks);
      row("bytes", (w) => w.bytes);
    }
    out.push(
      `| ${role}: connections with data | ${sides.map((s) => mean(bySide(s), (r) => r.wire.get(role)?.conns ?? 0).toFixed(1)).join(" | ")} |`,
    );
  }
  for (const k of ["xmpp", "router", "listener", "drones", "caller"]) {
    out.push(
      `| ${k}: CPU µs | ${sides.map((s) => mean(bySide(s), (r) => ((r.cpu[k] ?? 0) / CALLS) * 1e6).toFixed(0)).join(" | ")} |`,
    );
    out.push(
      `| ${k}: read / write syscalls (/proc io) | ${sides
        .map(
          (s) =>
            `${fmt(
              mean(bySide(s), (r) => r.io[k]?.syscr ?? 0),
              CALLS,
            )} / ${fmt(
              mean(bySide(s), (r) => r.io[k]?.syscw ?? 0),
              CALLS,
            )}`,
        )
        .join(" | ")} |`,
    );
  }
  out.push(
    `| listener: wake-ups (voluntary context switches) | ${sides
      .map((s) =>
        fmt(
          mean(bySide(s), (r) => r.listenerWakeups),
          CALLS,
        ),
      )
      .join(" | ")} |`,
  );
  const threadNames = new Set(results.flatMap((r) => [...r.listenerThreads.keys()]));
  for (const t of threadNames) {
    const v = sides.map((s) => mean(bySide(s), (r) => ((r.listenerThreads.get(t) ?? 0) / CALLS) * 1e6));
    if (v.some((x) => x >= 0.5))
      out.push(`| listener thread ${t}: CPU µs | ${v.map((x) => x.toFixed(1)).join(" | ")} |`);
  }
  if (results.some((r) => r.strace)) {
    const names = new Set(results.flatMap((r) => [...(r.strace?.keys() ?? [])]));
    const rows = [...names]
      .map((n) => ({ n, v: sides.map((s) => mean(bySide(s), (r) => r.strace?.get(n) ?? 0) / CALLS) }))
      .filter((x) => x.v.some((v) => v >= 0.05))
      .sort((a, b) => b.v.reduce((x, y) => x + y, 0) - a.v.reduce((x, y) => x + y, 0));
    out.push("");
    out.push("strace -c -f of listener + drones, syscalls per call:");
    out.push("");
    out.push(`| syscall | ${sides.map((x) => LABEL[x]).join(" | ")} |`);
    out.push(`|---|${sides.map(() => "---:").join("|")}|`);
    for (const r of rows) out.push(`| ${r.n} | ${r.v.map((v) => v.toFixed(2)).join(" | ")} |`);
  }
  return out.join("\n");
}

/** Prints every segment of one call at c=1 on `side`: who wrote it, which way, and its text. */
async function dumpOneCall(side: Side, call: () => Promise<unknown>, xmppPort: number, dir: string): Promise<void> {
  const pcap = join(dir, `dump-${side}.pcap`);
  const owners = portOwners(xmppPort);
  const cap = startCapture(pcap, xmppPort, 65535);
  await cap.ready();
  await call();
  await cap.stop();
  const r = spawnSync("tcpdump", ["-r", pcap, "-nn", "-A", "-q"], { encoding: "utf8", maxBuffer: 1 << 28 });
  const text = r.stdout;
  if (process.env.WIRE_DEBUG) say(r.stderr);
  say(`one ${METHOD} call, ${side}: ${text.length} chars of capture`);
  if (process.env.WIRE_DEBUG) say(text.slice(0, 2000));
  const re = /IP 127\.0\.0\.1\.(\d+) > 127\.0\.0\.1\.(\d+): tcp (\d+)\n([\s\S]*?)(?=\n\d\d:\d\d:\d\d\.\d+ IP |$)/g;
  for (const m of text.matchAll(re)) {
    const [src, dst, len] = [Number(m[1]), Number(m[2]), Number(m[3])];
    if (len === 0) continue;
    const toServer = dst === xmppPort;
    const pid = owners.get(toServer ? src : dst)?.join(",");
    const raw = m[4]!.replace(/\n/g, "");
    const start = raw.indexOf("<");
    say(`  ${toServer ? `pid ${pid} → ejabberd` : `ejabberd → pid ${pid}`} ${len} B: ${raw.slice(start)}`);
  }
}

await main();
