/**
 * `osrf-prefork router` on the Redis bus, with real processes (a private redis-server with
 * OpenSRF main's ACL accounts, our router, `osrf-prefork serve` listeners and drones): the
 * router API and the unknown-service 404 as C sends them, trusted domains, and what C does
 * not do — round robin over the service queues of a class, fail-over when a listener is gone
 * (killed with -9: no unregister) or stuck, and its return.
 *
 * Two queues of one class: listeners of two accounts (`opensrf` and `opensrf2`) read
 * `opensrf:service:opensrf:localhost:S` and `opensrf:service:opensrf2:localhost:S`.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Bus, startBus } from "../../devkit/bus.ts";
import { WORK_APP } from "../../devkit/fault-stack.ts";
import { childPids, describeLoad, isAlive, runLoad, waitUntil } from "../../devkit/load.ts";
import { settingsXml } from "../../devkit/osrf-config.ts";
import type { CliProcess } from "../../devkit/processes.ts";
import { quietLogger } from "../../devkit/quiet-logger.ts";
import { tapBus } from "../../src/bus/tap.ts";
import { Client } from "../../src/client/client.ts";
import { DeliveryError } from "../../src/client/errors.ts";
import { readCoreConfig } from "../../src/config/core.ts";
import { connectBus } from "../../src/connect/bus.ts";
import { encodeBody } from "../../src/protocol/codec.ts";
import { request } from "../../src/protocol/messages.ts";

const TEST_TIMEOUT_MS = 60_000;
const SERVICE = "test.spread";
/** Seconds a message may wait unread before the router fails its queue over. */
const STALL = 1;
const SECOND_USER: [string, string] = ["opensrf2", "osrf2-redis-test-pass"];

const SETTINGS = settingsXml([
  { name: SERVICE, keepalive: 5, unix: { min_children: 2, max_children: 4, max_backlog_queue: 1000 } },
]);

let bus: Bus;
let secondCore: string;
const serves: { a?: CliProcess; b?: CliProcess } = {};

/** The listener (a or b) whose drone `pid` is, if any. */
function servedBy(pid: number): "a" | "b" | undefined {
  for (const k of ["a", "b"] as const) {
    const s = serves[k];
    if (s && childPids(s.pid).includes(pid)) return k;
  }
  return undefined;
}

async function startServe(which: "a" | "b"): Promise<CliProcess> {
  const proc = await bus.startServe({
    service: SERVICE,
    app: join(bus.dir, "app.ts"),
    settings: join(bus.dir, "opensrf.xml"),
    ...(which === "b" ? { config: secondCore } : {}),
  });
  serves[which] = proc;
  return proc;
}

/** `n` sequential requests; how many each listener served. */
async function spread(n: number): Promise<Record<"a" | "b" | "none", number>> {
  const out = { a: 0, b: 0, none: 0 };
  for (let i = 0; i < n; i++) {
    const [, pid] = (await bus.client.request(SERVICE, "work", [i, 0]).first()) as [number, number];
    out[servedBy(pid) ?? "none"]++;
  }
  return out;
}

beforeAll(async () => {
  bus = await startBus({ bus: "redis", stallTimeout: STALL });
  writeFileSync(join(bus.dir, "app.ts"), WORK_APP);
  writeFileSync(join(bus.dir, "opensrf.xml"), SETTINGS);
  // A second account, with the rights redis-accounts.txt gives opensrf.
  const [user, pass] = SECOND_USER;
  const keys = ["~opensrf:router:*", "~opensrf:service:*", "~opensrf:client:*"];
  await bus.redis.admin([
    "ACL",
    "SETUSER",
    user,
    "on",
    `>${pass}`,
    "-@all",
    "+lpop",
    "+blpop",
    "+rpush",
    "+del",
    ...keys,
  ]);
  secondCore = join(bus.dir, "opensrf_core.second.xml");
  const [firstUser, firstPass] = bus.redis.accounts.opensrf;
  writeFileSync(
    secondCore,
    readFileSync(bus.coreFile, "utf8")
      .replace(`<username>${firstUser}</username>`, `<username>${user}</username>`)
      .replace(`<passwd>${firstPass}</passwd>`, `<passwd>${pass}</passwd>`),
  );
  await startServe("a");
}, TEST_TIMEOUT_MS);

