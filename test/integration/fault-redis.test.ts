/**
 * Faults of the Redis bus, with real processes (a private redis-server with OpenSRF main's
 * accounts, our router, a listener and its drones, clients): list elements that are not
 * OpenSRF messages pushed into the router's and the listener's queues, Redis dropping every
 * connection of the service account while calls are in flight, a Redis restart (every list
 * gone) under load, and one while drones hold requests they have accepted. Each is one clear
 * log line, or an answer, and nothing dies.
 */
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { FaultStack } from "../../devkit/fault-stack.ts";
import { describeLoad, isAlive, runLoad, waitUntil } from "../../devkit/load.ts";
import { runCli } from "../../devkit/processes.ts";
import { quietLogger } from "../../devkit/quiet-logger.ts";
import { readCoreConfig } from "../../src/config/core.ts";
import { connectBus } from "../../src/connect/bus.ts";
import { decodeBody } from "../../src/protocol/codec.ts";
import { served, useFaultStack } from "../harness/fault-suite.ts";

const SERVICE = "fault.redis";
const ROUTER_QUEUE = "opensrf:router:router:localhost";
const SERVICE_QUEUE = `opensrf:service:opensrf:localhost:${SERVICE}`;
/**
 * The fault tests' `work(i, ms)` (answers `[i, drone pid]` after `ms` ms), and `gated(i, file)`,
 * which answers `i` once `file` exists: a request a drone has accepted and holds until the
 * test lets it go, whatever the machine's speed.
 */
const APP = `
import { existsSync } from "node:fs";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export default {
  methods: [
    { name: "work", argc: 2, handler: async (_ctx, i, ms) => { if (ms > 0) await sleep(ms); return [i, process.pid]; } },
    { name: "gated", argc: 2, handler: async (_ctx, i, file) => { while (!existsSync(file)) await sleep(20); return i; } },
  ],
};
`;
/** Small, so an oversize element is cheap to make. */
const MAX_SIZE = 100_000;

let stack: FaultStack;

useFaultStack(
  {
    bus: "redis",
    services: [
      {
        name: SERVICE,
        app: APP,
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
      [
        `{"pad":"${"x".repeat(MAX_SIZE + 10)}"}`,
        new RegExp(`over the ${MAX_SIZE}-byte limit \\(raise <max_stanza_size>`),
      ],
    ];
    // Each line also says what to do: what a list element must be (the sender's fix), or the limit to raise.
    const FIX = 'each list element must be one OpenSRF message, a JSON object with "to", "from" and "body"';
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
        const line = problems(who.output.slice(before)).find((l) => l.includes(on) && logged.test(l))!;
        expect(line.includes(FIX) || /raise <max_stanza_size>/.test(line), line).toBe(true);
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
    // The listener's status endpoint counts the reconnect as a Redis one.
    const status = await runCli(["status", "--socket", stack.statusSocket(SERVICE), "--json"]);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ bus: "redis", xmppReconnects: 0 });
    expect(JSON.parse(status.stdout).redisReconnects).toBeGreaterThanOrEqual(1);
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

  test("Redis restarts while drones hold accepted requests (and more wait in the backlog): every answer reaches its caller", async () => {
    const max = 4; // max_children
    const n = max + 2;
    const gate = join(stack.dir, `gate-${Date.now()}`);
    const logger = quietLogger();
    // A raw connection that reconnects with the same address and keeps every answer it gets
    // (the Client would fail its calls at the disconnect, as it must).
    const caller = await connectBus(readCoreConfig(stack.coreFile).opensrf, { resource: "gated", logger });
    const answers = new Map<string, unknown>();
    caller.onMessage((m) => {
      for (const msg of decodeBody(m.body) as Array<{ type: string; payload?: { content?: unknown } }>) {
        if (msg.type === "RESULT") answers.set(m.thread, msg.payload?.content);
      }
    });
    try {
      const before = stack.serve(SERVICE).output.length;
      const running = () => stack.serve(SERVICE).output.slice(before).split(`Running ${SERVICE} gated`).length - 1;
      for (let i = 0; i < n; i++) {
        const request = {
          __c: "osrfMessage",
          __p: {
            threadTrace: "1",
            type: "REQUEST",
            payload: { __c: "osrfMethod", __p: { method: "gated", params: [i, gate] } },
          },
        };
        caller.send({ to: `opensrf:service:_:_:${SERVICE}`, thread: `gated-${i}`, body: JSON.stringify([request]) });
      }
      // Accepted: every drone the pool may have runs one, the listener holds the rest, and
      // nothing is left in Redis (which the restart would empty).
      await waitUntil(
        `${max} drones running a gated request, both queues empty`,
        async () =>
          running() >= max &&
          (await stack.redis.admin(["LLEN", ROUTER_QUEUE])) === 0 &&
          (await stack.redis.admin(["LLEN", SERVICE_QUEUE])) === 0,
        20_000,
      );
      await stack.redis.kill();
      // Once every process has seen the loss, the drones answer while Redis is down: their
      // replies must wait for it, not vanish. (A reply written in the instant Redis dies may
      // be lost: it is never pushed twice, see docs/redis-bus.md.)
      const out = () => stack.serve(SERVICE).output.slice(before);
      for (const pid of [stack.listenerPid(SERVICE), ...stack.dronePids(SERVICE)]) {
        await waitUntil(
          `process ${pid} to see Redis gone`,
          () => new RegExp(`\\[WARN:${pid}:[^\\]]*\\] lost the Redis connection`).test(out()),
          20_000,
        );
      }
      writeFileSync(gate, "");
      await stack.redis.start();
      await waitUntil(`all ${n} answers`, () => answers.size === n, 30_000);
      expect([...answers].sort(([a], [b]) => a.localeCompare(b, "en", { numeric: true }))).toEqual(
        Array.from({ length: n }, (_, i) => [`gated-${i}`, i]),
      );
      expect(running()).toBe(n);
      expect(isAlive(stack.listenerPid(SERVICE))).toBe(true);
      await waitUntil("the service to answer again", () => served(stack.client, SERVICE, [8, 0]), 20_000);
    } finally {
      await caller.close();
    }
  }, 90_000);
});
