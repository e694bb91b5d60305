/**
 * The pool's spare bounds and replacements on the fake clock: bursty workloads cannot make
 * it thrash, surplus drones leave slowly and only when a load has not needed them for the
 * grace period, spares start on a doubling ramp, and neither a waiting request, nor
 * min_children, nor a drone leaving after max_requests waits for any of that.
 */
import { describe, expect, test } from "bun:test";
import type { PoolLimits } from "../../src/prefork/types.ts";
import { type FakeDrone, fakePool, stanza } from "../harness/prefork-fakes.ts";

/** The stock example settings of opensrf.xml (opensrf.math), and the default grace. */
const STOCK: PoolLimits = {
  minChildren: 5,
  maxChildren: 15,
  minSpareChildren: 2,
  maxSpareChildren: 5,
  spareGrace: 10,
  maxBacklogQueue: 1000,
  requestTimeout: 0,
  crashBackoffMax: 60,
};

interface SimOptions {
  /** ms from spawn to `ready` (the drone's XMPP login). */
  readyMs?: number;
  /** ms a request takes. */
  serviceMs?: number;
  /** Requests after which a drone exits (max_requests). */
  maxRequests?: number;
}

/**
 * A pool whose fake drones behave like real ones on the fake clock: they log in after
 * `readyMs`, serve each request in `serviceMs` (queued until logged in), exit after
 * `maxRequests`, and exit soon after being told to stop. Records when each drone was last
 * busy and when the pool retired which drone for what.
 */
function simulate(limits: Partial<PoolLimits>, o: SimOptions = {}) {
  const { readyMs = 50, serviceMs = 100, maxRequests = Infinity } = o;
  const env = fakePool({ ...STOCK, ...limits });
  const { clock, spawner } = env;
  const lastBusy = new Map<FakeDrone, number>();
  const retirements: Array<{ at: number; drone: FakeDrone; reason: string; idleFor: number }> = [];
  let exitsForMaxRequests = 0;
  let requests = 0;
  spawner.onSpawn = (d) => {
    const readyAt = clock.now() + readyMs;
    let served = 0;
    lastBusy.set(d, clock.now());
    clock.setTimeout(() => !d.exited && d.ready(), readyMs);
    d.onSent = (msg) => {
      if (msg.type === "request") {
        lastBusy.set(d, clock.now());
        const wait = Math.max(readyAt, clock.now()) - clock.now() + serviceMs;
        clock.setTimeout(() => {
          if (d.exited) return;
          served++;
          lastBusy.set(d, clock.now());
          if (served >= maxRequests) {
            exitsForMaxRequests++;
            d.say({ type: "exiting", reason: "max_requests", served });
            clock.setTimeout(() => d.exit(0), 5);
          } else d.available(served);
        }, wait);
      } else if (msg.type === "shutdown") {
        retirements.push({
          at: clock.now(),
          drone: d,
          reason: msg.reason,
          idleFor: clock.now() - (lastBusy.get(d) ?? 0),
        });
        clock.setTimeout(() => d.exit(0), 5);
      }
    };
  };
  /** Dispatches `size` requests every `periodMs`, from `fromMs` until `untilMs`. */
  function bursts(size: number, periodMs: number, untilMs: number, fromMs = clock.now()): void {
    for (let t = fromMs; t < untilMs; t += periodMs) {
      clock.setTimeout(() => {
        for (let i = 0; i < size; i++) env.pool.dispatch(stanza(`r${requests++}`));
      }, t - clock.now());
    }
  }
  return {
    ...env,
    bursts,
    retirements,
    get exitsForMaxRequests() {
      return exitsForMaxRequests;
    },
    get requests() {
      return requests;
    },
  };
}

/** Spawns per second of fake time since the pool started. */
function perSecond(times: number[]): number[] {
  const out: number[] = [];
  for (const t of times) out[Math.floor(t / 1000)] = (out[Math.floor(t / 1000)] ?? 0) + 1;
  return Array.from(out, (n) => n ?? 0);
}

