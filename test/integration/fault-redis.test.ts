/**
 * Faults of the Redis bus, with real processes (a private redis-server with OpenSRF main's
 * accounts, our router, a listener and its drones, clients): list elements that are not
 * OpenSRF messages pushed into the router's and the listener's queues, Redis dropping every
 * connection of the service account while calls are in flight, and a Redis restart (every
 * list gone) under load. Each is one clear log line, or an answer, and nothing dies.
 */
import { describe, expect, test } from "bun:test";
import { type FaultStack, WORK_APP } from "../../devkit/fault-stack.ts";
import { describeLoad, isAlive, runLoad, waitUntil } from "../../devkit/load.ts";
import { quietLogger } from "../../devkit/quiet-logger.ts";
import { readCoreConfig } from "../../src/config/core.ts";
import { connectBus } from "../../src/connect/bus.ts";
import { decodeBody } from "../../src/protocol/codec.ts";
import { served, useFaultStack } from "../harness/fault-suite.ts";

const SERVICE = "fault.redis";
const ROUTER_QUEUE = "opensrf:router:router:localhost";
const SERVICE_QUEUE = `opensrf:service:opensrf:localhost:${SERVICE}`;
/** Small, so an oversize element is cheap to make. */
const MAX_SIZE = 100_000;

let stack: FaultStack;

useFaultStack(
  {
    bus: "redis",
    services: [
      {
        name: SERVICE,
        app: WORK_APP,
        unix: { min_children: 2, max_children: 4, max_backlog_queue: 1000, max_requests: 100000 },
      },
    ],
    core: { maxStanzaSize: MAX_SIZE },
    // "Lost" means no answer at all: a generous timeout keeps a slow machine from counting as loss.
    clientTimeout: 30,
  },
  (s) => {
    stack = s;
  },
);

