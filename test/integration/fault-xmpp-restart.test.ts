/**
 * Fault: the XMPP server restarts while a load runs. The listener, its drones, the router
 * (main and class connections) and the client all lose their streams at once; each
 * reconnects with backoff, the listener registers again, and requests succeed again.
 * Requests caught in flight are answered with an error, never left to time out.
 * The recovery time — server back to the first request served again — is measured and
 * printed, not asserted: on a loaded machine it is whatever the scheduler makes it.
 */
import { describe, expect, test } from "bun:test";
import { type FaultStack, WORK_APP } from "../../devkit/fault-stack.ts";
import { describeLoad, isAlive, runLoad, waitUntil } from "../../devkit/load.ts";
import { served, useFaultStack } from "../harness/fault-suite.ts";

const SERVICE = "fault.xmpp";

let stack: FaultStack;

useFaultStack(
  {
    services: [
      {
        name: SERVICE,
        app: WORK_APP,
        unix: { min_children: 2, max_children: 4, max_backlog_queue: 1000, max_requests: 100000 },
      },
    ],
    // "Lost" means no answer at all: a generous timeout keeps a slow machine from counting as loss.
    clientTimeout: 30,
  },
  (s) => {
    stack = s;
  },
);

describe("XMPP server restart under load", () => {
  test("everyone reconnects and re-registers; in-flight requests are answered", async () => {
    const listener = stack.listenerPid(SERVICE);
    const drones = stack.dronePids(SERVICE);
    const routerPid = stack.router.pid;
    const onlineBefore = stack.classOnlineCount(SERVICE);

    let stopLoad = false;
    // Served requests so far, counted as they come: the test waits for traffic, not for time.
    let okSoFar = 0;
    const load = runLoad({
      total: 100_000,
      concurrency: 8,
      deadlineMs: 90_000,
      pauseMs: 5,
      stop: () => stopLoad,
      run: async (i) => {
        const v = await stack.client.request(SERVICE, "work", [i, 5]).first();
        if (Array.isArray(v) && v[0] === i) okSoFar++;
        return v;
      },
      check: (i, v) => Array.isArray(v) && v[0] === i,
    });
    await waitUntil("traffic before the restart", () => okSoFar >= 100, 30_000);

    const t0 = performance.now();
    await stack.xmpp.restart();
    const serverBack = performance.now();
    // Recovery: the first request served end to end after the server is back.
    let probes = 0;
    while (!(await served(stack.client, SERVICE, [1_000_000 + probes, 0]))) {
      probes++;
      if (performance.now() - serverBack > 20_000)
        throw new Error(`no recovery within 20 s\n${stack.serve(SERVICE).output.slice(-3000)}`);
      await Bun.sleep(50);
    }
    const recovered = performance.now();
    const recoverySeconds = (recovered - serverBack) / 1000;
    const outageSeconds = (recovered - t0) / 1000;

    // Keep the load going until it has been served a while after recovery, then stop it.
    const okAtRecovery = okSoFar;
    await waitUntil("traffic after recovery", () => okSoFar >= okAtRecovery + 100, 30_000);
    stopLoad = true;
    const r = await load;
    console.log(
      `fault-xmpp-restart: ${describeLoad(r)}; server restart took ${((serverBack - t0) / 1000).toFixed(2)} s; ` +
        `recovery after the server was back ${recoverySeconds.toFixed(2)} s (whole outage ${outageSeconds.toFixed(2)} s)`,
    );
    if (r.lost || r.wrong) console.log(JSON.stringify(r.samples, null, 1));

    expect(r.lost).toBe(0);
    expect(r.wrong).toBe(0);
    expect(r.answered).toBe(r.sent);

    // Same processes throughout: nothing died, the drones reconnected rather than being replaced
    // (the pool may have grown while requests waited for the stream, within max_children).
    expect(isAlive(listener)).toBe(true);
    expect(isAlive(routerPid)).toBe(true);
    const now = stack.dronePids(SERVICE);
    for (const pid of drones) expect(now).toContain(pid);
    expect(now.length).toBeLessThanOrEqual(4);
    expect(stack.serve(SERVICE).output).not.toMatch(/died|exit during start-up/);
    await waitUntil("class connection reopened or kept", () => stack.classOnlineCount(SERVICE) >= onlineBefore);
    const out = stack.serve(SERVICE).output;
    expect(out).toMatch(/registering with the routers again/);
    // The listener and every drone logged their own reconnect (after backoff), the router too.
    expect(out).toMatch(new RegExp(`reconnected to XMPP as opensrf@localhost/${SERVICE}_listener_`));
    for (const pid of drones)
      expect(out).toMatch(
        new RegExp(`\\[INFO:${pid}:[^\\]]*\\] reconnected to XMPP as opensrf@localhost/${SERVICE}_drone_`),
      );
    expect(stack.router.output).toMatch(new RegExp(`reconnected to XMPP as router@localhost/${SERVICE}`));
    expect(stack.router.output).toMatch(/reconnected to XMPP as router@localhost\/router/);
    // Steady state again: a burst of requests all succeed.
    const after = await Promise.all(
      Array.from({ length: 20 }, (_, i) => stack.client.request(SERVICE, "work", [i, 0]).first()),
    );
    expect(after.map((v) => (v as number[])[0])).toEqual([...Array(20).keys()]);
  }, 150_000);
});