/**
 * The rule the pool had before (and the cause of the thrash): both spare bounds enforced
 * on every state change, immediately. Same workload model as {@link simulate} with drones
 * ready at once; returns the drones it started.
 */
function oldRuleSpawns(l: PoolLimits, burst: number, periodMs: number, serviceMs: number, untilMs: number): number {
  let idle = 0;
  let busy = 0;
  let spawns = 0;
  const spawn = () => {
    spawns++;
    idle++;
  };
  const maintain = () => {
    while (idle + busy < l.minChildren) spawn();
    while (idle < l.minSpareChildren && idle + busy < l.maxChildren) spawn();
    while (idle > l.maxSpareChildren && idle + busy > l.minChildren) idle--;
  };
  maintain();
  for (let t = 0; t < untilMs; t += periodMs) {
    for (let i = 0; i < burst; i++) {
      if (idle === 0) spawn();
      idle--;
      busy++;
      maintain();
    }
    if (serviceMs >= periodMs) throw new Error("the model needs each burst done before the next");
    for (let i = 0; i < burst; i++) {
      busy--;
      idle++;
      maintain();
    }
  }
  return spawns;
}

describe("Pool: bursts cannot make it thrash", () => {
  // Bursts of 10 requests of 100 ms every 200 ms: busy, idle, busy, idle … for 60 s.
  const BURST = 10;
  const PERIOD = 200;
  const SERVICE = 100;
  const MINUTE = 60_000;

  test("the old rule (both bounds on every change) starts thousands of drones on this workload", () => {
    // The workload is the adversary: every burst empties the spares, every pause exceeds
    // max_spare_children. 10 - 5 + 2 = 7 drones started and retired per burst.
    const old = oldRuleSpawns(STOCK, BURST, PERIOD, SERVICE, MINUTE);
    expect(old).toBeGreaterThan(2000);
  });

  test("the pool starts only what the bursts need: burst + min_spare_children drones, once", () => {
    const sim = simulate({}, { serviceMs: SERVICE });
    sim.pool.start();
    sim.bursts(BURST, PERIOD, MINUTE, 100);
    sim.clock.advance(MINUTE);
    // N = 12: the burst's 10 drones plus min_spare_children 2 idle beside them; the 5 of
    // min_children are among them. With max_requests 1000 and 3000 requests shared by 12
    // drones, no drone reaches its quota.
    expect(sim.requests).toBe(3000);
    expect(sim.exitsForMaxRequests).toBe(0);
    expect(sim.spawner.drones.length).toBeLessThanOrEqual(BURST + STOCK.minSpareChildren);
    expect(sim.retirements).toEqual([]);
    expect(oldRuleSpawns(STOCK, BURST, PERIOD, SERVICE, MINUTE)).toBeGreaterThan(100 * sim.spawner.drones.length);
  });

  test("with max_requests 100, each drone that reaches its quota adds one drone at most, nothing else", () => {
    const sim = simulate({}, { serviceMs: SERVICE, maxRequests: 100 });
    sim.pool.start();
    sim.bursts(BURST, PERIOD, MINUTE, 100);
    sim.clock.advance(MINUTE);
    const exits = sim.exitsForMaxRequests;
    // 3000 requests over ~12 drones at 100 each: about 30 exits.
    expect(exits).toBeGreaterThanOrEqual(Math.floor(3000 / 100) - BURST - STOCK.minSpareChildren);
    expect(exits).toBeLessThanOrEqual(Math.ceil(3000 / 100));
    expect(sim.spawner.drones.length).toBeLessThanOrEqual(BURST + STOCK.minSpareChildren + exits);
    // Some are replaced by a drone started for a burst or a spare first (it pays the debt).
    expect(sim.spawner.count("replace")).toBeGreaterThan(0);
    expect(sim.spawner.count("replace")).toBeLessThanOrEqual(exits);
    expect(sim.retirements).toEqual([]);
  });

  test("a load that comes back within the grace period keeps its drones", () => {
    // 12 busy for 2 s every 8 s: idle 12 of 14 in between, more than max_spare_children,
    // but never for the 10 s grace.
    const sim = simulate({}, { serviceMs: 2000 });
    sim.pool.start();
    sim.bursts(12, 8000, MINUTE, 1000);
    sim.clock.advance(MINUTE);
    expect(sim.retirements).toEqual([]);
    expect(sim.spawner.drones.length).toBeLessThanOrEqual(12 + STOCK.minSpareChildren);
  });
});