/** Lines of `output` logged at WARN or ERR. */
const problems = (output: string): string[] => output.split("\n").filter((l) => /\[(WARN|ERR )/.test(l));

describe("the Redis bus at fault", () => {
  test("junk in the router's and the listener's queues: one log line each, nothing dies, service goes on", async () => {
    const request = {
      __c: "osrfMessage",
      __p: {
        threadTrace: "1",
        type: "REQUEST",
        payload: { __c: "osrfMethod", __p: { method: "work", params: [1, 0] } },
      },
    };
    const junk: Array<[string, RegExp]> = [
      ["{not json", /not JSON/],
      ['["an","array"]', /a JSON array, not an object/],
      [JSON.stringify({ to: `opensrf:service:_:_:${SERVICE}`, thread: "no-from", body: [request] }), /no "from"/],
      [JSON.stringify({ to: ["x"], from: "opensrf:client:opensrf:localhost:h:1:f" }), /"to" is a array/],
      [
        JSON.stringify({
          to: `opensrf:service:_:_:${SERVICE}`,
          from: "opensrf:client:opensrf:localhost:h:1:f",
          body: 7,
        }),
        /"body" is a number/,
      ],
      [`{"pad":"${"x".repeat(MAX_SIZE + 10)}"}`, new RegExp(`over the ${MAX_SIZE}-byte limit`)],
    ];
    for (const queue of [ROUTER_QUEUE, SERVICE_QUEUE]) {
      for (const [text, logged] of junk) {
        // The router reads no body (it forwards the element as it is): the listener finds that one.
        const byListener = queue === SERVICE_QUEUE || logged.source.includes("body");
        const who = byListener ? stack.serve(SERVICE) : stack.router;
        const on = byListener ? SERVICE_QUEUE : ROUTER_QUEUE;
        const before = who.output.length;
        await stack.redis.admin(["RPUSH", queue, text]);
        await waitUntil(
          `${on} to log ${logged}`,
          () => problems(who.output.slice(before)).some((l) => l.includes(on) && logged.test(l)),
          10_000,
        );
      }
    }
    // Messages the router cannot route: a recipient of no known kind, none at all.
    const from = "opensrf:client:opensrf:localhost:h:1:f";
    for (const [to, logged] of [
      ["opensrf:bogus:opensrf:localhost:x", /unexpected recipient opensrf:bogus/],
      ["", /no recipient/],
    ] as const) {
      const before = stack.router.output.length;
      await stack.redis.admin(["RPUSH", ROUTER_QUEUE, JSON.stringify({ to, from, thread: "t", body: [] })]);
      await waitUntil(`the router to log ${logged}`, () => logged.test(stack.router.output.slice(before)), 10_000);
    }
    // A well-formed element whose OpenSRF body does not decode reaches a drone, which answers 400.
    const logger = quietLogger();
    const caller = await connectBus(readCoreConfig(stack.coreFile).opensrf, {
      resource: "c",
      logger,
      reconnect: false,
    });
    try {
      const got: unknown[] = [];
      caller.onMessage((m) => got.push(...decodeBody(m.body)));
      const bad = [{ __c: "osrfMessage", __p: { threadTrace: "3", type: "REQUEST", payload: { nonsense: true } } }];
      await stack.redis.admin([
        "RPUSH",
        SERVICE_QUEUE,
        JSON.stringify({ to: `opensrf:service:_:_:${SERVICE}`, from: caller.address, thread: "bad-body", body: bad }),
      ]);
      await waitUntil("the drone's 400", () => got.length > 0, 10_000);
      expect(got[0]).toMatchObject({ type: "STATUS", threadTrace: 3, payload: { statusCode: 400 } });
    } finally {
      await caller.close();
    }
    expect(isAlive(stack.router.pid)).toBe(true);
    expect(isAlive(stack.listenerPid(SERVICE))).toBe(true);
    expect(await served(stack.client, SERVICE, [42, 0])).toBe(true);
    for (const p of [stack.router, stack.serve(SERVICE)]) {
      expect(p.output).not.toMatch(/TypeError|RangeError|Unhandled|uncaught|password/i);
    }
  }, 60_000);

  test("Redis drops every connection of the service account with calls in flight: every caller answered, all reconnect", async () => {
    const listener = stack.listenerPid(SERVICE);
    const drones = stack.dronePids(SERVICE);
    const before = stack.serve(SERVICE).output.length;
    const calls = Array.from({ length: 8 }, (_, i) =>
      stack.client
        .request(SERVICE, "work", [i, 1500])
        .first()
        .then(
          () => "result",
          (e: Error) => e.name,
        ),
    );
    await Bun.sleep(500);
    // The listener, its drones and the client (not the router: another account).
    const killed = await stack.redis.admin(["CLIENT", "KILL", "USER", "opensrf"]);
    expect(killed).toBeGreaterThanOrEqual(2 + drones.length);
    const outcomes = await Promise.all(calls);
    // The client fails what it was waiting for at once (what was on its way may be gone),
    // or had its answer already: never a timeout.
    expect(outcomes.filter((o) => o !== "result" && o !== "DeliveryError")).toEqual([]);
    const out = () => stack.serve(SERVICE).output.slice(before);
    await waitUntil("the listener to reconnect", () => /reconnected to Redis as opensrf:client:/.test(out()), 20_000);
    await waitUntil("the listener to register again", () => /registering with the routers again/.test(out()), 20_000);
    for (const pid of drones) {
      await waitUntil(
        `drone ${pid} to reconnect`,
        () => new RegExp(`\\[INFO:${pid}:[^\\]]*\\] reconnected to Redis`).test(out()),
        20_000,
      );
    }
    expect(isAlive(listener)).toBe(true);
    await waitUntil("the service to answer again", () => served(stack.client, SERVICE, [7, 0]), 20_000);
  }, 60_000);

  test("Redis restarts under load (every list gone): everyone reconnects, the listener registers again, no caller left waiting", async () => {
    const listener = stack.listenerPid(SERVICE);
    const routerPid = stack.router.pid;
    const before = stack.serve(SERVICE).output.length;
    let stopLoad = false;
    const load = runLoad({
      total: 100_000,
      concurrency: 8,
      deadlineMs: 40_000,
      pauseMs: 5,
      stop: () => stopLoad,
      run: (i) => stack.client.request(SERVICE, "work", [i, 5]).first(),
      check: (i, v) => Array.isArray(v) && v[0] === i,
    });
    await Bun.sleep(1500);
    await stack.redis.restart();
    let probes = 0;
    await waitUntil(
      "the service to answer again",
      () => served(stack.client, SERVICE, [1_000_000 + probes++, 0]),
      30_000,
    );
    await Bun.sleep(1500);
    stopLoad = true;
    const r = await load;
    console.log(`fault-redis restart: ${describeLoad(r)}`);
    if (r.lost || r.wrong) console.log(JSON.stringify(r.samples, null, 1));
    expect(r.lost).toBe(0);
    expect(r.wrong).toBe(0);
    expect(r.answered).toBe(r.sent);
    expect(r.ok).toBeGreaterThan(100);
    expect(isAlive(listener)).toBe(true);
    expect(isAlive(routerPid)).toBe(true);
    const out = stack.serve(SERVICE).output.slice(before);
    expect(out).toMatch(/registering with the routers again/);
    expect(stack.router.output).toMatch(/router reconnected to Redis; keeping its registrations/);
    const after = await Promise.all(
      Array.from({ length: 20 }, (_, i) => stack.client.request(SERVICE, "work", [i, 0]).first()),
    );
    expect(after.map((v) => (v as number[])[0])).toEqual([...Array(20).keys()]);
  }, 90_000);
});
