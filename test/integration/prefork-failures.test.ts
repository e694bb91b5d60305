/**
 * The prefork server when things go wrong: a drone killed mid-request, a hung request,
 * a full backlog, the backlog's order, a drone over its memory limit, messages that do
 * not come from a router. Real bus server, router, listener and drones, on both buses
 * (XMPP, and Redis where the listener reads its service queue).
 */

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { type Bus, startBus } from "../../devkit/bus.ts";
import { childPids, waitUntil as pollUntil } from "../../devkit/load.ts";
import { settingsXml } from "../../devkit/osrf-config.ts";
import type { CliProcess } from "../../devkit/processes.ts";
import { quietLogger } from "../../devkit/quiet-logger.ts";
import type { Client } from "../../src/client/client.ts";
import { RequestError } from "../../src/client/errors.ts";
import { readCoreConfig } from "../../src/config/core.ts";
import { connectBus } from "../../src/connect/bus.ts";
import { decodeBody, encodeBody } from "../../src/protocol/codec.ts";
import { makeResource } from "../../src/protocol/ids.ts";
import { request } from "../../src/protocol/messages.ts";
import { Texts } from "../../src/protocol/status.ts";

/** Bun's default is 5 s per test; these start processes and wait on real timers. */
const TEST_TIMEOUT_MS = 60_000;

const FAIL = "test.fail";
const ORDER = "test.order";
const BACKLOG = "test.backlog";
const CRASH = "test.crash";

// Every drone fails in childInit: start-up failures, backoff, and callers still answered.
const CRASH_APP = `
export default {
  methods: [{ name: "pid", handler: () => process.pid }],
  childInit() { throw new Error("no database today"); },
};
`;

const APP = `
import { existsSync, writeFileSync } from "node:fs";
let seq = 0;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const hog = [];
export default {
  methods: [
    { name: "pid", handler: () => process.pid },
    { name: "sleep", argc: 1, handler: async (_ctx, ms) => { await sleep(ms); return process.pid; } },
    // Tells the test which drone is running it, then blocks.
    { name: "block", argc: 2, handler: async (_ctx, file, ms) => { writeFileSync(file, String(process.pid)); await sleep(ms); return "finished"; } },
    { name: "hang", handler: () => new Promise(() => {}) },
    // Holds its drone until the test creates the file.
    { name: "gate", argc: 1, handler: async (_ctx, file) => { while (!existsSync(file)) await sleep(20); return process.pid; } },
    { name: "seq", argc: 1, handler: async (_ctx, n) => { const mine = ++seq; await sleep(20); return [n, mine]; } },
    { name: "grow", argc: 1, handler: (_ctx, mb) => { hog.push(Buffer.alloc(mb * 1024 * 1024, 1)); return process.pid; } },
  ],
};
`;

// Active: FAIL and ORDER; BACKLOG and CRASH are only configured (their tests name them to serve).
const SETTINGS = settingsXml(
  [
    {
      name: FAIL,
      unix: { min_children: 1, max_children: 2, max_backlog_queue: 2, request_timeout: 2, max_memory_mb: 96 },
    },
    { name: BACKLOG, unix: { min_children: 1, max_children: 2, max_backlog_queue: 2 } },
    { name: ORDER, unix: { min_children: 1, max_children: 1, max_backlog_queue: 50 } },
    { name: CRASH, unix: { min_children: 2, max_children: 2, crash_backoff_max: 2 } },
  ],
  { active: [FAIL, ORDER] },
);

for (const kind of ["xmpp", "redis"] as const) describe(`on ${kind}`, () => failuresSuite(kind));

