/**
 * The soak (devkit/soak.ts; `npm run soak` runs 100,000 requests) in a short version for CI:
 * 3,000 requests with max_requests 50, so some 70 drones are started and retired. Nothing
 * may be lost, and the listener's descriptors, processes and memory must not grow.
 */
import { describe, expect, test } from "bun:test";
import { describeLoad } from "../../devkit/load.ts";
import { DEFAULT_SOAK, describeReading, ownFds, runSoak } from "../../devkit/soak.ts";

describe("soak (short)", () => {
  test("3,000 requests, max_requests 50: nothing lost, no fd, process or memory growth", async () => {
    const r = await runSoak({ ...DEFAULT_SOAK, requests: 3000, warmup: 500, deadlineMs: 180_000 });
    console.log(`fault-soak: ${describeLoad(r.load)}; ~${r.dronesStarted} drones started`);
    console.log(`fault-soak: before: ${describeReading(r.before)}`);
    console.log(`fault-soak: after:  ${describeReading(r.after)}`);
    expect(r.failures).toEqual([]);
    expect(r.load.lost).toBe(0);
    expect(r.load.ok).toBe(3000);
    expect(ownFds(r.after)).toBeLessThanOrEqual(ownFds(r.before) + 2);
    expect(r.after.drones).toBe(r.after.droneTitles);
  }, 240_000); // bounds, not measures: ~20 s alone, several times that on a machine busy with other work
});