describe("Pool: surplus idle drones", () => {
  test("retired one per second at most, only after the grace period, down to the bounds", () => {
    const sim = simulate({}, { serviceMs: 500 });
    sim.pool.start();
    sim.bursts(15, 1000, 1001, 1000); // one burst at 1 s: every drone busy until 1.5 s
    sim.clock.advance(60_000);
    expect(sim.spawner.drones.length).toBe(15);
    const spare = sim.retirements.filter((r) => r.reason === "spare");
    // 15 idle, max_spare_children 5 and min_children 5: 10 leave.
    expect(spare).toHaveLength(10);
    expect(sim.pool.stats()).toMatchObject({ total: 5, idle: 5 });
    for (const r of spare) expect(r.idleFor).toBeGreaterThanOrEqual(STOCK.spareGrace * 1000);
    expect(spare[0]!.at).toBeGreaterThanOrEqual(1500 + STOCK.spareGrace * 1000);
    expect(Math.max(...perSecond(spare.map((r) => r.at)))).toBe(1);
  });

  test("never below min_children", () => {
    const sim = simulate({ minChildren: 8 }, { serviceMs: 500 });
    sim.pool.start();
    sim.bursts(15, 1000, 1001, 1000);
    sim.clock.advance(60_000);
    expect(sim.retirements).toHaveLength(7);
    expect(sim.pool.stats()).toMatchObject({ total: 8, idle: 8 });
  });

  test("a load gone for longer than the grace loses its surplus, and gets drones back at once when it returns", () => {
    // 12 busy for 2 s every 20 s.
    const sim = simulate({}, { serviceMs: 2000 });
    sim.pool.start();
    sim.bursts(12, 20_000, 60_000, 1000);
    sim.clock.advance(60_000);
    expect(sim.retirements.length).toBeGreaterThan(0);
    for (const r of sim.retirements) expect(r.idleFor).toBeGreaterThanOrEqual(10_000);
    expect(Math.max(...perSecond(sim.retirements.map((r) => r.at)))).toBe(1);
    // Every burst was served at once: drones started on demand, nothing queued.
    expect(sim.spawner.count("demand")).toBeGreaterThan(0);
    expect(sim.pool.stats().backlog).toBe(0);
  });

  test("spare_grace 0: surplus judged on the last second alone, still one per second", () => {
    const sim = simulate({ spareGrace: 0 }, { serviceMs: 500 });
    sim.pool.start();
    sim.bursts(15, 1000, 1001, 1000);
    sim.clock.advance(3000);
    // Busy until 1.5 s: the tick at 2 s saw 0 idle then; the one at 3 s retires one.
    expect(sim.retirements.map((r) => r.at)).toEqual([3000]);
    sim.clock.advance(20_000);
    expect(sim.retirements).toHaveLength(10);
    expect(Math.max(...perSecond(sim.retirements.map((r) => r.at)))).toBe(1);
  });

  test("max_spare_children 0 never retires", () => {
    const sim = simulate({ maxSpareChildren: 0 }, { serviceMs: 500 });
    sim.pool.start();
    sim.bursts(15, 1000, 1001, 1000);
    sim.clock.advance(60_000);
    expect(sim.retirements).toEqual([]);
  });

  test("the busiest moment of the window keeps max_spare_children idle: each surplus drone counted once", () => {
    const sim = simulate({}, { serviceMs: 500 });
    sim.pool.start();
    sim.bursts(15, 1000, 1001, 1000); // 15 drones, idle from 1.5 s
    sim.bursts(8, 1000, 8501, 8500); // 8 busy at 8.5 s: 7 idle then, 2 more than max_spare_children
    sim.clock.advance(19_999);
    // While 8.5 s is within the last 10 s, only those 2 may go (and not before the
    // first burst, 1 s to 2 s, has left the window).
    expect(sim.retirements.map((r) => r.at)).toEqual([13_000, 14_000]);
    sim.clock.advance(20_000);
    expect(sim.pool.stats()).toMatchObject({ total: 5, idle: 5 });
  });

  test("the drones retired are the ones the load left alone; busy and fresh ones stay", () => {
    // A steady 3 at a time keeps using the top of the stack; the rest drain. Drones that
    // reach max_requests meanwhile are replaced, and the replacements start at the bottom
    // of the stack: still not to be retired within the grace period of their start.
    const sim = simulate({}, { serviceMs: 50, maxRequests: 120 });
    sim.pool.start();
    sim.bursts(15, 1000, 1001, 1000);
    sim.bursts(3, 100, 60_000, 2000);
    sim.clock.advance(60_000);
    const busyLately = new Set(sim.spawner.drones.filter((d) => d.requests.length > 15 && !d.exited).map((d) => d.pid));
    expect(sim.spawner.count("replace")).toBeGreaterThan(0);
    expect(sim.retirements.length).toBeGreaterThan(0);
    for (const r of sim.retirements) expect(busyLately.has(r.drone.pid)).toBe(false);
    for (const r of sim.retirements) expect(r.idleFor).toBeGreaterThanOrEqual(10_000);
    // 3 busy at a time, min_spare_children beside them … and min_children 5 hold 5 idle+busy
    // at least; max_spare_children 5 idle: 8 stay.
    expect(sim.pool.stats().total).toBe(3 + STOCK.maxSpareChildren);
  });
});

