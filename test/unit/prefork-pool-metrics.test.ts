/**
 * PoolMetrics fed by a fake spawner: drone states, exit causes, request counts, the
 * status report and its text and table renderings.
 */
import { describe, expect, test } from "bun:test";
import { MetricName, renderMetrics } from "../../src/metrics/render.ts";
import { buildStatus, renderStatusText } from "../../src/metrics/status.ts";
import { alignColumns, formatUptime, renderStatusTable } from "../../src/metrics/table.ts";
import type { SpawnCause } from "../../src/metrics/types.ts";
import type { ListenerToDrone } from "../../src/prefork/ipc.ts";
import { MAX_METHOD_LABELS, OTHER_METHOD, PoolMetrics } from "../../src/prefork/pool-metrics.ts";
import type { DroneEvents } from "../../src/prefork/types.ts";

/** A drone the test drives: what the pool would send it, and what it would say back. */
function drone(m: PoolMetrics, pid: number, cause: SpawnCause = "demand") {
  let events!: DroneEvents;
  const seen: unknown[] = [];
  const killed: string[] = [];
  const handle = m
    .observeSpawner({
      spawn(e) {
        events = e;
        return { pid, send: () => true, kill: (s) => void killed.push(s) };
      },
    })
    .spawn({ message: (msg) => seen.push(msg), exit: (code, sig) => seen.push({ exit: [code, sig] }) }, cause);
  const send = (msg: ListenerToDrone) => handle.send(msg);
  return {
    handle,
    seen,
    killed,
    send,
    request: () => send({ type: "request", stanza: {} as never }),
    say: (msg: unknown) => events.message(msg),
    exit: (code: number | null, sig: string | null = null) => events.exit(code, sig),
  };
}

const states = (m: PoolMetrics) => m.stateCounts();

