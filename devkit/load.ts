/**
 * A bounded load generator for fault, overload and soak runs, plus the /proc readings they
 * compare before and after (open file descriptors, child processes, resident memory).
 *
 * Every run is bounded three ways: a total request count, a concurrency, and a wall-clock
 * deadline after which nothing new is sent. Each request ends in exactly one bucket:
 *
 * - `ok`: the call resolved (and `check`, when given, accepted the value);
 * - `wrong`: it resolved with a value `check` rejected;
 * - `errors`: the server or the bus answered with an error (a STATUS >= 400, a bounce, …),
 *   counted by kind (`status 503`, `delivery`, …) — an answer, not a loss;
 * - `lost`: no answer at all within the client's timeout (`TimeoutError`).
 *
 * `answered = ok + wrong + errors`; `sent = answered + lost`.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { DeliveryError, RequestError, TimeoutError } from "../src/client/errors.ts";

/** What one load run does. */
export interface LoadOptions {
  /** Requests to send in all. */
  total: number;
  /** Requests in flight at once. */
  concurrency: number;
  /**
   * Runs request `i` and resolves with its result (or rejects with the client's error).
   * Use a client timeout: a call that never settles holds a slot until `deadlineMs` + grace.
   */
  run: (i: number) => Promise<unknown>;
  /** Accepts or rejects the value request `i` resolved with (default: anything). */
  check?: (i: number, value: unknown) => boolean;
  /** Nothing new is sent after this many ms from the start (default 60 000). */
  deadlineMs?: number;
  /** Called every `progressEvery` settled requests (default 1000). */
  onProgress?: (r: LoadResult) => void;
  progressEvery?: number;
  /** Pause between two sends of one worker, ms (default 0): a gentler, longer run. */
  pauseMs?: number;
  /** Nothing new is sent once this returns true (e.g. "the fault is over"), given the requests sent so far. */
  stop?: (sent: number) => boolean;
}

/** Counts of one load run. */
export interface LoadResult {
  sent: number;
  answered: number;
  ok: number;
  wrong: number;
  /** Error answers by kind, e.g. `{ "status 500": 3, "status 503": 12, "delivery": 1 }`. */
  errors: Record<string, number>;
  /** Requests with no answer within the client timeout. */
  lost: number;
  /** Requests never sent because the deadline passed or `stop` said so. */
  unsent: number;
  /** First few error texts of each kind, for failure messages. */
  samples: Record<string, string[]>;
  elapsedMs: number;
  /** Latency percentiles of answered requests, ms. */
  p50: number;
  p99: number;
  maxMs: number;
}

/** Total error answers of a result. */
export function errorCount(r: LoadResult): number {
  return Object.values(r.errors).reduce((a, b) => a + b, 0);
}

/** One line for logs: `sent 2000 answered 2000 (ok 1990, errors {"status 500":10}) lost 0 …`. */
export function describeLoad(r: LoadResult): string {
  return (
    `sent ${r.sent} answered ${r.answered} (ok ${r.ok}, wrong ${r.wrong}, errors ${JSON.stringify(r.errors)}) lost ${r.lost}` +
    `${r.unsent ? ` unsent ${r.unsent}` : ""} in ${(r.elapsedMs / 1000).toFixed(1)} s ` +
    `(${Math.round((r.sent / r.elapsedMs) * 1000)} req/s, p50 ${r.p50.toFixed(0)} ms, p99 ${r.p99.toFixed(0)} ms, max ${r.maxMs.toFixed(0)} ms)`
  );
}

/** Classifies a rejection: a kind name, or undefined for "no answer" (a timeout). */
export function errorKind(e: unknown): string | undefined {
  if (e instanceof TimeoutError) return undefined;
  if (e instanceof RequestError) return `status ${e.statusCode}`;
  if (e instanceof DeliveryError) return "delivery";
  return `error ${(e as Error)?.name ?? typeof e}`;
}

const MAX_SAMPLES = 3;

