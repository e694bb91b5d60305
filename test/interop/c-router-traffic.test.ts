/**
 * What our service sends the REAL C router (OpenSRF 3.3) under a steady load on the stock
 * pool settings, with drones replaced all the time: nothing but its one `register`. Every
 * request the router reads comes from the caller; the listener does not re-register when its
 * pool is full or its backlog grows, drones starting, retiring or being replaced send it
 * nothing, and no bounce of a message to a departed drone reaches it. (The listener's
 * registration probe is an iq, which the router reads and drops without a log line: one a
 * second, it is not counted here.) Counted from the router's own debug log, which names the
 * sender of every message it reads; no timing is asserted.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { connectTestClient } from "../../devkit/client.ts";
import { childPids } from "../../devkit/load.ts";
import { ensurePeer, peerAvailableForTests } from "../../devkit/opensrf/peer.ts";
import { type OpenSrfStack, startOpenSrfStack } from "../../devkit/opensrf/stack.ts";
import type { Client } from "../../src/client/client.ts";

const SERVICE = "opensrf.tsmath";
const MATH = resolve(import.meta.dir, "../../examples/math.ts");
/** The C router's debug line for every message it reads, on its own connection and on each class's. */
const READ = /investigating message from (\S+)/;
const HAVE_PEER = peerAvailableForTests("test/interop/c-router-traffic.test.ts");

describe.skipIf(!HAVE_PEER)("our service's traffic to the real C router", () => {
  let stack: OpenSrfStack;
  let client: Client;
  let servedAt = 0;

  beforeAll(async () => {
    // A cold cache means apt plus a full autotools build: minutes, once per machine.
    await ensurePeer();
    stack = await startOpenSrfStack({
      cServices: [],
      // The router logs each message it reads at debug level (4).
      loglevel: 4,
      services: [
        {
          name: SERVICE,
          language: "typescript",
          implementation: MATH,
          // opensrf.xml.example's pool for opensrf.math, with drones replaced every 20 requests.
          unixConfig: { minChildren: 5, maxChildren: 15, minSpareChildren: 2, maxSpareChildren: 5, maxRequests: 20 },
        },
      ],
    });
    servedAt = performance.now();
    await stack.servePrefork(SERVICE, MATH);
    client = await connectTestClient(stack.paths.core, { timeout: 30 });
  }, 15 * 60_000);

  afterAll(async () => {
    await client?.close();
    await stack?.stop();
  }, 60_000);

  test("the router reads one message per request from the caller and only the register from our listener", async () => {
    const listener = stack.listenerPid(SERVICE);
    const drones = new Set<number>();
    const poll = setInterval(() => {
      for (const p of childPids(listener)) drones.add(p);
    }, 20);
    let calls = 0;
    let answered = 0;
    const loop = async (n: number) => {
      for (let i = 0; i < n; i++) {
        calls++;
        const r = await client.request(SERVICE, "add", [i, 1]).first();
        if (r === i + 1) answered++;
      }
    };
    try {
      // Below max_children, then above it (every drone busy, requests in the listener's backlog).
      await Promise.all(Array.from({ length: 8 }, () => loop(40)));
      await Promise.all(Array.from({ length: 24 }, () => loop(20)));
    } finally {
      clearInterval(poll);
    }
    const elapsedS = (performance.now() - servedAt) / 1000;
    expect(answered).toBe(calls);
    // The load did what it is for: far more drones came and went than the pool holds.
    expect(drones.size).toBeGreaterThan(30);

    const log = readFileSync(join(stack.paths.logDir, "router.log"), "utf8");
    const from = { caller: 0, listener: 0, drones: 0 };
    const others: string[] = [];
    for (const line of log.split("\n")) {
      const sender = READ.exec(line)?.[1];
      if (!sender) continue;
      // The caller's resource (connectTestClient): `_test_<time>_<our pid>`.
      if (sender.includes("/_test_") && sender.endsWith(`_${process.pid}`)) from.caller++;
      else if (sender.includes(`/${SERVICE}_listener_`)) from.listener++;
      else if (sender.includes(`/${SERVICE}_drone_`)) from.drones++;
      else others.push(sender);
    }
    const summary = JSON.stringify({ calls, from, elapsedS: Math.round(elapsedS), others: others.slice(0, 5) });
    expect(from.caller, summary).toBe(calls);
    expect(from.drones, summary).toBe(0);
    // The register at start, and one per register_interval (30 s) the test may have lasted.
    expect(from.listener, summary).toBeGreaterThanOrEqual(1);
    expect(from.listener, summary).toBeLessThanOrEqual(1 + Math.floor(elapsedS / 30));
  }, 120_000);
});
