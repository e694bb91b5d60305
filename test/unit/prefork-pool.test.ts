import { describe, expect, test } from "bun:test";
import type { ErrorTarget, PoolLimits } from "../../src/prefork/types.ts";
import { fakePool, stanza } from "../harness/prefork-fakes.ts";

const LIMITS: PoolLimits = {
  minChildren: 2,
  maxChildren: 4,
  maxBacklogQueue: 3,
  minSpareChildren: 0,
  maxSpareChildren: 0,
  spareGrace: 10,
  requestTimeout: 0,
  crashBackoffMax: 8,
};

function setup(limits: Partial<PoolLimits> = {}) {
  return fakePool({ ...LIMITS, ...limits });
}

/** A started pool, every drone ready, and one message on `thread` handed to one of them: `d`. */
function withOneRequest(thread: string, limits: Partial<PoolLimits> = {}) {
  const fake = setup(limits);
  fake.pool.start();
  for (const d of fake.spawner.drones) d.ready();
  fake.pool.dispatch(stanza(thread));
  const d = fake.spawner.drones.find((x) => x.requests.length > 0)!;
  return { ...fake, d };
}

const threadOf = (t: ErrorTarget) => (t.kind === "stanza" ? t.stanza.thread : t.caller.thread);

// ---------------------------------------------------------------------------------------------

describe("Pool: dispatch", () => {
  test("starts min_children drones", () => {
    const { pool, spawner } = setup();
    pool.start();
    expect(spawner.drones.length).toBe(2);
    expect(pool.stats()).toMatchObject({ idle: 2, active: 0, total: 2 });
  });

  test("idle drones are a LIFO stack: the most recently available drone gets the next message", () => {
    const { pool, spawner } = setup({ minChildren: 3, maxChildren: 3 });
    pool.start();
    for (const d of spawner.drones) d.ready();
    expect(pool.dispatch(stanza("a"))).toBe("dispatched");
    expect(pool.dispatch(stanza("b"))).toBe("dispatched");
    const [da, db] = ["a", "b"].map((t) => spawner.drones.find((d) => d.requests.includes(t))!);
    da!.available();
    db!.available();
    pool.dispatch(stanza("c"));
    expect(db!.requests).toEqual(["b", "c"]);
    db!.available();
    pool.dispatch(stanza("d"));
    expect(db!.requests).toEqual(["b", "c", "d"]);
    expect(da!.requests).toEqual(["a"]);
  });

  test("spawns on demand up to max_children and hands the message to the new drone at once", () => {
    const { pool, spawner } = setup({ minChildren: 1, maxChildren: 3 });
    pool.start();
    for (const t of ["a", "b", "c"]) expect(pool.dispatch(stanza(t))).toBe("dispatched");
    expect(spawner.drones.length).toBe(3);
    // None of them reported ready: the drone queues until its login is done.
    expect(spawner.drones.map((d) => d.requests)).toEqual([["a"], ["b"], ["c"]]);
    expect(pool.stats()).toMatchObject({ active: 3, idle: 0, total: 3 });
  });

  test("at max_children messages queue FIFO; a full backlog answers 503 (overload) on that message", () => {
    const { pool, spawner, failures, logger } = setup({ minChildren: 1, maxChildren: 2, maxBacklogQueue: 2 });
    pool.start();
    const results = ["a", "b", "c", "d", "e"].map((t) => pool.dispatch(stanza(t)));
    expect(results).toEqual(["dispatched", "dispatched", "queued", "queued", "rejected"]);
    expect(failures).toHaveLength(1);
    expect(failures[0]!.failure).toEqual({ kind: "overload" });
    expect(threadOf(failures[0]!.target)).toBe("e");
    expect(logger.messages().some((m) => m.includes("consider raising max_children"))).toBe(true);

    const [d1, d2] = spawner.drones;
    d2!.available();
    expect(d2!.requests).toEqual(["b", "c"]);
    // A newcomer does not overtake the queue.
    expect(pool.dispatch(stanza("f"))).toBe("queued");
    d1!.available();
    d2!.available();
    expect(d1!.requests).toEqual(["a", "d"]);
    expect(d2!.requests).toEqual(["b", "c", "f"]);
    expect(pool.stats().backlog).toBe(0);
  });

  test("max_backlog_queue 0: no queue, overload at once", () => {
    const { pool, failures } = setup({ minChildren: 1, maxChildren: 1, maxBacklogQueue: 0 });
    pool.start();
    expect(pool.dispatch(stanza("a"))).toBe("dispatched");
    expect(pool.dispatch(stanza("b"))).toBe("rejected");
    expect(failures.map((f) => f.failure.kind)).toEqual(["overload"]);
  });

  test("an idle drone whose channel is closed is killed and the next one used", () => {
    const { pool, spawner } = setup({ minChildren: 2, maxChildren: 2 });
    pool.start();
    const [d1, d2] = spawner.drones;
    d1!.ready();
    d2!.ready();
    // d1 is on top of the stack (spawned first, pushed below later ones? check by failing the top).
    const top = pool.stats().pids.at(-1);
    const bad = spawner.drones.find((d) => d.pid === top)!;
    const good = spawner.drones.find((d) => d.pid !== top)!;
    bad.sendFails = true;
    expect(pool.dispatch(stanza("a"))).toBe("dispatched");
    expect(bad.kills).toEqual(["SIGKILL"]);
    expect(good.requests).toEqual(["a"]);
  });
});

