/**
 * Loopback captures of the private XMPP server's port and what the wire benches run while
 * capturing: who holds each connection, tcpdump and perf started and stopped around a window,
 * and exactly `n` calls in closed loops.
 */
import { spawn, spawnSync } from "node:child_process";
import { say } from "./report.ts";

/** Every process holding each local port connected to ejabberd (a C drone inherits its listener's socket). */
export function portOwners(xmppPort: number): Map<number, number[]> {
  const out = spawnSync("ss", ["-tnpH", "state", "established", `( dport = :${xmppPort} )`], { encoding: "utf8" });
  const owners = new Map<number, number[]>();
  for (const line of out.stdout.split("\n")) {
    const m = /127\.0\.0\.1:(\d+)\s+\S+\s+users:(.*)$/.exec(line);
    if (m)
      owners.set(
        Number(m[1]),
        [...m[2]!.matchAll(/pid=(\d+)/g)].map((x) => Number(x[1])),
      );
  }
  return owners;
}

/** tcpdump of `tcp port xmppPort` on lo to `file`, `snaplen` bytes of each packet (0: all). */
export function startCapture(file: string, xmppPort: number, snaplen: number) {
  if (!Bun.which("tcpdump")) {
    throw new Error("tcpdump not found: install it with `bash scripts/install-deps.sh --bench` (Debian's tcpdump)");
  }
  // Immediate mode: otherwise libpcap hands packets over per filled block or per second,
  // and what is still in the ring when tcpdump is stopped is lost.
  const args = ["-i", "lo", "--immediate-mode", "-B", "65536", "-s", String(snaplen), "-U", "-w", file];
  const p = spawn("tcpdump", [...args, `tcp port ${xmppPort}`], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let err = "";
  p.stderr.on("data", (d) => (err += d));
  return {
    ready: async () => {
      for (let i = 0; i < 100 && !err.includes("listening"); i++) await Bun.sleep(20);
    },
    stop: async () => {
      await Bun.sleep(300); // the last ACKs
      p.kill("SIGINT");
      await new Promise((r) => p.once("exit", r));
      const dropped = /(\d+) packets? dropped by kernel/.exec(err)?.[1];
      if (dropped && dropped !== "0") say(`    (tcpdump: ${dropped} packets dropped by the kernel)`);
    },
  };
}

/** `perf record -g` of one process (kernel and user stacks), stopped by SIGINT. */
export function startPerf(pid: number, file: string) {
  const p = spawn("perf", ["record", "-g", "-F", "2000", "-o", file, "-p", String(pid)], {
    stdio: ["ignore", "ignore", "ignore"],
  });
  return {
    stop: async () => {
      p.kill("SIGINT");
      await new Promise((r) => p.once("exit", r));
    },
  };
}

/** Runs exactly `n` calls in `c` closed loops. */
export async function runCalls(call: () => Promise<unknown>, n: number, c: number): Promise<number> {
  let started = 0;
  let failed = 0;
  const loop = async () => {
    while (started < n) {
      started++;
      await call().catch(() => void failed++);
    }
  };
  const t = performance.now();
  await Promise.all(Array.from({ length: c }, loop));
  if (failed) say(`    (${failed} calls failed)`);
  return (performance.now() - t) / 1000;
}