function failuresSuite(kind: "xmpp" | "redis"): void {
  let bus: Bus;
  let coreFile: string;
  let dir: string;
  const serves = new Map<string, CliProcess>();
  let client: Client;

  /** Live drones of a service: children of its listener. */
  const dronePids = (service: string): number[] => childPids(serves.get(service)!.pid);

  const waitUntil = (what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> =>
    pollUntil(what, cond, timeoutMs, 25);

  /** Settles a request: its results, or the RequestError it failed with. */
  async function settle(p: Promise<unknown>): Promise<{ ok: unknown } | { code: number; text: string }> {
    try {
      return { ok: await p };
    } catch (e) {
      if (e instanceof RequestError) return { code: e.statusCode, text: e.statusText };
      throw e;
    }
  }

  async function startServe(service: string, appFile = "app.ts"): Promise<void> {
    serves.set(service, await bus.startServe({ service, app: join(dir, appFile), settings: join(dir, "opensrf.xml") }));
  }

  beforeAll(async () => {
    bus = await startBus({ bus: kind });
    ({ coreFile, client, dir } = bus);
    writeFileSync(join(dir, "app.ts"), APP);
    writeFileSync(join(dir, "crash.ts"), CRASH_APP);
    writeFileSync(join(dir, "opensrf.xml"), SETTINGS);
    await Promise.all([startServe(FAIL), startServe(ORDER)]);
  }, 30_000);

  afterAll(async () => {
    await client?.close();
    for (const s of serves.values()) expect(await s.stop("SIGTERM")).toBe(0);
    await bus?.stop();
  }, TEST_TIMEOUT_MS);

  /** Waits until the drone running `block` has written its pid to `marker`; that pid. */
  async function blockingDrone(marker: string): Promise<number> {
    await waitUntil("the drone to start the request", () => {
      try {
        return readFileSync(marker, "utf8").length > 0;
      } catch {
        return false;
      }
    });
    return Number(readFileSync(marker, "utf8"));
  }

  describe("failures", () => {
    test(
      "kill -9 of a busy drone: the caller gets an error status, not silence; the pool returns to min_children",
      async () => {
        const marker = join(dir, "busy.pid");
        const pending = settle(client.request(FAIL, "block", [marker, 30_000]).first());
        const pid = await blockingDrone(marker);
        process.kill(pid, "SIGKILL");
        // The request would block 30 s: this answer can only come from the pool seeing the death.
        const r = await pending;
        expect(r).toMatchObject({ code: 500 });
        expect((r as { text: string }).text).toContain(
          `${FAIL}: the worker (pid ${pid}) running block died (killed by SIGKILL)`,
        );
        await waitUntil("min_children", () => dronePids(FAIL).length === 1 && !dronePids(FAIL).includes(pid));
        expect(typeof (await client.request(FAIL, "pid").first())).toBe("number");
      },
      TEST_TIMEOUT_MS,
    );

    test(
      "request_timeout: a hung drone is killed and its caller answered",
      async () => {
        const t0 = performance.now();
        const r = await settle(client.request(FAIL, "hang").first());
        const elapsed = performance.now() - t0;
        expect(r).toMatchObject({ code: 500 });
        expect((r as { text: string }).text).toMatch(
          /hang did not finish within 2 s \(request_timeout\); its worker \(pid \d+\) was stopped/,
        );
        expect(elapsed).toBeGreaterThanOrEqual(1900);
        await waitUntil("pool refilled", () => dronePids(FAIL).length >= 1);
      },
      TEST_TIMEOUT_MS,
    );

    test(
      "backlog full: the caller gets STATUS 503 instead of silence",
      async () => {
        // max_children 2 run, max_backlog_queue 2 wait, the rest are refused. Nothing finishes
        // before the refusals are in (the gate opens then), however slowly the six arrive: a
        // service of its own, with no request_timeout to stop the held drones meanwhile.
        await startServe(BACKLOG);
        const gate = join(dir, "backlog.gate");
        let refusals = 0;
        const calls = Array.from({ length: 6 }, () =>
          settle(client.request(BACKLOG, "gate", [gate]).first()).then((r) => {
            if ("code" in r) refusals++;
            return r;
          }),
        );
        await waitUntil("two refusals", () => refusals >= 2, 20_000);
        writeFileSync(gate, "");
        const results = await Promise.all(calls);
        const refused = results.filter((r) => "code" in r);
        expect(refused).toEqual([
          { code: 503, text: Texts.backlogFull },
          { code: 503, text: Texts.backlogFull },
        ]);
        expect(results.filter((r) => "ok" in r)).toHaveLength(4);
      },
      TEST_TIMEOUT_MS,
    );

    test(
      "the backlog is served in arrival order",
      async () => {
        // One drone: everything after the first waits in the backlog.
        const results = (await Promise.all(
          Array.from({ length: 12 }, (_, i) => client.request(ORDER, "seq", [i]).first()),
        )) as Array<[number, number]>;
        const seqs = results.map(([, s]) => s);
        expect(results.map(([n]) => n)).toEqual([...Array(12).keys()]);
        for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBe(seqs[i - 1]! + 1);
      },
      TEST_TIMEOUT_MS,
    );

    test(
      "max_memory_mb: a drone above it retires after its request",
      async () => {
        const pid = (await client.request(FAIL, "grow", [160]).first()) as number;
        await waitUntil("the drone to exit", () => !dronePids(FAIL).includes(pid));
        await serves
          .get(FAIL)!
          .waitFor(
            new RegExp(
              `drone ${pid} of ${FAIL.replace(".", "\\.")} retires: memory: private memory [\\d.]+ MB is above max_memory_mb 96`,
            ),
            5000,
          );
        const next = (await client.request(FAIL, "pid").first()) as number;
        expect(next).not.toBe(pid);
      },
      TEST_TIMEOUT_MS,
    );

    test(
      "SIGTERM to a busy drone: it finishes the request, then exits and is replaced",
      async () => {
        const marker = join(dir, "term.pid");
        const pending = settle(client.request(FAIL, "block", [marker, 800]).first());
        const pid = await blockingDrone(marker);
        process.kill(pid, "SIGTERM");
        expect(await pending).toEqual({ ok: "finished" });
        await waitUntil(
          "the drone to exit and be replaced",
          () => !dronePids(FAIL).includes(pid) && dronePids(FAIL).length >= 1,
        );
        expect(serves.get(FAIL)!.output).not.toContain(`drone ${pid} of ${FAIL} died`);
      },
      TEST_TIMEOUT_MS,
    );

    test(
      "drones failing at start-up: clear warning, growing backoff, callers answered",
      async () => {
        await startServe(CRASH, "crash.ts");
        const serve = serves.get(CRASH)!;
        const r = await settle(client.request(CRASH, "pid").first());
        expect(r).toMatchObject({ code: 500 });
        expect((r as { text: string }).text).toMatch(
          /^test\.crash: the worker \(pid \d+\) given this request died during start-up \(exit code 1\)$/,
        );
        await serve.waitFor(
          /WARN:\d+:listener:0:\] drones for test\.crash exit during start-up \(last: \d+ exit code 1: init_failed: no database today\); next spawn in 2 s/,
          15_000,
        );
        expect(serve.output).toMatch(/next spawn in 1 s/);
      },
      TEST_TIMEOUT_MS,
    );

    test(
      "messages that do not come from a router are dropped",
      async () => {
        const listener = await listenerAddress(ORDER);
        const logger = quietLogger();
        const raw = await connectBus(readCoreConfig(coreFile).opensrf, {
          resource: makeResource("", "raw"),
          logger,
          reconnect: false,
        });
        const got: unknown[] = [];
        raw.onMessage((s) => got.push(...decodeBody(s.body)));
        try {
          raw.send({ to: listener, thread: "not-from-a-router", body: encodeBody([request(1, "seq", [1])]) });
          await serves
            .get(ORDER)!
            .waitFor(new RegExp(`dropping a message from ${escapeRe(raw.address)}: not one of the routers`), 5000);
          await Bun.sleep(300);
          expect(got).toEqual([]);
        } finally {
          await raw.close();
        }
      },
      TEST_TIMEOUT_MS,
    );
  });

  /**
   * The listener's own address. XMPP: its JID, as the router's stats name it (the resource
   * names this machine, as C's does, though the settings come from host "testhost"). Redis:
   * its inbox, as it logs it at start (the router's stats name service queues).
   */
  async function listenerAddress(service: string): Promise<string> {
    if (kind === "redis") {
      const m = new RegExp(`Launching osrf_forker for app ${escapeRe(service)} as (\\S+)`).exec(
        serves.get(service)!.output,
      );
      return m![1]!;
    }
    const stats = (await client.request("router", "opensrf.router.info.stats.class", [service]).first()) as Record<
      string,
      number
    >;
    const jid = Object.keys(stats)[0]!;
    expect(jid).toContain(`${service}_listener_${hostname()}_`);
    return jid;
  }

  function escapeRe(text: string): string {
    return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  }
}