describe("Pool: seed bug (osrf_prefork.c kills cur_child when writing to a NEW child fails)", () => {
  test("kills the new drone, not another one, and re-dispatches the message", () => {
    const { pool, spawner, failures } = setup({ minChildren: 1, maxChildren: 3 });
    pool.start();
    const busy = spawner.drones[0]!.ready();
    pool.dispatch(stanza("first"));
    expect(busy.requests).toEqual(["first"]);

    // The next drone launched cannot be written to.
    spawner.onSpawn = (d) => {
      d.sendFails = true;
      spawner.onSpawn = () => {};
    };
    expect(pool.dispatch(stanza("second"))).toBe("dispatched");
    const [, broken, fresh] = spawner.drones;
    expect(broken!.kills).toEqual(["SIGKILL"]); // the new child
    expect(busy.kills).toEqual([]); // not cur_child
    expect(fresh!.requests).toEqual(["second"]); // message re-dispatched, not lost
    expect(failures).toEqual([]);
    broken!.exit(null, "SIGKILL");
    expect(failures).toEqual([]); // it held nothing
  });
});

describe("Pool: reaping", () => {
  test("a dead idle drone is replaced up to min_children", () => {
    const { pool, spawner, failures } = setup();
    pool.start();
    spawner.drones[0]!.ready().exit(null, "SIGKILL");
    expect(spawner.live.length).toBe(2);
    expect(spawner.drones.length).toBe(3);
    expect(failures).toEqual([]);
  });

  test("a drone that dies mid-request gets its caller answered with the stanza it was handed", () => {
    const { pool, failures, d } = withOneRequest("doomed");
    d.say({ type: "busy", method: "slow", since: Date.now() });
    d.exit(null, "SIGKILL");
    expect(failures).toHaveLength(1);
    expect(threadOf(failures[0]!.target)).toBe("doomed");
    expect(failures[0]!.failure).toMatchObject({
      kind: "died",
      pid: d.pid,
      signal: "SIGKILL",
      method: "slow",
      starting: false,
    });
    expect(pool.stats()).toMatchObject({ idle: 2, active: 0 });
  });

  test("busy with a caller (a session request) answers that caller instead", () => {
    const { failures, d } = withOneRequest("sess");
    d.say({ type: "waiting", thread: "sess" });
    d.say({
      type: "busy",
      method: "m2",
      since: 1,
      caller: { to: "c@x/y", thread: "sess", xid: "x", threadTraces: [3] },
    });
    d.exit(1);
    expect(failures[0]!.target).toEqual({
      kind: "caller",
      caller: { to: "c@x/y", thread: "sess", xid: "x", threadTraces: [3] },
    });
  });

  test("dying while waiting in a session leaves nobody to answer", () => {
    const { failures, d } = withOneRequest("sess");
    d.say({ type: "waiting", thread: "sess" });
    d.exit(null, "SIGKILL");
    expect(failures).toEqual([]);
  });

  test("exiting after max_requests is replaced at once; its finished work is not failed", () => {
    const { pool, spawner, failures } = setup({ minChildren: 1 });
    pool.start();
    const d = spawner.drones[0]!.ready();
    pool.dispatch(stanza("last"));
    d.say({ type: "exiting", reason: "max_requests", served: 5 });
    expect(spawner.drones.length).toBe(2); // replacement started before the old one exits
    d.exit(0);
    expect(failures).toEqual([]);
    expect(pool.stats()).toMatchObject({ total: 1, idle: 1 });
  });

  test("bad IPC messages are logged and ignored", () => {
    const { pool, spawner, logger } = setup();
    pool.start();
    spawner.drones[0]!.say({ type: "available", served: "lots" });
    spawner.drones[0]!.say({ type: "nonsense" });
    expect(logger.messages().filter((m) => m.includes("bad IPC message"))).toHaveLength(2);
  });
});

