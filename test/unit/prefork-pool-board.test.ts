/**
 * The pool with drones on the free-drone board (board.ts): a drone finishing a message
 * writes its counter and sends nothing unless the pool has raised the "wanted" flag. No
 * message may wait forever, none may be answered twice, and a drone that dies before
 * finishing still has its caller answered.
 */
import { describe, expect, test } from "bun:test";
import { RECHECK_MS } from "../../src/prefork/pool.ts";
import type { PoolLimits } from "../../src/prefork/types.ts";
import { fakePool, stanza } from "../harness/prefork-fakes.ts";

const LIMITS: PoolLimits = {
  minChildren: 1,
  maxChildren: 1,
  maxBacklogQueue: 5,
  minSpareChildren: 0,
  maxSpareChildren: 0,
  spareGrace: 10,
  requestTimeout: 0,
  crashBackoffMax: 8,
};

/** A started pool on boards, every drone ready. */
function setup(limits: Partial<PoolLimits> = {}) {
  const fake = fakePool({ ...LIMITS, ...limits }, { boards: true });
  fake.pool.start();
  for (const d of fake.spawner.drones) d.ready();
  return fake;
}

const threadsFailed = (f: ReturnType<typeof setup>) =>
  f.failures.map((x) => (x.target.kind === "stanza" ? x.target.stanza.thread : x.target.caller.thread));

