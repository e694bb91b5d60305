/**
 * The listener ↔ drone hand-off through the free-drone board (src/prefork/board.ts): more
 * callers than drones, so the backlog fills and empties all the time and the "wanted" flag
 * goes up and down under the drones' feet; requests of mixed length (0–3 ms) and a low
 * max_requests, so drones also leave and are replaced mid-load. A request lost on the way
 * (a drone believed free while it holds one, a backlog nobody pumps) is a client timeout;
 * one handed to a leaving drone is an error status. Neither may happen, on either bus. The
 * pool's view afterwards must agree with the board: every drone idle, every request counted.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { type FaultStack, WORK_APP } from "../../devkit/fault-stack.ts";
import { describeLoad, runLoad, waitUntil } from "../../devkit/load.ts";
import { fetchFromEndpoint } from "../../src/metrics/endpoint.ts";
import type { PoolStatus } from "../../src/metrics/types.ts";
import { useFaultStack } from "../harness/fault-suite.ts";

const SERVICE = "handoff.work";
const DRONES = 3;
const TOTAL = 3000;
const CONCURRENCY = 12;
const MAX_REQUESTS = 150;

for (const bus of ["xmpp", "redis"] as const) describe(`on ${bus}`, () => handoffSuite(bus));

function handoffSuite(bus: "xmpp" | "redis"): void {
  let stack: FaultStack;

  useFaultStack(
    {
      bus,
      services: [
        {
          name: SERVICE,
          app: WORK_APP,
          unix: {
            min_children: DRONES,
            max_children: DRONES,
            max_backlog_queue: 5000,
            max_requests: MAX_REQUESTS,
            max_requests_jitter: 0.2,
          },
        },
      ],
      clientTimeout: 20,
    },
    (s) => {
      stack = s;
    },
  );

  const status = async (): Promise<PoolStatus> =>
    (await (
      await fetchFromEndpoint({ kind: "socket", path: stack.statusSocket(SERVICE) }, "/status")
    ).json()) as PoolStatus;

  test("a backlog that fills and empties, drones replaced mid-load: every request answered once, none lost", async () => {
    const listener = stack.listenerPid(SERVICE);
    // The board is in use: the listener has it mapped.
    expect(readFileSync(`/proc/${listener}/maps`, "utf8")).toContain("osrf-prefork-board-");
    const before = await status();

    const r = await runLoad({
      total: TOTAL,
      concurrency: CONCURRENCY,
      deadlineMs: 120_000,
      run: (i) => stack.client.request(SERVICE, "work", [i, i % 4]).first(),
      check: (i, v) => Array.isArray(v) && v[0] === i,
    });
    console.log(`prefork-handoff (${bus}): ${describeLoad(r)}`);
    if (r.lost || r.wrong || r.unsent) console.log(JSON.stringify(r.samples, null, 1));
    expect(r.sent).toBe(TOTAL);
    expect(r.lost).toBe(0);
    expect(r.wrong).toBe(0);
    expect(r.errors).toEqual({});
    expect(r.ok).toBe(TOTAL);

    // The load did what it is here for: drones left after max_requests and were replaced.
    const after = await status();
    expect(after.exits.max_requests - before.exits.max_requests).toBeGreaterThan(0);
    expect(after.requests - before.requests).toBe(TOTAL);
    // Nothing is left held: the pool sees every drone free (read from the board).
    await waitUntil(
      `${DRONES} idle drones`,
      async () => {
        const s = await status();
        return s.drones.idle === DRONES && s.listenQueue === 0;
      },
      15_000,
    );
    expect(stack.serve(SERVICE).output).not.toMatch(/TypeError|RangeError|Unhandled|uncaught|bad IPC message/i);
  }, 150_000);
}
