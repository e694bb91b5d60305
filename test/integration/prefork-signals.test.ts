/**
 * Listener signals under load, with real processes: HUP replaces drones and app code
 * without losing requests; TERM answers every accepted request and exits 0; INT stops at
 * once and leaves no drone behind. On both buses: XMPP, and Redis (where the listener reads
 * its service queue, and a graceful stop takes what the router queued before it read the
 * unregister).
 */

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Bus, startBus } from "../../devkit/bus.ts";
import { waitUntil as pollUntil } from "../../devkit/load.ts";
import { settingsXml } from "../../devkit/osrf-config.ts";
import type { CliProcess } from "../../devkit/processes.ts";
import type { Client } from "../../src/client/client.ts";
import { fetchFromEndpoint } from "../../src/metrics/endpoint.ts";
import type { PoolStatus } from "../../src/metrics/types.ts";

/** Bun's default is 5 s per test; these start processes and wait on real timers (generously: a loaded machine). */
const TEST_TIMEOUT_MS = 60_000;

const SERVICE = "test.signals";

const app = (version: string) => `
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export default {
  methods: [
    { name: "version", argc: 1, handler: async (_ctx, ms) => { await sleep(ms); return ["${version}", process.pid]; } },
  ],
};
`;

const settings = (minChildren: number, maxChildren: number) =>
  settingsXml([
    {
      name: SERVICE,
      keepalive: 5,
      unix: { min_children: minChildren, max_children: maxChildren, max_backlog_queue: 200, shutdown_timeout: 20 },
    },
  ]);

for (const kind of ["xmpp", "redis"] as const) describe(`on ${kind}`, () => signalsSuite(kind));

