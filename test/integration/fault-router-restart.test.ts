/**
 * Fault: the router restarts and forgets its table; the listener's own XMPP stream never
 * breaks, so nothing tells it. It finds out by its registration probes (every
 * `router_probe_interval`, tested against both routers in scaleout-*.test.ts), which this
 * file turns off to test the two ways that remain (src/prefork/registration.ts):
 *
 * - a long outage: its periodic registration (`register_interval`) bounces — the router's
 *   JID is gone — and it re-sends on a short backoff until one goes through;
 * - a quick restart (between two periodic registrations, nothing bounces): the next
 *   periodic registration reaches the new router.
 *
 * A load runs throughout: while the router is away callers get an immediate error (their
 * message to the router's class JID bounces), never silence. Recovery — new router online to
 * the first request served — is measured and printed for both, not asserted: on a loaded
 * machine it is whatever the scheduler makes it (a generous deadline still bounds it).
 */
import { describe, expect, test } from "bun:test";
import type { FaultStack } from "../../devkit/fault-stack.ts";
import { describeLoad, isAlive, type LoadResult, runLoad, waitUntil } from "../../devkit/load.ts";
import { DeliveryError } from "../../src/client/errors.ts";
import { served, useFaultStack } from "../harness/fault-suite.ts";

const SERVICE = "fault.router";
const INTERVAL = 3;

const APP = `
export default {
  methods: [{ name: "work", argc: 1, handler: (_ctx, i) => [i, process.pid] }],
};
`;

let stack: FaultStack;

useFaultStack(
  {
    services: [
      {
        name: SERVICE,
        app: APP,
        unix: {
          min_children: 2,
          max_children: 3,
          max_requests: 100000,
          register_interval: INTERVAL,
          router_probe_interval: 0,
        },
      },
    ],
    clientTimeout: 10,
  },
  (s) => {
    stack = s;
  },
);

/** Polls until a request is served; seconds since `from`. */
async function recovery(from: number, limitMs = 20_000): Promise<number> {
  for (let i = 0; !(await served(stack.client, SERVICE, [2_000_000 + i])); i++) {
    if (performance.now() - from > limitMs) {
      throw new Error(
        `not served within ${limitMs} ms of the router's return\n${stack.serve(SERVICE).output.slice(-3000)}`,
      );
    }
    await Bun.sleep(50);
  }
  return (performance.now() - from) / 1000;
}

/**
 * Runs `during` while 4 paced callers load the service; the load stops (also on failure)
 * once `during` settles and a second has passed.
 */
async function underLoad<T>(during: () => Promise<T>): Promise<[T, LoadResult]> {
  let done = false;
  const load = runLoad({
    total: 50_000,
    concurrency: 4,
    pauseMs: 20,
    deadlineMs: 60_000,
    stop: () => done,
    run: (i) => stack.client.request(SERVICE, "work", [i]).first(),
    check: (i, v) => Array.isArray(v) && v[0] === i,
  });
  try {
    await Bun.sleep(1000);
    const out = await during();
    await Bun.sleep(1000);
    done = true;
    return [out, await load];
  } finally {
    done = true;
    await load;
  }
}

describe("router restart", () => {
  test("long outage: the periodic registration bounces, is re-sent on a short backoff, and the service comes back", async () => {
    const listener = stack.listenerPid(SERVICE);
    const [m, r] = await underLoad(async () => {
      await stack.router.stop("SIGKILL");
      const down = performance.now();
      // Longer than register_interval: at least one registration bounces.
      await stack
        .serve(SERVICE)
        .waitFor(
          /registration with router router@localhost\/router bounced \(\w+\/[\w-]+\): the router is not online/,
          10_000,
        );
      const bouncedAfter = (performance.now() - down) / 1000;
      // Callers are answered meanwhile (their message to the class JID bounces), not left to
      // their timeout: the error is a bounce, however long the machine takes to deliver it.
      const answer = await stack.client
        .request(SERVICE, "work", [-1], { timeout: 30 })
        .first()
        .then(
          (v) => v,
          (e: unknown) => e,
        );
      expect(answer).toBeInstanceOf(DeliveryError);
      await Bun.sleep(1000);
      await stack.startRouter();
      const up = performance.now();
      const seconds = await recovery(up);
      // The listener notices the end of the outage: a re-sent registration that no longer
      // bounces, or the router forwarding to it again, whichever it sees first.
      await stack
        .serve(SERVICE)
        .waitFor(
          /registered again with router router@localhost\/router \(\d+ registration\(s\) bounced|router router@localhost\/router forwards to us again/,
          10_000,
        );
      return { outage: (up - down) / 1000, bouncedAfter, seconds };
    });
    console.log(
      `fault-router-restart (SIGKILL, ${m.outage.toFixed(1)} s outage, first bounce after ${m.bouncedAfter.toFixed(1)} s): ` +
        `${describeLoad(r)}; recovery after the router was back ${m.seconds.toFixed(2)} s`,
    );
    if (r.lost || r.wrong) console.log(JSON.stringify(r.samples, null, 1));
    expect(r.lost).toBe(0);
    expect(r.wrong).toBe(0);
    expect(r.answered).toBe(r.sent);
    expect(r.errors.delivery ?? 0).toBeGreaterThan(0); // the outage was seen, and answered
    expect(isAlive(listener)).toBe(true);
  }, 120_000);

  test("quick restart (nothing bounces): the next periodic registration reaches the new router", async () => {
    const [m, r] = await underLoad(async () => {
      await stack.router.stop("SIGTERM");
      const down = performance.now();
      await stack.startRouter();
      const up = performance.now();
      return { outage: (up - down) / 1000, seconds: await recovery(up) };
    });
    console.log(
      `fault-router-restart (SIGTERM, ${m.outage.toFixed(1)} s outage, register_interval ${INTERVAL} s): ` +
        `${describeLoad(r)}; recovery after the router was back ${m.seconds.toFixed(2)} s`,
    );
    if (r.lost || r.wrong) console.log(JSON.stringify(r.samples, null, 1));
    expect(r.lost).toBe(0);
    expect(r.wrong).toBe(0);
    expect(r.answered).toBe(r.sent);
    // Steady again.
    await waitUntil(
      "a burst served",
      async () => (await Promise.all([1, 2, 3, 4, 5].map((i) => served(stack.client, SERVICE, [i])))).every(Boolean),
      20_000,
    );
  }, 120_000);

  test("USR1 still unregisters for good: the periodic registration does not bring the service back", async () => {
    const serve = stack.serve(SERVICE);
    process.kill(serve.pid, "SIGUSR1");
    await serve.waitFor(/received SIGUSR1/, 5000);
    await waitUntil("the class to go", async () => !(await served(stack.client, SERVICE, [-2])), 5000);
    await Bun.sleep((INTERVAL + 1) * 1000);
    expect(await served(stack.client, SERVICE, [-3])).toBe(false);
    process.kill(serve.pid, "SIGUSR2");
    await waitUntil("the class to come back", () => served(stack.client, SERVICE, [-4]), 10_000);
  }, 30_000);
});
