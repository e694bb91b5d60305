/**
 * The Redis router's table on its own: listeners grouped by the queue they read, round robin
 * over healthy queues, probes of a stalled one at growing intervals, and what unregistering
 * the last listener of a queue does.
 */
import { describe, expect, test } from "bun:test";
import { QueueTable } from "../../src/router/queue-table.ts";

const S = "opensrf.math";
const QA = `opensrf:service:opensrf:localhost:${S}`;
const QB = `opensrf:service:opensrf2:localhost:${S}`;
const A1 = "opensrf:client:opensrf:localhost:h1:10:aaaa0001";
const A2 = "opensrf:client:opensrf:localhost:h2:11:aaaa0002";
const B1 = "opensrf:client:opensrf2:localhost:h3:12:bbbb0001";

function table(): QueueTable {
  const t = new QueueTable();
  expect(t.register(S, A1, QA).result).toBe("new-class");
  expect(t.register(S, A2, QA).result).toBe("new-instance");
  expect(t.register(S, B1, QB).result).toBe("new-queue");
  expect(t.register(S, B1, QB).result).toBe("already-registered");
  return t;
}

const picks = (t: QueueTable, n: number, now = 0) => Array.from({ length: n }, () => t.pick(S, now, 1000, 8000)?.queue);

describe("QueueTable", () => {
  test("listeners of one account and domain share a queue; queues take turns", () => {
    const t = table();
    expect(t.targets(S).map((q) => [q.queue, [...q.instances]])).toEqual([
      [QA, [A1, A2]],
      [QB, [B1]],
    ]);
    expect(picks(t, 4)).toEqual([QA, QB, QA, QB]);
    expect(t.pick("no.such", 0, 1000, 8000)).toBeUndefined();
  });

  test("a stalled queue gets no traffic but a probe when due, at doubling intervals up to the cap", () => {
    const t = table();
    const b = t.targets(S)[1]!;
    b.stalled = true;
    b.probeAt = 500;
    expect(picks(t, 3, 0)).toEqual([QA, QA, QA]);
    // Due at 500: one probe, then the next not before 500 + 1000.
    expect(picks(t, 3, 500)).toEqual([QB, QA, QA]);
    expect(b.probeAt).toBe(1500);
    expect(picks(t, 1, 1500)).toEqual([QB]);
    expect(b.probeAt).toBe(3500);
    for (const now of [3500, 7500]) t.pick(S, now, 1000, 8000);
    expect(b.probeBackoffMs).toBe(8000);
  });

  test("with every queue stalled, they still take turns (a listener may come back)", () => {
    const t = table();
    for (const q of t.targets(S)) q.stalled = true;
    expect(picks(t, 4)).toEqual([QA, QB, QA, QB]);
  });

  test("unregistering: a queue goes with its last listener, the class with its last queue", () => {
    const t = table();
    expect(t.unregister(S, A1)?.queueGone).toBe(false);
    expect(t.unregister(S, A2)?.queueGone).toBe(true);
    expect(t.targets(S).map((q) => q.queue)).toEqual([QB]);
    expect(t.unregister(S, A2)).toBeUndefined();
    expect(t.unregister(S, B1)?.queueGone).toBe(true);
    expect(t.classNames()).toEqual([]);
  });

  test("stats count forwards per queue", () => {
    const t = table();
    for (const q of picks(t, 3)) for (const target of t.targets(S)) if (target.queue === q) target.count++;
    expect(t.classStats(S)).toEqual({ [QA]: 2, [QB]: 1 });
    expect(t.classTotal(S)).toBe(3);
  });
});
