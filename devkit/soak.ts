/**
 * Soak: a long, steady load on one prefork service whose drones recycle constantly
 * (max_requests 50), checking that nothing accumulates — file descriptors, processes,
 * listener and router memory — and that no request is lost. `npm run soak` (scripts/soak.ts)
 * runs it at full length; test/integration/fault-soak.test.ts runs a short version in CI.
 */
import { readFileSync } from "node:fs";
import { FaultStack } from "./fault-stack.ts";
import { childPids, describeLoad, fdCount, fdKinds, type LoadResult, rssKb, runLoad, waitUntil } from "./load.ts";

export interface SoakOptions {
  requests: number;
  concurrency: number;
  maxRequests: number;
  minChildren: number;
  maxChildren: number;
  /** Requests run before the "before" readings, so caches and pools are warm. */
  warmup: number;
  /** Progress callback every 10,000 requests (and the readings at that point). */
  progress?: (line: string) => void;
  /** Whole-run bound, ms. */
  deadlineMs: number;
}

export interface Reading {
  listenerFds: number;
  listenerRssKb: number;
  routerFds: number;
  routerRssKb: number;
  drones: number;
  /** Processes titled as this service's drones anywhere on the machine (orphans included). */
  droneTitles: number;
}

export interface SoakReport {
  load: LoadResult;
  before: Reading;
  after: Reading;
  /** Drones started during the run (pid churn), from the drones' own count of served requests. */
  dronesStarted: number;
  listenerFdKinds: { before: Record<string, number>; after: Record<string, number> };
  failures: string[];
}

/**
 * Named per process: the orphan check counts drone titles machine-wide, and another soak
 * running at the same time (a second checkout's suite) must not count as our orphans.
 */
const SERVICE = `soak.echo${process.pid}`;

const APP = `
export default {
  methods: [{ name: "work", argc: 1, handler: (_ctx, i) => [i, process.pid] }],
};
`;

export const DEFAULT_SOAK: SoakOptions = {
  requests: 100_000,
  concurrency: 16,
  maxRequests: 50,
  minChildren: 4,
  maxChildren: 8,
  warmup: 1000,
  deadlineMs: 30 * 60_000,
};

function droneTitleCount(): number {
  const out = Bun.spawnSync(["ps", "-eo", "stat=,args="]).stdout.toString();
  const title = `OpenSRF Drone [${SERVICE}]`;
  return out.split("\n").filter((l) => /^\s*[^Z\s]\S*\s+/.test(l) && l.includes(title)).length;
}

function read(stack: FaultStack): Reading {
  const listener = stack.listenerPid(SERVICE);
  return {
    listenerFds: fdCount(listener),
    listenerRssKb: rssKb(listener),
    routerFds: fdCount(stack.router.pid),
    routerRssKb: rssKb(stack.router.pid),
    drones: childPids(listener).length,
    droneTitles: droneTitleCount(),
  };
}

/** Listener descriptors not held for a drone (2 per drone: IPC socket, process handle). */
export function ownFds(r: Reading): number {
  return r.listenerFds - 2 * r.drones;
}

export function describeReading(r: Reading): string {
  return (
    `listener fds ${r.listenerFds} (${ownFds(r)} + 2 per drone), RSS ${(r.listenerRssKb / 1024).toFixed(1)} MB; router fds ${r.routerFds}, ` +
    `RSS ${(r.routerRssKb / 1024).toFixed(1)} MB; drones ${r.drones} (titled processes ${r.droneTitles})`
  );
}

