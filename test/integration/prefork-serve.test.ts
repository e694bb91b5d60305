/**
 * `osrf-prefork serve` end to end: a real XMPP server, our router, the listener and its
 * drones as real processes, called through the Client. Registration, process titles,
 * pool growth and shrinking, drone recycling, sessions and keepalive, USR1/USR2.
 */

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { type Bus, startBus } from "../../devkit/bus.ts";
import { waitUntil as pollUntil } from "../../devkit/load.ts";
import { CliProcess, runCli } from "../../devkit/processes.ts";
import { quietLogger } from "../../devkit/quiet-logger.ts";
import type { XmppServer } from "../../devkit/xmpp-server.ts";
import type { Client } from "../../src/client/client.ts";
import { readCoreConfig } from "../../src/config/core.ts";
import { decodeBody, encodeBody } from "../../src/protocol/codec.ts";
import { makeResource } from "../../src/protocol/ids.ts";
import { connect } from "../../src/protocol/messages.ts";
import type { OsrfMessage } from "../../src/protocol/types.ts";
import { XmppConnection } from "../../src/xmpp/connection.ts";
import { clientConnectionOptions } from "../../src/xmpp/from-config.ts";
import type { Stanza } from "../../src/xmpp/types.ts";

/** Bun's default is 5 s per test; these start processes and wait on real timers. */
const TEST_TIMEOUT_MS = 60_000;

const SERVICE = "test.pool";

// A service module with no imports but node's: a plain object is checked like
// defineService's result. Its hooks record each drone's start and exit in HOOK_LOG.
const app = (hookLog: string) => `
import { appendFileSync, existsSync } from "node:fs";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export default {
  name: "${SERVICE}",
  childInit: () => appendFileSync(${JSON.stringify(hookLog)}, "init " + process.pid + "\\n"),
  childExit: () => appendFileSync(${JSON.stringify(hookLog)}, "exit " + process.pid + "\\n"),
  methods: [
    { name: "pid", handler: () => process.pid },
    { name: "sleep", argc: 1, handler: async (_ctx, ms) => { await sleep(ms); return process.pid; } },
    // Holds its drone until the test creates the file.
    { name: "gate", argc: 1, handler: async (_ctx, file) => { while (!existsSync(file)) await sleep(20); return process.pid; } },
    { name: "put", argc: 1, handler: (ctx, v) => { ctx.session.state.v = v; return process.pid; } },
    { name: "get", handler: (ctx) => [ctx.session.state.v ?? null, process.pid] },
    // A call to another drone, answered on this drone's own connection.
    { name: "relay", handler: async (ctx) => [process.pid, await ctx.call("${SERVICE}", "pid").first()] },
  ],
};
`;

// A stand-in for the settings server: answers host_config.get for "testhost" only.
const SETTINGS_APP = `
export default {
  methods: [
    {
      name: "opensrf.settings.host_config.get",
      argc: 1,
      handler: (_ctx, host) => host !== "testhost" ? {} : {
        apps: { "test.bus": { keepalive: 3, unix_config: { min_children: 1, max_children: 2, max_requests: 77 } } },
      },
    },
  ],
};
`;

const SETTINGS = `<?xml version="1.0"?>
<opensrf version="0.0.3">
  <default>
    <apps>
      <${SERVICE}>
        <keepalive>2</keepalive>
        <language>typescript</language>
        <unix_config>
          <min_children>2</min_children>
          <max_children>4</max_children>
          <max_requests>6</max_requests>
          <max_requests_jitter>0</max_requests_jitter>
          <min_spare_children>1</min_spare_children>
          <max_spare_children>2</max_spare_children>
          <spare_grace>1</spare_grace>
          <max_backlog_queue>50</max_backlog_queue>
        </unix_config>
      </${SERVICE}>
      <opensrf.settings><unix_config><min_children>1</min_children><max_children>1</max_children></unix_config></opensrf.settings>
    </apps>
  </default>
  <hosts><testhost><activeapps><appname>${SERVICE}</appname></activeapps></testhost></hosts>
</opensrf>
`;

let bus: Bus;
let xmpp: XmppServer;
let coreFile: string;
let router: CliProcess;
let serve: CliProcess;
let client: Client;
let dir: string;
let hookLog: string;

interface Proc {
  pid: number;
  comm: string;
  args: string;
}