describe("PoolMetrics", () => {
  test("states follow what the pool sends and the drone says", () => {
    const m = new PoolMetrics("svc");
    const d = drone(m, 10);
    expect(states(m)).toEqual({ starting: 1, idle: 0, busy: 0, retiring: 0 });
    d.say({ type: "ready", address: "x" });
    expect(states(m).idle).toBe(1);
    d.request();
    expect(states(m).busy).toBe(1);
    d.say({ type: "busy", method: "add", since: 1 });
    d.say({ type: "waiting", thread: "t" });
    expect(states(m).busy).toBe(1); // pinned to a session
    d.say({ type: "available", served: 1, rssBytes: 5 });
    expect(states(m).idle).toBe(1);
    d.send({ type: "shutdown", graceful: true, reason: "spare" });
    expect(states(m).retiring).toBe(1);
    d.exit(0);
    expect(states(m)).toEqual({ starting: 0, idle: 0, busy: 0, retiring: 0 });
    expect(m.exits.retired).toBe(1);
    expect(m.spawns).toBe(1);
    expect(m.accepted).toBe(1);
  });

  test("spawns are counted by the cause the pool gives, retirements by the reason it sends", () => {
    const m = new PoolMetrics("svc");
    const causes: SpawnCause[] = ["min_children", "min_children", "demand", "spare", "replace", "replace", "replace"];
    const drones = causes.map((c, i) => drone(m, 30 + i, c));
    expect(m.spawns).toBe(7);
    expect(m.spawnCauses).toEqual({ min_children: 2, demand: 1, spare: 1, replace: 3 });
    drones[0]!.send({ type: "shutdown", graceful: true, reason: "spare" });
    drones[1]!.send({ type: "shutdown", graceful: true, reason: "reload" });
    drones[2]!.send({ type: "shutdown", graceful: true, reason: "reload" });
    drones[3]!.send({ type: "shutdown", graceful: false, reason: "shutdown" });
    // Told twice (a graceful stop, then an immediate one): one retirement.
    drones[3]!.send({ type: "shutdown", graceful: false, reason: "shutdown" });
    expect(m.retires).toEqual({ spare: 1, reload: 2, shutdown: 1 });
    for (const d of drones.slice(0, 4)) d.exit(0);
    expect(m.exits.retired).toBe(4);
  });

  test("the pool still receives every message and exit unchanged", () => {
    const m = new PoolMetrics("svc");
    const d = drone(m, 11);
    const msg = { type: "available", served: 1, rssBytes: 2, done: [["a", 205, 1]] };
    d.say(msg);
    d.exit(1, null);
    expect(d.seen).toEqual([msg, { exit: [1, null] }]);
  });

  test.each([
    ["max_requests", "max_requests"],
    ["memory", "memory"],
    ["init_failed", "init_failed"],
    ["shutdown", "retired"],
  ])("an exiting drone with reason %s counts as %s", (reason, cause) => {
    const m = new PoolMetrics("svc");
    const d = drone(m, 12);
    d.say({ type: "exiting", reason, served: 3 });
    expect(states(m).retiring).toBe(1);
    d.exit(reason === "init_failed" ? 1 : 0);
    expect(m.exits[cause as keyof typeof m.exits]).toBe(1);
  });

  test("kill -9 from outside is 'killed', a silent exit is 'crash'", () => {
    const m = new PoolMetrics("svc");
    drone(m, 13).exit(null, "SIGKILL");
    drone(m, 14).exit(3);
    expect(m.exits).toMatchObject({ killed: 1, crash: 1 });
  });

  test("a drone the pool kills for request_timeout is 'hung'; one killed at stop is 'retired'", () => {
    const m = new PoolMetrics("svc");
    const hung = drone(m, 15);
    const stopped = drone(m, 16);
    hung.handle.kill("SIGKILL");
    m.failure({ kind: "timeout", pid: 15, seconds: 2, method: "hang" });
    stopped.handle.kill("SIGKILL");
    hung.exit(null, "SIGKILL");
    stopped.exit(null, "SIGKILL");
    expect(m.exits).toMatchObject({ hung: 1, retired: 1, killed: 0 });
    expect(m.lost.timeout).toBe(1);
    expect(hung.killed).toEqual(["SIGKILL"]);
  });

  test("overloads, lost callers and reconnects are counted", () => {
    const m = new PoolMetrics("svc");
    m.failure({ kind: "overload" });
    m.failure({ kind: "overload" });
    m.failure({ kind: "died", pid: 1, code: null, signal: "SIGKILL", starting: false });
    m.failure({ kind: "shutdown" });
    m.online(false);
    m.online(true);
    expect(m.overloadRejections).toBe(2);
    expect(m.lost).toEqual({ died: 1, timeout: 0, shutdown: 1 });
    expect(m.xmppReconnects).toBe(1);
    expect(m.redisReconnects).toBe(0);
  });

  test("on Redis a reconnect counts as a Redis one, and /metrics and the status table say so", () => {
    const m = new PoolMetrics("svc");
    m.bus = "redis";
    m.online(false);
    m.online(true);
    m.online(true);
    expect([m.xmppReconnects, m.redisReconnects]).toEqual([0, 2]);
    const text = renderMetrics({ metrics: m, backlog: () => 0 });
    expect(text).toContain(`${MetricName.redisReconnects} 2\n`);
    expect(text).toContain(`${MetricName.reconnects} 0\n`);
    const status = buildStatus({ metrics: m, backlog: () => 0 });
    expect(status.bus).toBe("redis");
    expect(renderStatusTable(status)).toContain("redis reconnects 2");
  });

  test("finished requests are counted per method and status, riding on any message", () => {
    const m = new PoolMetrics("svc");
    const d = drone(m, 17);
    d.say({ type: "busy", method: "b", since: 0, done: [["a", 205, 2]] });
    d.say({
      type: "waiting",
      thread: "t",
      done: [
        ["b", 205, 4],
        ["b", 500, 1],
      ],
    });
    d.say({ type: "exiting", reason: "max_requests", served: 3, done: [["b", 205, 1], "junk", [1, 2, 3]] });
    expect(m.requests).toBe(4);
    expect(m.byMethod.get("a")).toEqual(new Map([[205, 1]]));
    expect(m.byMethod.get("b")).toEqual(
      new Map([
        [205, 2],
        [500, 1],
      ]),
    );
    expect(m.durations().count).toBe(4);
    expect(m.drones()[0]!.requests).toBe(4);
  });

  test("method labels are bounded: names beyond the limit count as (other)", () => {
    const m = new PoolMetrics("svc");
    const d = drone(m, 18);
    const done = Array.from({ length: MAX_METHOD_LABELS + 20 }, (_, i) => [`m${i}`, 404, 1]);
    d.say({ type: "available", served: 1, rssBytes: 1, done });
    expect(m.byMethod.size).toBe(MAX_METHOD_LABELS + 1);
    expect(m.byMethod.get(OTHER_METHOD)?.get(404)).toBe(20);
    d.say({ type: "available", served: 1, rssBytes: 1, done: [["m3", 205, 1]] });
    expect(m.byMethod.get("m3")?.get(205)).toBe(1);
  });

  test("malformed messages are ignored", () => {
    const m = new PoolMetrics("svc");
    const d = drone(m, 19);
    for (const junk of [null, 3, "x", { type: "busy", method: 5 }, { done: "no" }]) d.say(junk);
    expect(states(m).starting).toBe(1);
    expect(m.requests).toBe(0);
  });
});