afterAll(async () => {
  for (const s of Object.values(serves)) await s?.stop("SIGKILL").catch(() => {});
  await bus?.stop();
}, TEST_TIMEOUT_MS);

/** A client of its own whose every received list element is kept, as text, in `got`. */
async function tappedClient(timeout: number): Promise<{ client: Client; got: string[] }> {
  const logger = quietLogger();
  const conn = await connectBus(readCoreConfig(bus.coreFile).opensrf, { resource: "x", logger, reconnect: false });
  const got: string[] = [];
  const tapped = tapBus(conn, (dir, text) => {
    if (dir === "recv") got.push(text);
  });
  return { client: new Client({ transport: tapped, routerName: "router", logger, timeout, ownTransport: true }), got };
}

describe("the Redis router", () => {
  test(
    "router API: RESULT and then STATUS 205 as two list elements; an unknown method gets 404",
    async () => {
      const { client, got } = await tappedClient(10);
      try {
        expect(await client.request("router", "opensrf.router.info.class.list").collect()).toEqual([[SERVICE]]);
        const bodies = got.map((t) => JSON.parse(t).body as Array<{ __p: { type: string } }>);
        expect(bodies.map((b) => b.map((m) => m.__p.type))).toEqual([["RESULT"], ["STATUS"]]);
        expect(JSON.parse(got[0]!).from).toMatch(/^opensrf:client:router:localhost:/);
        const stats = (await client.request("router", "opensrf.router.info.stats.class", [SERVICE]).first()) as Record<
          string,
          number
        >;
        expect(Object.keys(stats)).toEqual([`opensrf:service:opensrf:localhost:${SERVICE}`]);
        await expect(client.request("router", "no.such.method").first()).rejects.toThrow(/Router method not found/);
      } finally {
        await client.close();
      }
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "an unknown service: C's one STATUS 404 osrfServiceException, threadTrace 1, from the router's address",
    async () => {
      const { client, got } = await tappedClient(30);
      try {
        const err = await client
          .request("no.such.service", "opensrf.system.echo", [1])
          .first()
          .catch((e) => e);
        expect(err).toBeInstanceOf(DeliveryError);
        expect(got).toHaveLength(1);
        const m = JSON.parse(got[0]!);
        expect(m.from).toMatch(/^opensrf:client:router:localhost:/);
        expect(m.body).toEqual([
          {
            __c: "osrfMessage",
            __p: {
              threadTrace: "1",
              locale: "en-US",
              api_level: 1,
              type: "STATUS",
              payload: { __c: "osrfServiceException", __p: { status: "Service Not Found", statusCode: "404" } },
            },
          },
        ]);
      } finally {
        await client.close();
      }
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "trusted domains: a registration from another domain is refused, a request from one is dropped; both logged",
    async () => {
      const queue = "opensrf:router:router:localhost";
      const outsider = "opensrf:client:opensrf:elsewhere.example:h:1:0badc0de";
      await bus.redis.admin([
        "RPUSH",
        queue,
        JSON.stringify({ to: queue, from: outsider, router_command: "register", router_class: "evil.svc", body: "[]" }),
      ]);
      await bus.router.waitFor(
        /Sending domain is not allowed on this router: opensrf:client:opensrf:elsewhere\.example/,
      );
      const body = JSON.parse(encodeBody([request(1, "work", [1, 0])]));
      await bus.redis.admin([
        "RPUSH",
        queue,
        JSON.stringify({ to: `opensrf:service:_:_:${SERVICE}`, from: outsider, thread: "t-outside", body }),
      ]);
      await bus.router.waitFor(/Sending domain is not allowed to route: opensrf:client:opensrf:elsewhere\.example/);
      expect(await bus.client.request("router", "opensrf.router.info.class.list").first()).toEqual([SERVICE]);
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "round robin over the queues of a class (C always takes the first)",
    async () => {
      await startServe("b");
      const counts = await spread(20);
      expect(counts).toEqual({ a: 10, b: 10, none: 0 });
      const stats = (await bus.client
        .request("router", "opensrf.router.info.stats.class", [SERVICE])
        .first()) as Record<string, number>;
      expect(Object.keys(stats).sort()).toEqual([
        `opensrf:service:opensrf2:localhost:${SERVICE}`,
        `opensrf:service:opensrf:localhost:${SERVICE}`,
      ]);
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "kill -9 of one listener (and its drones): no unregister, yet every request after it is answered; its queue moved to the other",
    async () => {
      const b = serves.b!;
      const drones = childPids(b.pid);
      // What was inside the killed processes has nobody left to answer it, as with C; what
      // reaches its queue afterwards must not be lost.
      for (const pid of [b.pid, ...drones]) process.kill(pid, "SIGKILL");
      await b.proc.exited;
      serves.b = undefined;
      const r = await runLoad({
        total: 300,
        concurrency: 8,
        deadlineMs: 40_000,
        run: (i) => bus.client.request(SERVICE, "work", [i, 20], { timeout: 30 }).first(),
        check: (i, v) => Array.isArray(v) && v[0] === i,
      });
      console.log(`router-redis fail-over: ${describeLoad(r)}`);
      expect([r.sent, r.lost, r.wrong, r.answered]).toEqual([300, 0, 0, 300]);
      expect(bus.router.output).toMatch(/a message waited 1 s unread; its listener is gone/);
      expect(bus.router.output).toMatch(
        new RegExp(`moved \\d+ message\\(s\\) from opensrf:service:opensrf2:localhost:${SERVICE}`),
      );
      // Everything goes to the live one now (a probe now and then may wait a second more).
      expect(await spread(10)).toEqual({ a: 10, b: 0, none: 0 });
      expect(isAlive(bus.router.pid)).toBe(true);
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "the killed listener started again: it registers, its queue is healthy again and shares the load",
    async () => {
      await startServe("b");
      await bus.router.waitFor(/opensrf2:localhost.*registered; taking requests again|taking requests again/, 10_000);
      const counts = await spread(20);
      expect(counts.none).toBe(0);
      expect(counts.b).toBeGreaterThanOrEqual(8);
      expect(counts.a).toBeGreaterThanOrEqual(8);
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "a stuck listener (SIGSTOP) is failed over, and found again by a probe once it reads (SIGCONT)",
    async () => {
      const b = serves.b!;
      const before = bus.router.output.length;
      const since = () => bus.router.output.slice(before);
      process.kill(b.pid, "SIGSTOP");
      let stopped = true;
      try {
        // The BLPOP it had in progress may still take one (into a socket nobody reads until
        // SIGCONT): that one is late, not lost; the rest are moved at once.
        const pending = Array.from({ length: 12 }, (_, i) =>
          bus.client.request(SERVICE, "work", [i, 0], { timeout: 30 }).first(),
        );
        await waitUntil(
          "the router to judge b's queue stalled",
          () => /a message waited 1 s unread/.test(since()),
          20_000,
        );
        process.kill(b.pid, "SIGCONT");
        stopped = false;
        const results = await Promise.all(pending);
        expect(results.map((v) => (v as number[])[0])).toEqual([...Array(12).keys()]);
        // Requests keep flowing; one of them is the probe that b now reads.
        await waitUntil(
          "a probe to find b reading again",
          async () => {
            await bus.client.request(SERVICE, "work", [0, 0], { timeout: 30 }).first();
            return new RegExp(`opensrf2:localhost:${SERVICE} of ${SERVICE} is read again`).test(since());
          },
          30_000,
          100,
        );
        const counts = await spread(20);
        expect(counts.b).toBeGreaterThanOrEqual(8);
      } finally {
        if (stopped) process.kill(b.pid, "SIGCONT");
      }
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "a listener stopping gracefully (TERM) under load: unregisters, nothing is lost",
    async () => {
      const b = serves.b!;
      let loading = true;
      const load = runLoad({
        total: 400,
        concurrency: 8,
        deadlineMs: 40_000,
        pauseMs: 5,
        stop: () => !loading,
        run: (i) => bus.client.request(SERVICE, "work", [i, 20], { timeout: 30 }).first(),
        check: (i, v) => Array.isArray(v) && v[0] === i,
      });
      await Bun.sleep(500);
      b.proc.kill("SIGTERM");
      expect(await b.proc.exited).toBe(0);
      serves.b = undefined;
      await Bun.sleep(500);
      loading = false;
      const r = await load;
      expect([r.lost, r.wrong, r.answered]).toEqual([0, 0, r.sent]);
      expect(bus.router.output).toMatch(/Unregistering opensrf:client:opensrf2:localhost:/);
      expect(await spread(5)).toEqual({ a: 5, b: 0, none: 0 });
    },
    TEST_TIMEOUT_MS,
  );
});