describe("Pool: starting spares", () => {
  const WIDE: Partial<PoolLimits> = { minChildren: 0, maxChildren: 256, minSpareChildren: 200, maxSpareChildren: 0 };

  test("one in the first second of a shortage, doubling each second it lasts, capped at 32", () => {
    const sim = simulate(WIDE, { readyMs: 10 });
    const starts: number[] = [];
    const onSpawn = sim.spawner.onSpawn;
    sim.spawner.onSpawn = (d) => {
      starts.push(sim.clock.now());
      onSpawn(d);
    };
    sim.pool.start();
    sim.clock.advance(20_000);
    expect(perSecond(starts)).toEqual([1, 2, 4, 8, 16, 32, 32, 32, 32, 32, 9]);
    expect(sim.spawner.count("spare")).toBe(200);
  });

  test("a new shortage starts at one again", () => {
    const sim = simulate(
      { minChildren: 0, maxChildren: 50, minSpareChildren: 4, maxSpareChildren: 0 },
      { serviceMs: 5000 },
    );
    sim.pool.start();
    sim.clock.advance(10_000); // 1 + 2 + 1: four spares
    expect(sim.spawner.count("spare")).toBe(4);
    const before = sim.spawner.count("spare");
    sim.bursts(10, 1000, 10_001, 10_000); // 4 idle taken, then short of drones and spares
    sim.clock.advance(1);
    // This second's one spare (taken by the burst at once), the rest on demand.
    expect(sim.spawner.count("spare") - before).toBe(1);
    expect(sim.spawner.count("demand")).toBe(5);
    sim.clock.advance(999);
    expect(sim.spawner.count("spare") - before).toBe(3); // then 2
    sim.clock.advance(1000);
    expect(sim.spawner.count("spare") - before).toBe(5); // then the 2 still missing (of 4 allowed)
  });

  test("a message finding no idle drone gets a new one at once, however short of spares the ramp is", () => {
    const { pool, spawner } = fakePool({ ...STOCK, minChildren: 0, maxChildren: 10, minSpareChildren: 3 });
    pool.start();
    expect(spawner.drones.map((d) => d.cause)).toEqual(["spare"]); // the ramp's one for this second
    for (const t of ["a", "b", "c", "d"]) expect(pool.dispatch(stanza(t))).toBe("dispatched");
    expect(spawner.drones.map((d) => d.cause)).toEqual(["spare", "demand", "demand", "demand"]);
    expect(spawner.drones.map((d) => d.requests)).toEqual([["a"], ["b"], ["c"], ["d"]]);
    expect(pool.stats()).toMatchObject({ active: 4, backlog: 0 });
  });

  test("min_children is a hard bound: refilled at once, not paced", () => {
    const { pool, spawner } = fakePool({ ...STOCK, minChildren: 6, maxChildren: 10 });
    pool.start();
    expect(spawner.drones.map((d) => d.cause)).toEqual(Array(6).fill("min_children"));
    for (const d of spawner.drones) d.ready();
    for (const d of spawner.drones.slice(0, 4)) d.exit(null, "SIGKILL");
    expect(spawner.live).toHaveLength(6);
    expect(spawner.count("replace")).toBe(4);
  });

  test("never above max_children", () => {
    const sim = simulate(
      { minChildren: 2, maxChildren: 6, minSpareChildren: 4, maxSpareChildren: 5 },
      { serviceMs: 5000 },
    );
    sim.pool.start();
    sim.bursts(5, 1000, 1001, 1000);
    sim.clock.advance(10_000);
    expect(sim.spawner.drones.length).toBe(6);
  });
});