describe("Pool on the free-drone board", () => {
  test("a drone finished on the board gets the next message without any IPC from it", () => {
    const { pool, spawner } = setup();
    const d = spawner.drones[0]!;
    expect(pool.dispatch(stanza("a"))).toBe("dispatched");
    d.finishOnBoard();
    expect(pool.dispatch(stanza("b"))).toBe("dispatched");
    expect(d.requests).toEqual(["a", "b"]);
    // Nothing waited for a drone: the flag never went up.
    expect(spawner.wanted).toBe(false);
  });

  test("the counts read the board: a drone finished there is idle", () => {
    const { pool, spawner } = setup();
    pool.dispatch(stanza("a"));
    expect(pool.stats()).toMatchObject({ idle: 0, active: 1 });
    spawner.drones[0]!.finishOnBoard();
    expect(pool.stats()).toMatchObject({ idle: 1, active: 0 });
  });

  test("a backlog raises the flag; it comes down once the backlog is served", () => {
    const { pool, spawner } = setup();
    const d = spawner.drones[0]!;
    pool.dispatch(stanza("a"));
    expect(pool.dispatch(stanza("b"))).toBe("queued");
    expect(spawner.wanted).toBe(true);
    // With the flag up the drone says `available` as well as writing the board.
    d.finishOnBoard();
    d.available(1);
    expect(d.requests).toEqual(["a", "b"]);
    expect(spawner.wanted).toBe(false);
  });

  test("race: the drone finished just before the flag went up (saw it down, sent nothing): served at once", () => {
    const { pool, spawner, clock } = setup();
    const d = spawner.drones[0]!;
    pool.dispatch(stanza("a"));
    // The drone's store lands after the pool's first look at the board, before it raises the flag.
    spawner.onWant = (on) => {
      if (on) d.finishOnBoard();
    };
    pool.dispatch(stanza("b"));
    expect(d.requests).toEqual(["a", "b"]);
    expect(pool.stats().backlog).toBe(0);
    expect(clock.now()).toBe(0);
  });

  test("a lost wake-up (flag up, drone finished, no `available`) delays the backlog by RECHECK_MS, never longer", () => {
    const { pool, spawner, clock } = setup();
    const d = spawner.drones[0]!;
    pool.dispatch(stanza("a"));
    pool.dispatch(stanza("b"));
    pool.dispatch(stanza("c"));
    d.finishOnBoard();
    expect(d.requests).toEqual(["a"]);
    clock.advance(RECHECK_MS);
    expect(d.requests).toEqual(["a", "b"]);
    d.finishOnBoard();
    clock.advance(RECHECK_MS);
    expect(d.requests).toEqual(["a", "b", "c"]);
    expect(spawner.wanted).toBe(false);
    // No backlog, flag down: no timer left beyond the pool's tick.
    const pending = clock.pending;
    clock.advance(RECHECK_MS * 5);
    expect(clock.pending).toBe(pending);
  });

  test("an `available` that arrives after the board told, and the next message was handed, changes nothing", () => {
    const fake = setup();
    const { pool, spawner } = fake;
    const d = spawner.drones[0]!;
    pool.dispatch(stanza("a"));
    pool.dispatch(stanza("b")); // queued: flag up
    d.finishOnBoard(); // the board is read before the drone's `available` arrives
    pool.dispatch(stanza("c"));
    expect(d.requests).toEqual(["a", "b"]);
    d.available(1); // about "a"
    expect(pool.stats()).toMatchObject({ active: 1, backlog: 1 });
    expect(d.requests).toEqual(["a", "b"]);
    // It dies running "b": b's caller is answered, a's is not.
    d.exit(null, "SIGKILL");
    expect(threadsFailed(fake)).toEqual(["b"]);
  });

  test("a `busy` or `waiting` about a message the board has shown finished does not change whom to answer", () => {
    const fake = setup();
    const { pool, spawner } = fake;
    const d = spawner.drones[0]!;
    pool.dispatch(stanza("a"));
    d.finishOnBoard();
    pool.dispatch(stanza("b"));
    const callerA = { to: "opensrf@localhost/client", thread: "a", xid: "xid-a", threadTraces: [1] };
    d.say({ type: "busy", method: "m", since: 0, caller: callerA, unit: 1 });
    d.say({ type: "waiting", thread: "a", unit: 1 });
    d.exit(null, "SIGKILL");
    expect(threadsFailed(fake)).toEqual(["b"]);
  });

  test("a drone that dies after finishing on the board gets its caller no error; one that dies before does", () => {
    const fake = setup({ minChildren: 2, maxChildren: 2 });
    const { pool, spawner } = fake;
    for (const d of spawner.drones) d.ready();
    pool.dispatch(stanza("done"));
    pool.dispatch(stanza("not-done"));
    const done = spawner.drones.find((d) => d.requests.includes("done"))!;
    const notDone = spawner.drones.find((d) => d.requests.includes("not-done"))!;
    done.finishOnBoard();
    done.exit(null, "SIGKILL");
    notDone.exit(null, "SIGKILL");
    expect(threadsFailed(fake)).toEqual(["not-done"]);
  });

  test("request_timeout does not kill a drone that finished on the board", () => {
    const fake = setup({ requestTimeout: 2 });
    const { pool, spawner, clock } = fake;
    const d = spawner.drones[0]!;
    pool.dispatch(stanza("a"));
    d.finishOnBoard();
    clock.advance(2500);
    expect(d.kills).toEqual([]);
    expect(fake.failures).toEqual([]);
    pool.dispatch(stanza("b"));
    clock.advance(2500);
    expect(d.kills).toEqual(["SIGKILL"]);
    expect(threadsFailed(fake)).toEqual(["b"]);
  });

  test("`exiting` from a drone that was handed a message it has not run: that caller is answered at its exit", () => {
    const fake = setup();
    const { pool, spawner } = fake;
    const d = spawner.drones[0]!;
    pool.dispatch(stanza("a"));
    d.finishOnBoard();
    pool.dispatch(stanza("b"));
    // Stopped (SIGTERM) after "a", before "b" reached it.
    d.say({ type: "exiting", reason: "shutdown", served: 1 });
    d.exit(0);
    expect(threadsFailed(fake)).toEqual(["b"]);
  });

  test("a drain raises the flag and ends when the board shows the work finished", async () => {
    const { pool, spawner, clock } = setup();
    const d = spawner.drones[0]!;
    pool.dispatch(stanza("a"));
    let finished: boolean | undefined;
    void pool.drain(60_000).then((f) => {
      finished = f;
    });
    expect(spawner.wanted).toBe(true);
    d.finishOnBoard();
    clock.advance(RECHECK_MS);
    await Promise.resolve();
    expect(finished).toBe(true);
  });

  test("a rolled drone busy at the reload keeps the flag up until it finishes, then is retired", () => {
    const { pool, spawner } = setup({ minChildren: 1, maxChildren: 2 });
    const d = spawner.drones[0]!;
    pool.dispatch(stanza("a"));
    pool.roll();
    expect(spawner.wanted).toBe(true);
    d.finishOnBoard();
    d.available(1);
    expect(d.sent.at(-1)).toEqual({ type: "shutdown", graceful: true, reason: "reload" });
    expect(spawner.wanted).toBe(false);
  });
});
