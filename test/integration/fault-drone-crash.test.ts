/**
 * Fault: drones killed with SIGKILL, repeatedly and at random, while a bounded load runs
 * (2,000 requests, 16 in flight). Every request must get an answer — its result, or an
 * error status for the ones whose drone died under them — and none may be lost (no client
 * timeout). Afterwards the pool is back within min_children..max_children and serves.
 * The same on both buses: XMPP (our router, ejabberd-like server) and Redis (our router,
 * a private redis-server): the listener answers for a killed drone the same way on either.
 */
import { describe, expect, test } from "bun:test";
import { type FaultStack, WORK_APP } from "../../devkit/fault-stack.ts";
import { describeLoad, errorCount, isAlive, runLoad, startKiller, waitUntil } from "../../devkit/load.ts";
import { useFaultStack } from "../harness/fault-suite.ts";

const SERVICE = "fault.crash";
const MIN = 3;
const MAX = 6;

for (const bus of ["xmpp", "redis"] as const) describe(`on ${bus}`, () => crashSuite(bus));

function crashSuite(bus: "xmpp" | "redis"): void {
  let stack: FaultStack;

  useFaultStack(
    {
      bus,
      services: [
        {
          name: SERVICE,
          app: WORK_APP,
          unix: {
            min_children: MIN,
            max_children: MAX,
            max_backlog_queue: 5000,
            max_requests: 100000,
            max_requests_jitter: 0,
            // Respawn at once. On a loaded machine a drone's start-up (spawn, bus login) takes
            // long enough that many of the kills land before it is ready; those count as
            // start-up failures, and their backoff (a separate rule, tested with a service that
            // really fails at start-up) would hold the backlog past the client timeout.
            crash_backoff_max: 0,
          },
        },
      ],
      clientTimeout: 20,
    },
    (s) => {
      stack = s;
    },
  );

  describe("drone crashes under load", () => {
    test("kill -9 of random drones during 2,000 requests: every request answered, none lost, pool back within bounds", async () => {
      const listener = stack.listenerPid(SERVICE);
      // Bounded: at most 40 kills, one every 150 ms, only while the load runs.
      const killer = startKiller({ pids: () => stack.dronePids(SERVICE), max: 40 });

      // At least 2,000 requests, and on until 10 drones were killed under them: how many kills
      // fit into 2,000 requests depends on the machine's speed, which no test may assume.
      const r = await runLoad({
        total: 20_000,
        concurrency: 16,
        deadlineMs: 60_000,
        stop: (sent) => sent >= 2000 && killer.killed() >= 10,
        run: (i) => stack.client.request(SERVICE, "work", [i, i % 7]).first(),
        check: (i, v) => Array.isArray(v) && v[0] === i,
      });
      const kills = await killer.stop();
      console.log(`fault-drone-crash: ${describeLoad(r)}; ${kills.length} drones killed`);
      if (r.lost || r.wrong) console.log(JSON.stringify(r.samples, null, 1));

      expect(kills.length).toBeGreaterThanOrEqual(10);
      expect(r.sent).toBeGreaterThanOrEqual(2000);
      expect(r.lost).toBe(0);
      expect(r.wrong).toBe(0);
      expect(r.answered).toBe(r.sent);
      // Errors are the drones' deaths, each reported as such (500), and nothing else.
      expect(Object.keys(r.errors).filter((k) => k !== "status 500")).toEqual([]);
      expect(errorCount(r)).toBeLessThanOrEqual(kills.length);
      expect(r.ok).toBeGreaterThanOrEqual(r.sent - kills.length);

      // The pool returns to its bounds and serves normally.
      expect(isAlive(listener)).toBe(true);
      await waitUntil(
        `${MIN}..${MAX} drones`,
        () => {
          const n = stack.dronePids(SERVICE).length;
          return n >= MIN && n <= MAX;
        },
        15_000,
      );
      const after = await Promise.all(
        Array.from({ length: 10 }, (_, i) => stack.client.request(SERVICE, "work", [i, 0]).first()),
      );
      expect(after.map((v) => (v as number[])[0])).toEqual([...Array(10).keys()]);
      await Bun.sleep(1500);
      const n = stack.dronePids(SERVICE).length;
      expect(n).toBeGreaterThanOrEqual(MIN);
      expect(n).toBeLessThanOrEqual(MAX);
      expect(stack.serve(SERVICE).output).not.toMatch(/TypeError|RangeError|Unhandled|uncaught/i);
    }, 80_000);
  });
}
