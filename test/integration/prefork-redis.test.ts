/**
 * The listener and drones on the Redis bus, with real processes (a private redis-server with
 * OpenSRF main's accounts, our router, `osrf-prefork serve`): what is particular to Redis.
 *
 * - CONNECT pins the caller to one drone's own inbox: later requests of the session are
 *   pushed straight there (not through the router and the listener); an idle session gets
 *   the drone's STATUS 408 from that inbox.
 * - USR1 unregisters (the router answers 404 for the service) and USR2 registers again.
 * - TERM while the router lags (SIGSTOP): what it forwards after the listener unregistered,
 *   before the listener's queue was found empty, is still served; the listener exits 0.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Bus, startBus } from "../../devkit/bus.ts";
import { WORK_APP } from "../../devkit/fault-stack.ts";
import { childPids, waitUntil } from "../../devkit/load.ts";
import { settingsXml } from "../../devkit/osrf-config.ts";
import type { CliProcess } from "../../devkit/processes.ts";
import { quietLogger } from "../../devkit/quiet-logger.ts";
import { tapBus } from "../../src/bus/tap.ts";
import { Client } from "../../src/client/client.ts";
import { DeliveryError } from "../../src/client/errors.ts";
import { readCoreConfig } from "../../src/config/core.ts";
import { connectBus } from "../../src/connect/bus.ts";

const TEST_TIMEOUT_MS = 60_000;
const SERVICE = "test.redis";

// keepalive 1: an idle session is dropped (408) quickly.
const SETTINGS = settingsXml([
  { name: SERVICE, keepalive: 1, unix: { min_children: 2, max_children: 3, max_backlog_queue: 100 } },
]);

let bus: Bus;
let serve: CliProcess;

async function startServe(): Promise<CliProcess> {
  serve = await bus.startServe({
    service: SERVICE,
    app: join(bus.dir, "app.ts"),
    settings: join(bus.dir, "opensrf.xml"),
  });
  return serve;
}

/** A client whose received elements (JSON text) and sent messages are recorded. */
async function tappedClient(): Promise<{ client: Client; sent: string[]; received: string[] }> {
  const logger = quietLogger();
  const conn = await connectBus(readCoreConfig(bus.coreFile).opensrf, { resource: "t", logger, reconnect: false });
  const sent: string[] = [];
  const received: string[] = [];
  const tapped = tapBus(conn, (dir, text) => (dir === "send" ? sent : received).push(text));
  return {
    client: new Client({ transport: tapped, routerName: "router", logger, timeout: 20, ownTransport: true }),
    sent,
    received,
  };
}

beforeAll(async () => {
  bus = await startBus({ bus: "redis" });
  writeFileSync(join(bus.dir, "app.ts"), WORK_APP);
  writeFileSync(join(bus.dir, "opensrf.xml"), SETTINGS);
  await startServe();
}, TEST_TIMEOUT_MS);

afterAll(async () => {
  await serve?.stop("SIGKILL").catch(() => {});
  await bus?.stop();
}, TEST_TIMEOUT_MS);

describe("listener and drones on Redis", () => {
  test(
    "CONNECT pins the session to one drone's inbox; an idle session gets its 408 from there",
    async () => {
      const { client, sent, received } = await tappedClient();
      try {
        const session = client.session(SERVICE);
        await session.connect();
        const drone = session.remote;
        const dronePid = Number(drone.split(":")[5]);
        expect(drone).toMatch(/^opensrf:client:opensrf:localhost:[^:]+:\d+:[0-9a-f]{8}$/);
        expect(childPids(serve.pid)).toContain(dronePid);
        const first = (await session.request("work", [1, 0]).first()) as number[];
        const second = (await session.request("work", [2, 0]).first()) as number[];
        expect([first[1], second[1]]).toEqual([dronePid, dronePid]);
        // CONNECT went to the service (through the router); the requests straight to the drone.
        const tos = sent.map((t) => JSON.parse(t).to as string);
        expect(tos).toEqual([`opensrf:service:_:_:${SERVICE}`, drone, drone]);
        // keepalive 1 s: the drone ends the idle session with STATUS 408 "Disconnected on timeout".
        await waitUntil(
          "the drone's 408",
          () => received.some((t) => JSON.parse(t).body?.[0]?.__p?.payload?.__p?.statusCode === "408"),
          10_000,
        );
        const timeout = JSON.parse(received.find((t) => t.includes('"408"'))!);
        expect(timeout.from).toBe(drone);
        expect(timeout.body[0].__p).toMatchObject({
          type: "STATUS",
          threadTrace: "0",
          payload: { __c: "osrfConnectStatus", __p: { status: "Disconnected on timeout", statusCode: "408" } },
        });
      } finally {
        await client.close();
      }
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "USR1 unregisters (the router answers 404 for the service), USR2 registers again",
    async () => {
      process.kill(serve.pid, "SIGUSR1");
      await bus.router.waitFor(
        new RegExp(`Unregistering opensrf:client:\\S+ from class ${SERVICE.replace(".", "\\.")}`),
      );
      const err = await bus.client
        .request(SERVICE, "work", [1, 0])
        .first()
        .catch((e) => e);
      expect(err).toBeInstanceOf(DeliveryError);
      expect(String(err.message)).toContain("Service Not Found");
      const before = bus.onlineCount(SERVICE);
      process.kill(serve.pid, "SIGUSR2");
      await bus.onlineAfter(SERVICE, before);
      expect(((await bus.client.request(SERVICE, "work", [2, 0]).first()) as number[])[0]).toBe(2);
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "TERM while the router lags: what it forwards before the listener's queue is found empty is served; exit 0",
    async () => {
      process.kill(bus.router.pid, "SIGSTOP");
      let routerStopped = true;
      try {
        // They wait in the router's queue; the listener's unregister will queue behind them.
        const calls = Array.from({ length: 6 }, (_, i) =>
          bus.client
            .request(SERVICE, "work", [i, 50], { timeout: 30 })
            .first()
            .then(
              (v) => (v as number[])[0],
              (e: Error) => e.message,
            ),
        );
        await Bun.sleep(200);
        serve.proc.kill("SIGTERM");
        await serve.waitFor(/graceful shutdown: unregistering/, 10_000);
        // Past the listener's linger: only its wait for an empty queue still takes requests.
        await Bun.sleep(700);
        process.kill(bus.router.pid, "SIGCONT");
        routerStopped = false;
        expect(await Promise.all(calls)).toEqual([0, 1, 2, 3, 4, 5]);
        expect(await serve.proc.exited).toBe(0);
      } finally {
        if (routerStopped) process.kill(bus.router.pid, "SIGCONT");
      }
    },
    TEST_TIMEOUT_MS,
  );
});