describe("Pool: start-up crash backoff", () => {
  test("drones dying before ready back off exponentially, one probe at a time, capped", () => {
    const { pool, spawner, clock, logger } = setup({ minChildren: 2, maxChildren: 4, crashBackoffMax: 4 });
    pool.start();
    expect(spawner.drones.length).toBe(2);
    spawner.drones[0]!.exit(1); // failure 1: respawn now, but only one probe at a time
    expect(spawner.live.length).toBe(1);
    spawner.drones[1]!.exit(1); // failure 2: 1 s
    expect(spawner.live.length).toBe(0);
    expect(logger.lines.at(-1)?.level).toBe("warn");
    expect(logger.lines.at(-1)?.msg).toMatch(
      /drones for svc exit during start-up \(last: \d+ exit code 1\); next spawn in 1 s/,
    );
    clock.advance(999);
    expect(spawner.live.length).toBe(0);
    clock.advance(1);
    expect(spawner.live.length).toBe(1); // a single probe
    const probe = spawner.live[0]!;
    probe.say({ type: "exiting", reason: "init_failed", served: 0, detail: "childInit threw: boom" });
    expect(spawner.live).toEqual([probe]); // not replaced before its exit is counted
    probe.exit(1);
    expect(logger.lines.at(-1)?.msg).toContain("exit code 1: init_failed: childInit threw: boom); next spawn in 2 s");
    clock.advance(2000);
    spawner.live[0]!.exit(1); // 4 s
    clock.advance(4000);
    spawner.live[0]!.exit(1); // capped at 4 s
    expect(logger.lines.at(-1)?.msg).toContain("next spawn in 4 s");
    clock.advance(4000);
    spawner.live[0]!.ready(); // success clears the backoff and refills to min
    expect(spawner.live.length).toBe(2);
    expect(logger.messages().some((m) => m.includes("start-up backoff cleared"))).toBe(true);
  });

  test("a message handed to a drone that dies in start-up is answered, and queued ones wait for the backoff", () => {
    const { pool, spawner, clock, failures } = setup({ minChildren: 1, maxChildren: 1, maxBacklogQueue: 5 });
    pool.start();
    pool.dispatch(stanza("a"));
    pool.dispatch(stanza("b"));
    spawner.drones[0]!.exit(1);
    expect(failures.map((f) => [threadOf(f.target), f.failure.kind])).toEqual([["a", "died"]]);
    expect((failures[0]!.failure as { starting: boolean }).starting).toBe(true);
    // failure 1 respawns at once, and the queued message goes to the probe.
    expect(spawner.live[0]!.requests).toEqual(["b"]);
    spawner.live[0]!.exit(1);
    pool.dispatch(stanza("c"));
    expect(pool.stats().backlog).toBe(1);
    clock.advance(1000);
    expect(spawner.live[0]!.requests).toEqual(["c"]);
  });

  test("the 1 s tick retries a spawn the spawner refused", () => {
    const { pool, spawner, clock } = setup({ minChildren: 1, maxChildren: 4 });
    spawner.failSpawn = true;
    pool.start(); // spawn refused twice: first respawns at once, second backs off 1 s
    expect(spawner.drones.length).toBe(0);
    spawner.failSpawn = false;
    clock.advance(1000);
    expect(spawner.drones.length).toBe(1);
  });

  test("while drones fail at start-up, messages start one probe at a time, not one drone each", () => {
    const { pool, spawner, clock, failures } = setup({ minChildren: 1, maxChildren: 4, maxBacklogQueue: 10 });
    pool.start();
    spawner.drones[0]!.exit(1); // failure 1: a probe at once
    expect(spawner.live).toHaveLength(1);
    for (const t of ["a", "b", "c"]) pool.dispatch(stanza(t));
    // The probe takes one; the others wait for it rather than each starting a drone that
    // would fail too (and count as one more failure each).
    expect(spawner.live).toHaveLength(1);
    expect(spawner.live[0]!.requests).toEqual(["a"]);
    expect(pool.stats().backlog).toBe(2);
    spawner.live[0]!.exit(1); // failure 2: 1 s
    expect(failures.map((f) => threadOf(f.target))).toEqual(["a"]);
    clock.advance(1000);
    expect(spawner.live).toHaveLength(1);
    expect(spawner.live[0]!.requests).toEqual(["b"]);
    // Once a drone starts fine, the backlog gets as many drones as it needs again.
    spawner.live[0]!.ready();
    expect(spawner.live).toHaveLength(2);
    expect(spawner.live.flatMap((d) => d.requests)).toEqual(["b", "c"]);
    expect(pool.stats().backlog).toBe(0);
  });
});