function psRows(selector: string[]): Proc[] {
  const out = Bun.spawnSync(["ps", "-o", "pid=,stat=,comm=,args=", ...selector]).stdout.toString();
  return out
    .split("\n")
    .map((l) => /^\s*(\d+)\s+(\S+)\s+(\S+)\s+(.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null && !m[2]!.startsWith("Z"))
    .map((m) => ({ pid: Number(m[1]), comm: m[3]!, args: m[4]! }));
}

/** Live drone processes: children of the listener. */
const drones = () => psRows(["--ppid", String(serve.pid)]);

const waitUntil = (what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> =>
  pollUntil(what, cond, timeoutMs, 50, () => serve?.output.slice(-3000) ?? "");

async function classList(): Promise<string[]> {
  return (await client.request("router", "opensrf.router.info.class.list").first()) as string[];
}

beforeAll(async () => {
  bus = await startBus();
  ({ xmpp, coreFile, router, client, dir } = bus);
  hookLog = join(dir, "hooks.log");
  writeFileSync(join(dir, "app.ts"), app(hookLog));
  writeFileSync(join(dir, "settings-app.ts"), SETTINGS_APP);
  writeFileSync(join(dir, "opensrf.xml"), SETTINGS);
  serve = await bus.startServe({ service: SERVICE, app: join(dir, "app.ts"), settings: join(dir, "opensrf.xml") });
}, 30_000);

afterAll(async () => {
  await client?.close();
  if (serve) expect(await serve.stop("SIGTERM")).toBe(0);
  await bus?.stop();
}, TEST_TIMEOUT_MS);

describe("serve", () => {
  test(
    "registers with the router and answers through drones",
    async () => {
      expect(await classList()).toContain(SERVICE);
      const pid = (await client.request(SERVICE, "pid").first()) as number;
      await waitUntil("min_children drones", () => drones().length >= 2);
      expect(drones().map((d) => d.pid)).toContain(pid);
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "ps shows the OpenSRF process titles",
    async () => {
      const [listener] = psRows(["-p", String(serve.pid)]);
      expect(listener!.args).toStartWith(`OpenSRF Listener [${SERVICE}]`);
      expect(listener!.comm).toBe("osrf-listener");
      await waitUntil("drones logged in", () => drones().length >= 2 && drones().every((d) => d.comm === "osrf-drone"));
      for (const d of drones()) expect(d.args).toStartWith(`OpenSRF Drone [${SERVICE}]`);
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "a drone is replaced after max_requests (6)",
    async () => {
      const served = new Map<number, number>();
      for (let i = 0; i < 20; i++) {
        const pid = (await client.request(SERVICE, "pid").first()) as number;
        served.set(pid, (served.get(pid) ?? 0) + 1);
      }
      expect(served.size).toBeGreaterThanOrEqual(4);
      for (const n of served.values()) expect(n).toBeLessThanOrEqual(6);
      expect(serve.output).not.toMatch(/died|exit during start-up/);
      // childInit ran in every drone that served, childExit in every one that left.
      const retired = [...served].filter(([, n]) => n === 6).map(([pid]) => pid);
      expect(retired.length).toBeGreaterThanOrEqual(2);
      await waitUntil("childExit of retired drones", () =>
        retired.every((pid) => readFileSync(hookLog, "utf8").includes(`exit ${pid}\n`)),
      );
      for (const pid of served.keys()) expect(readFileSync(hookLog, "utf8")).toContain(`init ${pid}\n`);
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "grows to max_children under load and shrinks back to the spare bounds",
    async () => {
      let peak = 0;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          peak = Math.max(peak, drones().length);
          await Bun.sleep(30);
        }
      })();
      // Every request holds its drone until the gate opens, so four drones take one each and
      // four wait in the backlog, however long spawning takes on this machine.
      const gate = join(dir, "grow.gate");
      const calls = Array.from({ length: 8 }, () => client.request(SERVICE, "gate", [gate]).first());
      await waitUntil("max_children drones", () => drones().length === 4, 20_000);
      writeFileSync(gate, "");
      const pids = (await Promise.all(calls)) as number[];
      sampling = false;
      await sampler;
      expect(pids).toHaveLength(8);
      expect(peak).toBe(4);
      expect(new Set(pids).size).toBe(4);
      // All idle: 4 > max_spare_children 2 for spare_grace (1 s), so two retire, one a
      // second; min_children 2 stay.
      await waitUntil("pool back to 2 drones", () => drones().length === 2);
      await Bun.sleep(1200); // a maintenance tick later, still within bounds
      expect(drones().length).toBe(2);
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "a stateful session stays on one drone",
    async () => {
      const session = client.session(SERVICE);
      await session.connect();
      // Settings come from host "testhost"; the resource names this machine, as C's does.
      expect((session as unknown as { remote: string }).remote).toContain(`${SERVICE}_drone_${hostname()}_`);
      const pid = (await session.request("put", ["cart"]).first()) as number;
      // Busy the other drones meanwhile: the session must not move.
      const noise = Array.from({ length: 3 }, () => client.request(SERVICE, "sleep", [300]).first());
      for (let i = 0; i < 4; i++) expect(await session.request("get").first()).toEqual(["cart", pid]);
      await Promise.all(noise);
      session.disconnect();
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "a drone's own calls are answered on its connection, inside a session too",
    async () => {
      const [me, other] = (await client.request(SERVICE, "relay").first()) as [number, number];
      expect(me).not.toBe(other);
      const session = client.session(SERVICE);
      await session.connect();
      const pid = (await session.request("put", ["x"]).first()) as number;
      const [inSession, called] = (await session.request("relay").first()) as [number, number];
      expect(inSession).toBe(pid);
      expect(called).not.toBe(pid);
      expect(await session.request("get").first()).toEqual(["x", pid]);
      session.disconnect();
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "an idle session ends after keepalive with STATUS 408 from the drone",
    async () => {
      const core = readCoreConfig(coreFile).opensrf;
      const logger = quietLogger();
      const raw = await XmppConnection.connect({
        ...clientConnectionOptions(core, makeResource("", "raw"), logger),
        reconnect: false,
      });
      const got: Array<{ from: string; msg: OsrfMessage; at: number }> = [];
      raw.onStanza((s: Stanza) => {
        for (const msg of decodeBody(s.body)) got.push({ from: s.from, msg, at: performance.now() });
      });
      try {
        const sentAt = performance.now();
        raw.send({
          to: `router@${xmpp.domain}/${SERVICE}`,
          thread: "keepalive-test-thread",
          body: encodeBody([connect(0)]),
        });
        await waitUntil("408", () => got.length >= 2, 8000);
        const [ok, timeout] = got;
        expect(ok!.msg).toMatchObject({ type: "STATUS", payload: { statusCode: 200 } });
        expect(ok!.from).toContain(`${SERVICE}_drone_`);
        expect(timeout!.msg).toMatchObject({
          type: "STATUS",
          threadTrace: 0,
          payload: { className: "osrfConnectStatus", statusCode: 408, status: "Disconnected on timeout" },
        });
        expect(timeout!.from).toBe(ok!.from);
        // Not before the 2 s keepalive: counted from the CONNECT leaving here, which the drone's
        // timer can only follow (measured from the 200's arrival, a late 200 shrank it).
        expect(timeout!.at - sentAt).toBeGreaterThanOrEqual(1900);
      } finally {
        await raw.close();
      }
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "--settings-from-bus asks opensrf.settings host_config.get for --host",
    async () => {
      const common = ["--config", coreFile, "--host", "testhost", "--logfile", "stderr", "--loglevel", "3"];
      const settingsServer = CliProcess.start([
        "serve",
        "--service",
        "opensrf.settings",
        "--app",
        join(dir, "settings-app.ts"),
        "--settings",
        join(dir, "opensrf.xml"),
        ...common,
      ]);
      let fromBus: CliProcess | undefined;
      try {
        await settingsServer.untilReady(router.waitFor(/class opensrf\.settings online/, 20_000));
        fromBus = CliProcess.start([
          "serve",
          "--service",
          "test.bus",
          "--app",
          join(dir, "app.ts"),
          "--settings-from-bus",
          ...common,
        ]);
        await fromBus.waitFor(
          /Prefork launching drones for test\.bus with max_requests=77, min_children=1, max_children=2\b/,
          20_000,
        );
        await router.waitFor(/class test\.bus online/, 20_000);
        expect(typeof (await client.request("test.bus", "pid").first())).toBe("number");
      } finally {
        if (fromBus) expect(await fromBus.stop("SIGTERM")).toBe(0);
        expect(await settingsServer.stop("SIGTERM")).toBe(0);
      }
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "start-up errors: one line naming the problem, exit code 2",
    async () => {
      const base = ["serve", "--service", SERVICE, "--config", coreFile, "--host", "testhost"];
      const missing = await runCli([...base, "--app", join(dir, "nope.ts"), "--settings", join(dir, "opensrf.xml")]);
      expect(missing.code).toBe(2);
      expect(missing.stderr.trim()).toBe(
        `osrf-prefork: ${SERVICE}: service module ${join(dir, "nope.ts")} does not exist (check --app)`,
      );
      const bad = join(dir, "bad.xml");
      writeFileSync(bad, SETTINGS.replace("<min_children>2</min_children>", "<min_children>lots</min_children>"));
      const invalid = await runCli([...base, "--app", join(dir, "app.ts"), "--settings", bad]);
      expect(invalid.code).toBe(2);
      expect(invalid.stderr.trim().split("\n")).toHaveLength(1);
      expect(invalid.stderr).toContain(`/apps/${SERVICE}/unix_config/min_children: invalid value "lots"`);
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "USR1 unregisters and USR2 registers again (router class list)",
    async () => {
      process.kill(serve.pid, "SIGUSR1");
      await waitUntil("class gone", async () => !(await classList()).includes(SERVICE));
      const online = () => bus.onlineCount(SERVICE);
      const before = online();
      process.kill(serve.pid, "SIGUSR2");
      await waitUntil("class back", async () => (await classList()).includes(SERVICE));
      // The router opens its connection for the class again before it can forward.
      await waitUntil("router class connection", () => online() > before);
      expect(typeof (await client.request(SERVICE, "pid").first())).toBe("number");
    },
    TEST_TIMEOUT_MS,
  );
});