describe("Pool: replacing drones that leave by themselves", () => {
  test("max_requests above min_children: replaced at once, once", () => {
    const { pool, spawner } = fakePool({ ...STOCK, minChildren: 2, minSpareChildren: 0, maxSpareChildren: 0 });
    pool.start();
    for (const t of ["a", "b", "c", "d", "e", "f"]) pool.dispatch(stanza(t));
    expect(spawner.drones).toHaveLength(6);
    const d = spawner.drones[3]!.ready();
    d.say({ type: "exiting", reason: "max_requests", served: 1000 });
    expect(spawner.drones.map((x) => x.cause).slice(6)).toEqual(["replace"]);
    d.exit(0);
    expect(spawner.drones).toHaveLength(7);
    expect(pool.stats()).toMatchObject({ total: 6, active: 5, idle: 1 });
  });

  test("max_requests at min_children: one replacement, not one for the floor and one more", () => {
    const { pool, spawner } = fakePool({ ...STOCK, minChildren: 2, maxChildren: 4, minSpareChildren: 0 });
    pool.start();
    const d = spawner.drones[0]!.ready();
    pool.dispatch(stanza("last"));
    d.say({ type: "exiting", reason: "max_requests", served: 5 });
    d.exit(0);
    expect(spawner.drones.map((x) => x.cause)).toEqual(["min_children", "min_children", "replace"]);
  });

  test("at max_children the replacement waits for the exit, then starts", () => {
    const { pool, spawner } = fakePool({ ...STOCK, minChildren: 1, maxChildren: 3, minSpareChildren: 0 });
    pool.start();
    for (const t of ["a", "b", "c"]) pool.dispatch(stanza(t));
    const d = spawner.drones[1]!.ready();
    d.say({ type: "exiting", reason: "max_requests", served: 9 });
    expect(spawner.drones).toHaveLength(3);
    d.exit(0);
    expect(spawner.drones.map((x) => x.cause)).toEqual(["min_children", "demand", "demand", "replace"]);
  });

  test("a start-up failure is left to the backoff, not replaced", () => {
    const { pool, spawner } = fakePool({ ...STOCK, minChildren: 1, maxChildren: 4, minSpareChildren: 0 });
    pool.start();
    pool.dispatch(stanza("a"));
    pool.dispatch(stanza("b"));
    spawner.drones[1]!.exit(1); // never ready: failure 1, respawn at once for min_children only
    expect(spawner.count("replace")).toBe(0);
  });
});