/** Runs the load; resolves when every sent request has settled. */
export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  if (!(o.total >= 0 && o.concurrency >= 1)) throw new RangeError("runLoad: total >= 0 and concurrency >= 1");
  const t0 = performance.now();
  const deadline = t0 + (o.deadlineMs ?? 60_000);
  const every = o.progressEvery ?? 1000;
  const latencies: number[] = [];
  const r: LoadResult = {
    sent: 0,
    answered: 0,
    ok: 0,
    wrong: 0,
    errors: {},
    lost: 0,
    unsent: 0,
    samples: {},
    elapsedMs: 0,
    p50: 0,
    p99: 0,
    maxMs: 0,
  };
  const sample = (kind: string, text: string) => {
    const list = r.samples[kind] ?? [];
    r.samples[kind] = list;
    if (list.length < MAX_SAMPLES) list.push(text.slice(0, 300));
  };
  let next = 0;
  let settled = 0;

  async function worker(): Promise<void> {
    // Bounded by `total` (each pass takes one index) and by the deadline.
    while (next < o.total) {
      if (performance.now() > deadline || o.stop?.(r.sent)) return;
      const i = next++;
      r.sent++;
      const started = performance.now();
      try {
        const value = await o.run(i);
        r.answered++;
        if (!o.check || o.check(i, value)) r.ok++;
        else {
          r.wrong++;
          sample("wrong", `request ${i}: ${JSON.stringify(value)}`);
        }
        latencies.push(performance.now() - started);
      } catch (e) {
        const kind = errorKind(e);
        if (kind === undefined) {
          r.lost++;
          sample("lost", `request ${i}: ${(e as Error).message}`);
        } else {
          r.answered++;
          r.errors[kind] = (r.errors[kind] ?? 0) + 1;
          sample(kind, `request ${i}: ${(e as Error).message}`);
          latencies.push(performance.now() - started);
        }
      }
      settled++;
      if (o.onProgress && settled % every === 0) o.onProgress(finish(false));
      if (o.pauseMs) await Bun.sleep(o.pauseMs);
    }
  }

  function finish(final: boolean): LoadResult {
    const sorted = [...latencies].sort((a, b) => a - b);
    const pct = (p: number) =>
      sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! : 0;
    const out = {
      ...r,
      errors: { ...r.errors },
      elapsedMs: performance.now() - t0,
      p50: pct(0.5),
      p99: pct(0.99),
      maxMs: sorted.at(-1) ?? 0,
    };
    if (final) out.unsent = o.total - r.sent;
    return out;
  }

  await Promise.all(Array.from({ length: Math.min(o.concurrency, Math.max(o.total, 1)) }, worker));
  return finish(true);
}

// ---------------------------------------------------------------------------------------------
// Process readings (Linux /proc)

/** `/proc/<pid>/<file>` as text, or undefined once the process is gone. */
export function readProc(pid: number, file: string, encoding: BufferEncoding = "utf8"): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/${file}`, encoding);
  } catch {
    return undefined;
  }
}

/** True while `pid` runs and is not a zombie. */
export function isAlive(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return false;
  }
  return stat[stat.lastIndexOf(")") + 2] !== "Z";
}

/** Live (non-zombie) child processes of `ppid`. */
export function childPids(ppid: number): number[] {
  const out: number[] = [];
  for (const e of safeReaddir("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${e}/stat`, "utf8");
    } catch {
      continue;
    }
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (rest[0] !== "Z" && Number(rest[1]) === ppid) out.push(Number(e));
  }
  return out;
}

/** Open file descriptors of `pid` (entries of /proc/PID/fd), or -1 when it cannot be read. */
export function fdCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return -1;
  }
}

/** What the descriptors of `pid` point at, counted by kind (socket, pipe, anon_inode:…, file). */
export function fdKinds(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const fd of safeReaddir(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    const kind = target.startsWith("/") ? "file" : target.replace(/:\[?\d+\]?$/, "").replace(/\[.*$/, "");
    out[kind] = (out[kind] ?? 0) + 1;
  }
  return out;
}

/** Resident memory of `pid` in kB (VmRSS), or -1. */
export function rssKb(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : -1;
  } catch {
    return -1;
  }
}

/** Command lines of every process (`ps -eo args`), for secret scans. */
export function allCommandLines(): string[] {
  const out = Bun.spawnSync(["ps", "-eo", "args="]).stdout.toString();
  return out.split("\n").filter((l) => l.trim() !== "");
}

/** Waits until `cond` holds, polling every `stepMs`; throws naming `what` after `timeoutMs`. */
export async function waitUntil(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  stepMs = 50,
  detail: () => string = () => "",
): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!(await cond())) {
    if (performance.now() > end)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail() ? `\n${detail()}` : ""}`);
    await Bun.sleep(stepMs);
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

// ---------------------------------------------------------------------------------------------
// Faults under load

/** A running {@link startKiller}: `stop()` ends it and resolves with the pids it killed. */
export interface Killer {
  /** Drones killed so far. */
  killed(): number;
  stop(): Promise<number[]>;
}

/**
 * Kills a random one of `pids()` with SIGKILL every `everyMs` (after `startAfterMs`), at most
 * `max` times, until stopped: the fault of the drone-crash tests, bounded so that a slow load
 * does not also mean more kills.
 */
export function startKiller(o: { pids: () => number[]; max: number; everyMs?: number; startAfterMs?: number }): Killer {
  const kills: number[] = [];
  let running = true;
  const loop = (async () => {
    await Bun.sleep(o.startAfterMs ?? 300);
    while (running && kills.length < o.max) {
      const pids = o.pids();
      if (pids.length > 0) {
        const victim = pids[Math.floor(Math.random() * pids.length)]!;
        try {
          process.kill(victim, "SIGKILL");
          kills.push(victim);
        } catch {
          // exited on its own meanwhile
        }
      }
      await Bun.sleep(o.everyMs ?? 150);
    }
  })();
  return {
    killed: () => kills.length,
    async stop() {
      running = false;
      await loop;
      return kills;
    },
  };
}
