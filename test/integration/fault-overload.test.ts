/**
 * Overload: more CONNECT sessions and more concurrent requests than max_children (3) plus
 * max_backlog_queue (5) can hold. What does not fit gets an explicit 503 at once — never
 * silence —, the listener's memory stays bounded, and the service serves normally as soon
 * as the load drops.
 */
import { describe, expect, test } from "bun:test";
import { type FaultStack, WORK_APP } from "../../devkit/fault-stack.ts";
import { describeLoad, errorKind, fdCount, isAlive, rssKb, runLoad, waitUntil } from "../../devkit/load.ts";
import { RequestError } from "../../src/client/errors.ts";
import { Texts } from "../../src/protocol/status.ts";
import { useFaultStack } from "../harness/fault-suite.ts";

const SERVICE = "fault.overload";
const MAX_CHILDREN = 3;
const BACKLOG = 5;

let stack: FaultStack;

useFaultStack(
  {
    services: [
      {
        name: SERVICE,
        app: WORK_APP,
        keepalive: 3,
        unix: {
          min_children: 1,
          max_children: MAX_CHILDREN,
          max_backlog_queue: BACKLOG,
          max_requests: 1_000_000,
          max_requests_jitter: 0,
        },
      },
    ],
    clientTimeout: 20,
  },
  (s) => {
    stack = s;
  },
);

async function settle<T>(p: Promise<T>): Promise<{ ok: T } | { kind: string; text: string }> {
  try {
    return { ok: await p };
  } catch (e) {
    return { kind: errorKind(e) ?? "lost", text: e instanceof RequestError ? e.statusText : (e as Error).message };
  }
}

describe("overload", () => {
  test("20 CONNECTs at once: max_children sessions open, backlog ones wait their turn, the rest get 503 at once", async () => {
    const sessions = Array.from({ length: 20 }, () => stack.client.session(SERVICE));
    // CONNECTs answered so far (a session or a refusal); the backlogged ones stay pending until
    // a session ends. Sessions are held until everything else is answered, so no drone frees
    // up while CONNECTs are still on their way, however slowly the bus delivers them.
    let answered = 0;
    const outcomes = await Promise.all(
      sessions.map(async (s, i) => {
        const r = await settle(s.connect());
        answered++;
        if ("ok" in r) {
          expect((await s.request("work", [i, 0]).first()) as number[]).toEqual([i, expect.any(Number)]);
          await waitUntil("every CONNECT but the backlogged ones answered", () => answered >= 20 - BACKLOG, 30_000);
          s.disconnect();
        }
        return r;
      }),
    );
    const connected = outcomes.filter((o) => "ok" in o).length;
    const refused = outcomes.filter((o) => !("ok" in o));
    console.log(
      `fault-overload (sessions): 20 CONNECTs → ${connected} sessions served, ${refused.length} refused with 503`,
    );
    expect(connected).toBe(MAX_CHILDREN + BACKLOG);
    expect(refused).toHaveLength(20 - MAX_CHILDREN - BACKLOG);
    // Refused with a 503, not left to the client timeout (that would be kind "lost").
    for (const r of refused) expect(r).toEqual({ kind: "status 503", text: Texts.backlogFull });
  }, 80_000);

  test("a flood of 3,000 requests, 64 at a time: every one answered (result or 503), bounded memory, recovery", async () => {
    const listener = stack.listenerPid(SERVICE);
    // Warm up, then measure the listener at rest.
    for (let i = 0; i < 20; i++) await stack.client.request(SERVICE, "work", [i, 0]).first();
    await Bun.sleep(500);
    const rssBefore = rssKb(listener);
    const fdBefore = fdCount(listener);

    let peakRss = rssBefore;
    let sampling = true;
    const sampler = (async () => {
      for (let i = 0; sampling && i < 2000; i++) {
        peakRss = Math.max(peakRss, rssKb(listener));
        await Bun.sleep(100);
      }
    })();
    const r = await runLoad({
      total: 3000,
      concurrency: 64,
      deadlineMs: 60_000,
      run: (i) => stack.client.request(SERVICE, "work", [i, 20]).first(),
      check: (i, v) => Array.isArray(v) && v[0] === i,
    });
    sampling = false;
    await sampler;
    const overloadWarnings = stack.serve(SERVICE).output.split("backlog queue is full").length - 1;

    // Load dropped: normal service at once.
    const t = performance.now();
    const calm = await runLoad({
      total: 100,
      concurrency: 2,
      run: (i) => stack.client.request(SERVICE, "work", [i, 0]).first(),
      check: (i, v) => Array.isArray(v) && v[0] === i,
    });
    const recoverySeconds = (performance.now() - t) / 1000;
    await Bun.sleep(1000);
    const rssAfter = rssKb(listener);
    const fdAfter = fdCount(listener);
    console.log(
      `fault-overload (flood): ${describeLoad(r)}; listener RSS ${Math.round(rssBefore / 1024)} MB before, ` +
        `peak ${Math.round(peakRss / 1024)} MB, ${Math.round(rssAfter / 1024)} MB after; fds ${fdBefore} → ${fdAfter}; ` +
        `${overloadWarnings} overload warning lines; then ${describeLoad(calm)} (${recoverySeconds.toFixed(1)} s)`,
    );
    if (r.lost || r.wrong) console.log(JSON.stringify(r.samples, null, 1));

    expect(r.sent).toBe(3000);
    expect(r.lost).toBe(0);
    expect(r.wrong).toBe(0);
    expect(r.answered).toBe(3000);
    // The flood overflowed the backlog (64 in flight, 8 places) and the rest were served;
    // how many of each depends on the machine's speed. No answer was the client timeout.
    expect(Object.keys(r.errors)).toEqual(["status 503"]);
    expect(r.errors["status 503"]!).toBeGreaterThan(0);
    expect(r.ok).toBeGreaterThan(0);
    expect(r.samples["status 503"]![0]).toContain(Texts.backlogFull);
    // Bounded: the backlog holds at most 5 messages, so the listener cannot grow with the flood.
    expect(peakRss - rssBefore).toBeLessThan(64 * 1024);
    expect(rssAfter - rssBefore).toBeLessThan(32 * 1024);
    expect(fdAfter).toBeLessThanOrEqual(fdBefore + 2);
    // The warning is rate-limited (one a second at most), not one line per refusal.
    expect(overloadWarnings).toBeLessThan(r.elapsedMs / 1000 + 2);
    // Recovery.
    expect(calm.ok).toBe(100);
    expect(isAlive(listener)).toBe(true);
    await waitUntil("pool within bounds", () => {
      const n = stack.dronePids(SERVICE).length;
      return n >= 1 && n <= MAX_CHILDREN;
    });
  }, 80_000);
});