describe("Pool: request_timeout", () => {
  test("a drone running too long is killed and its caller answered at once", () => {
    const { pool, clock, failures, d } = withOneRequest("hang", { requestTimeout: 2 });
    clock.advance(1000);
    d.say({ type: "busy", method: "sleep", since: 0 }); // re-arms: 2 s from now
    clock.advance(1999);
    expect(d.kills).toEqual([]);
    clock.advance(1);
    expect(d.kills).toEqual(["SIGKILL"]);
    expect(failures).toHaveLength(1);
    expect(failures[0]!.failure).toEqual({ kind: "timeout", pid: d.pid, seconds: 2, method: "sleep" });
    d.exit(null, "SIGKILL");
    expect(failures).toHaveLength(1); // not answered twice
    expect(pool.stats()).toMatchObject({ total: 2, idle: 2 });
  });

  test("no time limit while waiting in a session", () => {
    const { clock, failures, d } = withOneRequest("s", { requestTimeout: 1 });
    d.say({ type: "waiting", thread: "s" });
    clock.advance(5000);
    expect(d.kills).toEqual([]);
    expect(failures).toEqual([]);
  });
});

describe("Pool: reload (HUP) and stopping", () => {
  test("roll retires idle drones now and busy ones when done; nothing queued is lost", () => {
    const { pool, spawner } = setup({ minChildren: 2, maxChildren: 4 });
    pool.start();
    const [old1, old2] = spawner.drones;
    old1!.ready();
    old2!.ready();
    pool.dispatch(stanza("running"));
    const busy = [old1!, old2!].find((d) => d.requests.length > 0)!;
    const idle = [old1!, old2!].find((d) => d !== busy)!;
    pool.roll();
    expect(idle.sent.at(-1)).toEqual({ type: "shutdown", graceful: true, reason: "reload" });
    expect(busy.sent.at(-1)?.type).toBe("request");
    // One new drone: the busy old one still counts towards min_children until it leaves.
    expect(spawner.drones.length).toBe(3);
    busy.available();
    expect(busy.sent.at(-1)).toEqual({ type: "shutdown", graceful: true, reason: "reload" });
    expect(spawner.drones.length).toBe(4);
    expect(spawner.drones.slice(2).map((d) => d.cause)).toEqual(["replace", "replace"]);
    pool.dispatch(stanza("after"));
    const fresh = spawner.drones.slice(2);
    expect(fresh.flatMap((d) => d.requests)).toEqual(["after"]);
  });

  test("drain waits for busy drones and the backlog, then resolves", async () => {
    const { pool, spawner } = setup({ minChildren: 1, maxChildren: 1, maxBacklogQueue: 5 });
    pool.start();
    const d = spawner.drones[0]!.ready();
    pool.dispatch(stanza("a"));
    pool.dispatch(stanza("b"));
    let done: boolean | undefined;
    const p = pool.drain(10_000).then((v) => (done = v));
    // Still accepted while draining.
    expect(pool.dispatch(stanza("c"))).toBe("queued");
    d.available();
    d.available();
    await Promise.resolve();
    expect(done).toBeUndefined();
    d.available();
    expect(await p).toBe(true);
    expect(d.requests).toEqual(["a", "b", "c"]);
  });

  test("drain timeout answers the backlog and kills busy drones", async () => {
    const { pool, spawner, clock, failures } = setup({ minChildren: 1, maxChildren: 1, maxBacklogQueue: 5 });
    pool.start();
    const d = spawner.drones[0]!.ready();
    pool.dispatch(stanza("a"));
    pool.dispatch(stanza("b"));
    const p = pool.drain(3000);
    clock.advance(3000);
    expect(await p).toBe(false);
    expect(failures.map((f) => [threadOf(f.target), f.failure.kind])).toEqual([
      ["b", "shutdown"],
      ["a", "shutdown"],
    ]);
    expect(d.kills).toEqual(["SIGKILL"]);
    d.exit(null, "SIGKILL");
    expect(failures).toHaveLength(2);
  });

  test("stop tells idle drones to finish and kills stragglers after the grace period", async () => {
    const { pool, spawner, clock } = setup({ minChildren: 2, maxChildren: 2 });
    pool.start();
    for (const d of spawner.drones) d.ready();
    const p = pool.stop(2000);
    expect(spawner.drones.every((d) => d.sent.at(-1)?.type === "shutdown")).toBe(true);
    spawner.drones[0]!.exit(0);
    clock.advance(2000);
    await new Promise((r) => setImmediate(r));
    expect(spawner.drones[1]!.kills).toEqual(["SIGKILL"]);
    spawner.drones[1]!.exit(null, "SIGKILL");
    await p;
    expect(pool.stats().total).toBe(0);
    expect(spawner.drones.length).toBe(2); // no respawn while stopping
  });

  test("killAll answers queued and running work with shutdown and SIGKILLs every drone", () => {
    const { pool, spawner, failures } = setup({ minChildren: 1, maxChildren: 1, maxBacklogQueue: 5 });
    pool.start();
    spawner.drones[0]!.ready();
    pool.dispatch(stanza("a"));
    pool.dispatch(stanza("b"));
    pool.killAll();
    expect(failures.map((f) => [threadOf(f.target), f.failure.kind]).sort()).toEqual([
      ["a", "shutdown"],
      ["b", "shutdown"],
    ]);
    expect(spawner.drones[0]!.kills).toEqual(["SIGKILL"]);
    expect(pool.dispatch(stanza("late"))).toBe("rejected");
  });
});
