#!/usr/bin/env bun
/**
 * What the real C router receives and sends per call, ours against the real C prefork in the
 * same run: every stanza on the router's XMPP connections (a full capture of the private
 * ejabberd's port on loopback), by direction, element, type and sender/recipient kind, and
 * the router's CPU per call (from its schedstat) over long windows; also while nothing is
 * called, and optionally over short windows as bench/vs-c.ts --quick takes them.
 *
 *   bun bench/router-stanzas.ts [--calls=20000] [--c=8] [--rounds=1] [--pool=stock|fixed]
 *                               [--max-requests=1000] [--warm=3000] [--idle-s=5] [--short=0]
 *                               [--big=ours|both] [--perf=PREFIX] [--source]
 *
 * Pools as in bench/vs-c.ts (stock: opensrf.xml.example's 5–15, spares 2–5). Each round
 * measures C then ours (ours then C in the next). `--big` first sends one 1 MB echo through
 * the router: the C router's cost per later stanza to that class grows with the largest one
 * it received (see bench/vs-c-order.ts). Needs tcpdump (and perf for --perf) and the rights
 * to capture on loopback.
 */
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
import { childPids, cpuSeconds, runtimeSeconds } from "./costs.ts";
import { runLoad } from "./load.ts";
import { BIG_ECHO_PARAMS } from "./relay.ts";
import { say } from "./report.ts";
import { compileBinary, connectCaller, ROOT } from "./stack.ts";
import { POOL_SETS } from "./vs-c.ts";

const CALLS = Number(opt("calls", "20000"));
const C = Number(opt("c", "8"));
const ROUNDS = Number(opt("rounds", "1"));
const POOL = opt("pool", "stock");
const MAX_REQUESTS = Number(opt("max-requests", "1000"));
const IDLE_S = Number(opt("idle-s", "5"));
/** Also this many short windows per side (200 ms warm-up + 800 ms, as in the quick bench/vs-c.ts), alternating sides. */
const SHORT = Number(opt("short", "0"));
/** Warm-up calls per side before anything is measured (bench/vs-c.ts warms for 1.5 s only). */
const WARM = Number(opt("warm", "3000"));
const SOURCE = process.argv.includes("--source");
/**
 * `--big=ours|both`: before anything is measured, one echo of 1 MB through the router to ours
 * (or to both; C cannot answer one, the router forwards it all the same).
 */
const BIG = opt("big", "");
/** `--perf=PREFIX`: `perf record -g` of the router during each long window, to PREFIX.<side>.<round>.data. */
const PERF = opt("perf", "");
const ERL_NO_BUSY_WAIT = "+sbwt none +sbwtdcpu none +sbwtdio none";

type Side = "c" | "ours";
const SERVICE: Record<Side, string> = { c: "opensrf.dbmath", ours: "opensrf.tsmath" };

/** TCP payload of a pcap file (link type Ethernet, as tcpdump writes for `lo`), concatenated per src→dst port pair. */
function streams(file: string): Map<string, string> {
  const buf = readFileSync(file);
  const out = new Map<string, Buffer[]>();
  let off = 24;
  while (off + 16 <= buf.length) {
    const incl = buf.readUInt32LE(off + 8);
    const pkt = buf.subarray(off + 16, off + 16 + incl);
    off += 16 + incl;
    if (pkt.length < 14 + 20 || pkt.readUInt16BE(12) !== 0x0800) continue;
    const ip = pkt.subarray(14);
    const ihl = (ip[0]! & 0x0f) * 4;
    const total = ip.readUInt16BE(2);
    const tcp = ip.subarray(ihl, total);
    const dataOff = (tcp[12]! >> 4) * 4;
    const payload = tcp.subarray(dataOff);
    if (payload.length === 0) continue;
    const key = `${tcp.readUInt16BE(0)}>${tcp.readUInt16BE(2)}`;
    const list = out.get(key) ?? [];
    list.push(Buffer.from(payload));
    out.set(key, list);
  }
  return new Map([...out].map(([k, v]) => [k, Buffer.concat(v).toString("utf8")]));
}

/** Who an address is, with the per-process parts (pids, times, hosts) left out. */
function kind(jid: string | undefined): string {
  if (!jid) return "-";
  return jid
    .replace(/_drone_at_[^/]*$/, "_drone")
    .replace(/_listener_at_[^/]*$/, "_listener")
    .replace(/\d{6,}[\d.]*/g, "#");
}

/** Counts of top-level stanzas in one direction of the router's connections, by element/type/from/to. */
function classify(text: string, into: Map<string, number>): void {
  for (const m of text.matchAll(/<(message|presence|iq|r|a|stream:[a-z]+)\b([^>]*)>/g)) {
    const attrs = m[2]!;
    const attr = (n: string) => new RegExp(`\\b${n}=['"]([^'"]*)['"]`).exec(attrs)?.[1];
    const key = `${m[1]} type=${attr("type") ?? "-"} from=${kind(attr("from"))} to=${kind(attr("to"))}`;
    into.set(key, (into.get(key) ?? 0) + 1);
  }
}