/** Runs one soak; the stack is started and stopped here. */
export async function runSoak(o: SoakOptions): Promise<SoakReport> {
  const stack = await FaultStack.start({
    services: [
      {
        name: SERVICE,
        app: APP,
        unix: {
          min_children: o.minChildren,
          max_children: o.maxChildren,
          max_requests: o.maxRequests,
          max_requests_jitter: 0,
          max_backlog_queue: 10_000,
        },
      },
    ],
    // Warnings only, to a file: one activity line per request would dominate the run.
    log: "file",
    loglevel: 2,
    clientTimeout: 30,
  });
  try {
    const call = (i: number) => stack.client.request(SERVICE, "work", [i]).first();
    const check = (i: number, v: unknown) => Array.isArray(v) && v[0] === i;
    await runLoad({ total: o.warmup, concurrency: o.concurrency, run: call, check });
    await settle(stack, o);
    const before = read(stack);
    const kindsBefore = fdKinds(stack.listenerPid(SERVICE));
    o.progress?.(`before: ${describeReading(before)}`);

    const load = await runLoad({
      total: o.requests,
      concurrency: o.concurrency,
      deadlineMs: o.deadlineMs,
      run: (i) => call(o.warmup + i),
      check: (i, v) => check(o.warmup + i, v),
      progressEvery: 10_000,
      onProgress: (r) => o.progress?.(`${describeLoad(r)}; ${describeReading(read(stack))}`),
    });
    await settle(stack, o);
    const after = read(stack);
    const kindsAfter = fdKinds(stack.listenerPid(SERVICE));

    const failures: string[] = [];
    if (load.lost > 0) failures.push(`${load.lost} requests lost`);
    if (load.wrong > 0) failures.push(`${load.wrong} wrong answers`);
    if (load.answered !== o.requests) failures.push(`${load.answered} of ${o.requests} answered`);
    // Each live drone holds 2 of the listener's descriptors (its IPC socket and a process
    // handle); the pool may hold a different number of drones before and after.
    if (ownFds(after) > ownFds(before) + 2) {
      failures.push(
        `listener fds grew ${before.listenerFds} → ${after.listenerFds} (${ownFds(before)} → ${ownFds(after)} not counting drones)`,
      );
    }
    if (after.routerFds > before.routerFds + 2)
      failures.push(`router fds grew ${before.routerFds} → ${after.routerFds}`);
    if (after.drones < o.minChildren || after.drones > o.maxChildren)
      failures.push(`${after.drones} drones, outside ${o.minChildren}..${o.maxChildren}`);
    if (after.droneTitles !== after.drones)
      failures.push(`${after.droneTitles} drone processes but ${after.drones} children of the listener (orphans?)`);
    // Memory: allow the runtime's heap to settle at a higher plateau, not to grow with the run.
    if (after.listenerRssKb > before.listenerRssKb + 48 * 1024) {
      failures.push(
        `listener RSS grew ${(before.listenerRssKb / 1024).toFixed(1)} → ${(after.listenerRssKb / 1024).toFixed(1)} MB`,
      );
    }
    if (after.routerRssKb > before.routerRssKb + 48 * 1024) {
      failures.push(
        `router RSS grew ${(before.routerRssKb / 1024).toFixed(1)} → ${(after.routerRssKb / 1024).toFixed(1)} MB`,
      );
    }
    const errors = stack.serve(SERVICE).output + safeRead(stack.logFile(SERVICE));
    const died = (errors.match(/ died \(| exited unexpectedly|exit during start-up/g) ?? []).length;
    if (died > 0) failures.push(`${died} drone deaths or start-up failures logged`);
    return {
      load,
      before,
      after,
      dronesStarted: Math.ceil((o.warmup + o.requests) / o.maxRequests),
      listenerFdKinds: { before: kindsBefore, after: kindsAfter },
      failures,
    };
  } finally {
    await stack.stop();
  }
}

/** Waits for the pool to be idle and back within its bounds, then a moment for GC and reaping. */
async function settle(stack: FaultStack, o: SoakOptions): Promise<void> {
  await waitUntil(
    "pool within bounds",
    () => {
      const n = stack.dronePids(SERVICE).length;
      return n >= o.minChildren && n <= o.maxChildren;
    },
    20_000,
  );
  await Bun.sleep(2000);
}

function safeRead(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}