describe("status report", () => {
  function sample() {
    let now = 1_700_000_000_000;
    const m = new PoolMetrics("opensrf.math", () => now);
    const a = drone(m, 201, "min_children");
    const b = drone(m, 202, "min_children");
    drone(m, 203, "spare"); // still starting
    a.say({ type: "ready", address: "a" });
    b.say({ type: "ready", address: "b" });
    a.request();
    a.say({ type: "available", served: 1, rssBytes: 50 * 1024 * 1024, done: [["add", 205, 2]] });
    b.request();
    b.say({ type: "busy", method: "opensrf.math.slow", since: now + 1000 });
    now += 3500;
    m.failure({ kind: "overload" });
    return buildStatus({
      metrics: m,
      backlog: () => 4,
      pid: 200,
      now: () => now,
      rssOf: (pid) => (pid === 203 ? 30 * 1024 * 1024 : undefined),
      host: "hostb",
      routers: () => [
        {
          router: "router@private.localhost/router",
          registered: true,
          reregistrations: { bounce: 0, probe: 1, reconnect: 0 },
        },
        {
          router: "router@public.localhost/router",
          registered: false,
          reregistrations: { bounce: 2, probe: 0, reconnect: 0 },
        },
      ],
    });
  }

  test("JSON: service, counters, drones by state and each drone", () => {
    const s = sample();
    expect(s).toMatchObject({
      service: "opensrf.math",
      host: "hostb",
      pid: 200,
      startTime: "2023-11-14T22:13:20.000Z",
      startSince: 3,
      accepted: 2,
      requests: 1,
      listenQueue: 4,
      drones: { starting: 1, idle: 1, busy: 1, retiring: 0, total: 3 },
      spawns: 3,
      spawnCauses: { min_children: 2, demand: 0, spare: 1, replace: 0 },
      retires: { spare: 0, reload: 0, shutdown: 0 },
      overloadRejections: 1,
    });
    expect(s.routers.map((r) => [r.router, r.registered])).toEqual([
      ["router@private.localhost/router", true],
      ["router@public.localhost/router", false],
    ]);
    expect(s.processes).toEqual([
      {
        pid: 201,
        state: "idle",
        startedAt: 1_700_000_000_000,
        requests: 1,
        method: null,
        methodAgeMs: null,
        rssBytes: 50 * 1024 * 1024,
      },
      {
        pid: 202,
        state: "busy",
        startedAt: 1_700_000_000_000,
        requests: 0,
        method: "opensrf.math.slow",
        methodAgeMs: 2500,
        rssBytes: null,
      },
      {
        pid: 203,
        state: "starting",
        startedAt: 1_700_000_000_000,
        requests: 0,
        method: null,
        methodAgeMs: null,
        rssBytes: 30 * 1024 * 1024,
      },
    ]);
  });

  test("text: php-fpm's layout, one block per drone", () => {
    const text = renderStatusText(sample());
    expect(text).toStartWith(
      "service:             opensrf.math\nhost:                hostb\nlistener pid:        200\n",
    );
    expect(text).toContain(
      "\nrouters:             router@private.localhost/router registered (re-registered: probe 1); " +
        "router@public.localhost/router NOT registered (re-registered: bounce 2)\n",
    );
    expect(text).toContain("\nlisten queue:        4\n");
    expect(text).toContain("\ntotal drones:        3\n");
    expect(text).toContain(
      "\nspawns:              3\nspawn causes:        min_children=2 spare=1\nretires:             -\n",
    );
    const blocks = text.split("\n\n************************\n");
    expect(blocks).toHaveLength(4);
    expect(blocks[2]).toStartWith("pid:        202\nstate:      busy\n");
    expect(blocks[2]).toContain("\nmethod:     opensrf.math.slow\nmethod age: 2.5 s\n");
    expect(blocks[1]).toContain("\nrss:        50.0 MB");
  });

  test("table: aligned columns, one row per drone", () => {
    const lines = renderStatusTable(sample()).trimEnd().split("\n");
    expect(lines[0]).toStartWith("opensrf.math on hostb  (listener pid 200, up 3s since 2023-11-14T22:13:20.000Z)");
    expect(lines[2]).toContain(
      "drones 3: 1 idle, 1 busy, 1 starting, 0 retiring; spawned 3 (min_children 2, spare 1), retired 0, exited 0",
    );
    expect(lines[3]).toBe(
      "  routers: router@private.localhost/router registered (re-registered: probe 1); " +
        "router@public.localhost/router NOT registered (re-registered: bounce 2)",
    );
    const table = lines.slice(5);
    expect(table).toEqual([
      "  PID  STATE     REQUESTS      RSS    AGE  METHOD",
      "  201  idle             1  50.0 MB      -  -",
      "  202  busy             0        -  2.5 s  opensrf.math.slow",
      "  203  starting         0  30.0 MB      -  -",
    ]);
  });

  test("retirements by cause and exits in the table and the text", () => {
    const m = new PoolMetrics("svc", () => 1_700_000_000_000);
    const spare = drone(m, 301, "min_children");
    const quota = drone(m, 302, "min_children");
    drone(m, 303, "replace");
    spare.send({ type: "shutdown", graceful: true, reason: "spare" });
    spare.exit(0);
    quota.say({ type: "exiting", reason: "max_requests", served: 9 });
    quota.exit(0);
    const s = buildStatus({ metrics: m, backlog: () => 0, pid: 300, now: () => 1_700_000_000_000 });
    expect(renderStatusTable(s).split("\n")[2]).toBe(
      "  drones 1: 0 idle, 0 busy, 1 starting, 0 retiring; spawned 3 (min_children 2, replace 1), " +
        "retired 1 (spare 1), exited max_requests 1, retired 1",
    );
    const text = renderStatusText(s);
    expect(text).toContain("\nspawn causes:        min_children=2 replace=1\nretires:             spare=1\n");
    expect(text).toContain("\nexits:               max_requests=1 retired=1\n");
  });

  test("helpers", () => {
    expect(
      alignColumns(
        [
          ["a", "1", "x"],
          ["bbb", "22", "y"],
        ],
        new Set([1]),
      ),
    ).toEqual(["a     1  x", "bbb  22  y"]);
    expect([9, 252, 7300, 3 * 86400 + 4 * 3600].map(formatUptime)).toEqual(["9s", "4m 12s", "2h 1m", "3d 4h"]);
  });
});