async function main(): Promise<void> {
  const compiled = SOURCE ? undefined : compileBinary();
  const dir = mkdtempSync(join(tmpdir(), "osrf-router-stanzas-"));
  const set = POOL_SETS.find((p) => p.name === POOL);
  if (!set) throw new Error(`--pool=${POOL}: not one of ${POOL_SETS.map((p) => p.name).join(", ")}`);
  const unix = { ...set.unix, maxRequests: MAX_REQUESTS };
  const services: PeerService[] = [
    { name: SERVICE.c, language: "c", implementation: "libosrf_dbmath.so", keepalive: 3, unixConfig: unix },
    {
      name: SERVICE.ours,
      language: "typescript",
      implementation: join(ROOT, "examples/math.ts"),
      keepalive: 3,
      unixConfig: unix,
    },
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
    client = await connectCaller(readCoreConfig(stack.paths.core), stack.dir, 10);
    const xmppPort = stack.xmpp.port;
    const calls = { c: callsTo(client, SERVICE.c), ours: callsTo(client, SERVICE.ours) } as Record<Side, Calls>;
    say(`warming the pools (${WARM} calls each at c=15)`);
    for (const side of ["c", "ours"] as Side[]) await runCalls(calls[side].echo, WARM, 15);
    const routerCpu = () => stack.routerPids().reduce((a, p) => a + cpuSeconds(p), 0);
    const routerRuntime = () => stack.routerPids().reduce((a, p) => a + runtimeSeconds(p), 0);

    for (const side of (BIG === "both" ? ["c", "ours"] : BIG === "ours" ? ["ours"] : []) as Side[]) {
      const r0 = routerRuntime();
      await client
        .request(SERVICE[side], "opensrf.system.echo", BIG_ECHO_PARAMS, { timeout: 3 })
        .collect()
        .catch(() => {});
      say(`one 1 MB echo to ${SERVICE[side]}: the router spent ${((routerRuntime() - r0) * 1000).toFixed(1)} ms on it`);
    }

    for (let i = 0; i < SHORT; i++) {
      for (const side of (i % 2 === 0 ? ["c", "ours", "ours", "c"] : ["ours", "c", "c", "ours"]) as Side[]) {
        let [t0, r0, t1, r1] = [0, 0, 0, 0];
        const load = await runLoad(
          {
            concurrency: C,
            warmupMs: 200,
            measureMs: 800,
            onWindow: (edge) => {
              if (edge === "start") [t0, r0] = [routerCpu(), routerRuntime()];
              else [t1, r1] = [routerCpu(), routerRuntime()];
            },
          },
          calls[side].echo,
        );
        say(
          `short ${i + 1} ${side.padEnd(4)} ${load.perSecond.toFixed(0)} calls/s; router ${(((t1 - t0) / load.calls) * 1e6).toFixed(0)} µs/call by /proc stat ticks, ` +
            `${(((r1 - r0) / load.calls) * 1e6).toFixed(0)} by schedstat (${((r1 - r0) * 1000).toFixed(1)} ms)`,
        );
      }
    }

    const idle0 = routerRuntime();
    await Bun.sleep(IDLE_S * 1000);
    say(`router CPU while idle: ${(((routerRuntime() - idle0) / IDLE_S) * 1000).toFixed(1)} ms/s over ${IDLE_S} s`);

    for (let round = 0; round < ROUNDS; round++) {
      for (const side of (round % 2 === 0 ? ["c", "ours"] : ["ours", "c"]) as Side[]) {
        const routers = stack.routerPids();
        const ports = new Set(
          [...portOwners(xmppPort)].filter(([, pids]) => pids.some((p) => routers.includes(p))).map(([port]) => port),
        );
        const pcap = join(dir, `r${round}-${side}.pcap`);
        const cap = startCapture(pcap, xmppPort, 0);
        await cap.ready();
        const drones0 = new Set(childPids(stack.listenerPid(SERVICE[side])));
        const perf = PERF ? startPerf(routers[0]!, `${PERF}.${side}.${round}.data`) : undefined;
        if (perf) await Bun.sleep(300);
        const cpu0 = routerRuntime();
        const seconds = await runCalls(calls[side].echo, CALLS, C);
        const cpu = routerRuntime() - cpu0;
        await perf?.stop();
        const drones1 = childPids(stack.listenerPid(SERVICE[side]));
        await cap.stop();
        const recv = new Map<string, number>();
        const sent = new Map<string, number>();
        for (const [key, text] of streams(pcap)) {
          const [src, dst] = key.split(">").map(Number) as [number, number];
          if (ports.has(dst)) classify(text, recv);
          else if (ports.has(src)) classify(text, sent);
        }
        rmSync(pcap, { force: true });
        say(
          `round ${round + 1} ${side}: ${(CALLS / seconds).toFixed(0)} calls/s over ${seconds.toFixed(1)} s; ` +
            `router CPU ${((cpu / CALLS) * 1e6).toFixed(1)} µs per call (${(cpu * 1000).toFixed(0)} ms); ` +
            `new drones ${drones1.filter((d) => !drones0.has(d)).length}; router connections ${ports.size}`,
        );
        for (const [label, m] of [
          ["router receives", recv],
          ["router sends", sent],
        ] as const) {
          for (const [k, n] of [...m].sort((a, b) => b[1] - a[1]))
            say(`    ${label}: ${(n / CALLS).toFixed(4)} per call (${n}) ${k}`);
        }
      }
    }
  } finally {
    await client?.close().catch(() => {});
    await stack.stop().catch(() => {});
    compiled?.remove();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