function signalsSuite(kind: "xmpp" | "redis"): void {
  let bus: Bus;
  let dir: string;
  let client: Client;
  const started: CliProcess[] = [];

  /** Processes titled as this service's drones, wherever they are (orphans included). */
  function droneProcs(): number[] {
    const out = Bun.spawnSync(["ps", "-eo", "pid=,stat=,args="]).stdout.toString();
    return out
      .split("\n")
      .map((l) => /^\s*(\d+)\s+(\S+)\s+(.*)$/.exec(l))
      .filter(
        (m): m is RegExpExecArray =>
          m !== null && !m[2]!.startsWith("Z") && m[3]!.startsWith(`OpenSRF Drone [${SERVICE}]`),
      )
      .map((m) => Number(m[1]));
  }

  const waitUntil = (what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> =>
    pollUntil(what, cond, timeoutMs, 25);

  /** Status socket of each listener started by {@link startServe}. */
  const statusSockets = new Map<CliProcess, string>();

  /** Messages the listener has received from the router: handed to drones or in its backlog. */
  async function received(serve: CliProcess): Promise<number> {
    const endpoint = { kind: "socket", path: statusSockets.get(serve)! } as const;
    const s = (await (await fetchFromEndpoint(endpoint, "/status")).json()) as PoolStatus;
    return s.accepted + s.listenQueue;
  }

  async function startServe(): Promise<CliProcess> {
    const socket = join(dir, `status-${statusSockets.size + 1}.sock`);
    const proc = await bus.startServe(
      { service: SERVICE, app: join(dir, "app.ts"), settings: join(dir, "opensrf.xml") },
      ["--status-socket", socket],
    );
    started.push(proc);
    statusSockets.set(proc, socket);
    return proc;
  }

  type Outcome = { ok: [string, number] } | { error: string };

  function call(ms: number): Promise<Outcome> {
    return client
      .request(SERVICE, "version", [ms])
      .first()
      .then(
        (v) => ({ ok: v as [string, number] }),
        (e: Error) => ({ error: `${e.name}: ${e.message}` }),
      );
  }

  beforeAll(async () => {
    bus = await startBus({ bus: kind });
    ({ client, dir } = bus);
    writeFileSync(join(dir, "app.ts"), app("v1"));
    writeFileSync(join(dir, "opensrf.xml"), settings(2, 4));
  }, 30_000);

  afterAll(async () => {
    await client?.close();
    for (const p of started) await p.stop("SIGKILL");
    await bus?.stop();
  }, TEST_TIMEOUT_MS);

  describe("signals", () => {
    test(
      "HUP under load: no request lost, drones replaced, the new code answers afterwards",
      async () => {
        const serve = await startServe();
        const before = (await call(0)) as { ok: [string, number] };
        expect(before.ok[0]).toBe("v1");
        const oldDrones = droneProcs();

        const load = Array.from({ length: 24 }, (_, i) => call(100 + (i % 4) * 50));
        await Bun.sleep(150);
        writeFileSync(join(dir, "app.ts"), app("v2"));
        writeFileSync(join(dir, "opensrf.xml"), settings(5, 6));
        process.kill(serve.pid, "SIGHUP");
        const more = Array.from({ length: 12 }, () => call(50));
        const results = await Promise.all([...load, ...more]);

        expect(results.filter((r) => "error" in r)).toEqual([]);
        await waitUntil("old drones gone", () => oldDrones.every((p) => !droneProcs().includes(p)));
        const after = (await call(0)) as { ok: [string, number] };
        expect(after.ok[0]).toBe("v2");
        expect(oldDrones).not.toContain(after.ok[1]);
        // The settings were re-read too: more drones than the old max_children 4.
        await waitUntil("min_children 5", () => droneProcs().length >= 5);
        expect(await serve.stop("SIGTERM")).toBe(0);
        writeFileSync(join(dir, "opensrf.xml"), settings(2, 4));
      },
      TEST_TIMEOUT_MS,
    );

    test(
      "TERM under load: every accepted request is answered, exit 0, no drone left",
      async () => {
        writeFileSync(join(dir, "app.ts"), app("v1"));
        const serve = await startServe();
        const load = Array.from({ length: 30 }, () => call(300));
        // TERM once the listener has all of them (running or queued), however long the bus takes.
        await waitUntil("all 30 requests at the listener", async () => (await received(serve)) >= 30);
        serve.proc.kill("SIGTERM");
        const results = await Promise.all(load);
        // Sent before TERM, all reached the listener: served (backlog included), none lost.
        expect(results.filter((r) => "error" in r)).toEqual([]);
        expect(await serve.proc.exited).toBe(0);
        expect(serve.output).toContain("un-registering with router");
        await waitUntil("drones gone", () => droneProcs().length === 0, 5000);
      },
      TEST_TIMEOUT_MS,
    );

    test(
      "INT: immediate stop, exit 0, drones killed",
      async () => {
        const serve = await startServe();
        await waitUntil("drones", () => droneProcs().length >= 2);
        const busy = call(10_000);
        await waitUntil("the request at the listener", async () => (await received(serve)) >= 1);
        serve.proc.kill("SIGINT");
        expect(await serve.proc.exited).toBe(0);
        // Stopped at once: the running request (10 s) is answered 503 shutting down, neither
        // finished (as TERM would) nor left to time out.
        expect(await busy).toEqual({
          error: expect.stringContaining(`503: Service unavailable: ${SERVICE} is shutting down`),
        });
        await waitUntil("drones gone", () => droneProcs().length === 0, 3000);
      },
      TEST_TIMEOUT_MS,
    );

    // Last: the router keeps the dead listener's registration until a forward bounces.
    test(
      "drones exit when their listener dies (IPC channel closed)",
      async () => {
        const serve = await startServe();
        await waitUntil("drones", () => droneProcs().length >= 2);
        serve.proc.kill("SIGKILL");
        await serve.proc.exited;
        await waitUntil("orphaned drones to exit", () => droneProcs().length === 0, 5000);
      },
      TEST_TIMEOUT_MS,
    );
  });
}