describe("spawn failures", () => {
  test("a spawner that throws leaves no drone behind", () => {
    const m = new PoolMetrics("svc");
    const spawner = m.observeSpawner({
      spawn() {
        throw new Error("no fork today");
      },
    });
    expect(() => spawner.spawn({ message: () => {}, exit: () => {} }, "spare")).toThrow("no fork today");
    expect(m.drones()).toEqual([]);
    expect(m.spawns).toBe(0);
    expect(m.spawnCauses.spare).toBe(0);
  });

  test("an exit reported before spawn() returns is counted once and leaves no drone", () => {
    const m = new PoolMetrics("svc");
    const spawner = m.observeSpawner({
      spawn(e) {
        e.exit(1, null);
        return { pid: 7, send: () => true, kill: () => {} };
      },
    });
    spawner.spawn({ message: () => {}, exit: () => {} }, "demand");
    expect(m.drones()).toEqual([]);
    expect(m.exits.crash).toBe(1);
  });
});

describe("PoolMetrics with drones on the free-drone board", () => {
  /** A drone whose board counters the test sets. */
  function boardDrone(m: PoolMetrics, pid: number) {
    const board = { finished: 0, requests: 0 };
    let events!: DroneEvents;
    const handle = m
      .observeSpawner({
        spawn(e) {
          events = e;
          return {
            pid,
            send: () => true,
            kill: () => {},
            finished: () => board.finished,
            requestsServed: () => board.requests,
          };
        },
        wantAvailable: () => {},
      })
      .spawn({ message: () => {}, exit: () => {} }, "demand");
    return {
      board,
      handle,
      request: () => handle.send({ type: "request", stanza: {} as never }),
      say: (msg: unknown) => events.message(msg),
      exit: (code: number | null, sig: string | null = null) => events.exit(code, sig),
    };
  }

  test("the wrapped spawner and handles keep the board's readers and the flag", () => {
    const m = new PoolMetrics("svc");
    let wanted: boolean | undefined;
    const spawner = m.observeSpawner({
      spawn: () => ({ pid: 1, send: () => true, kill: () => {}, finished: () => 4, requestsServed: () => 6 }),
      wantAvailable: (on) => {
        wanted = on;
      },
    });
    spawner.wantAvailable?.(true);
    expect(wanted).toBe(true);
    const h = spawner.spawn({ message: () => {}, exit: () => {} }, "demand");
    expect([h.finished?.(), h.requestsServed?.()]).toEqual([4, 6]);
  });

  test("a drone finished on the board is idle, and its requests count at once, before their `done` arrives", () => {
    const m = new PoolMetrics("svc");
    const d = boardDrone(m, 20);
    d.say({ type: "ready", address: "x" });
    d.request();
    expect(m.stateCounts().busy).toBe(1);
    d.board.requests = 1;
    d.board.finished = 1;
    expect(m.stateCounts()).toMatchObject({ idle: 1, busy: 0 });
    expect(m.requests).toBe(1);
    expect(m.drones()[0]!.requests).toBe(1);
    // The details come later and are not counted twice.
    d.say({ type: "report", done: [["add", 205, 1]] });
    expect(m.requests).toBe(1);
    expect(m.drones()[0]!.requests).toBe(1);
    expect(m.byMethod.get("add")?.get(205)).toBe(1);
  });

  test("a stale `available` or `busy` (about a message before the one handed since) leaves the drone busy", () => {
    const m = new PoolMetrics("svc");
    const d = boardDrone(m, 21);
    d.say({ type: "ready", address: "x" });
    d.request();
    d.board.finished = 1;
    d.request();
    d.say({ type: "available", served: 1, rssBytes: 1 });
    d.say({ type: "busy", method: "old", since: 1, unit: 1 });
    expect(m.stateCounts().busy).toBe(1);
    expect(m.drones()[0]!.method).toBeUndefined();
  });

  test("a drone killed before its `done` was sent: its requests are counted once, late details too", () => {
    const m = new PoolMetrics("svc");
    const d = boardDrone(m, 22);
    d.say({ type: "ready", address: "x" });
    d.request();
    d.board.requests = 2;
    d.board.finished = 1;
    d.exit(null, "SIGKILL");
    expect(m.requests).toBe(2);
    d.say({ type: "report", done: [["add", 205, 1]] });
    expect(m.requests).toBe(2);
    expect(m.byMethod.get("add")?.get(205)).toBe(1);
  });
});
