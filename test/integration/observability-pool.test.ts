/**
 * Observability of a running pool: real XMPP server, our router, `osrf-prefork serve` with
 * a status socket (command line) and a status port (opensrf.xml), JSON logs everywhere.
 * Counters must move as requests, crashes and overloads happen; `/metrics` must parse with
 * a real Prometheus text parser; `osrf-prefork status` must show the pool as it is.
 */

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import parse from "parse-prometheus-text-format";
import { type Bus, startBus } from "../../devkit/bus.ts";
import { childPids, waitUntil as pollUntil } from "../../devkit/load.ts";
import { settingsXml } from "../../devkit/osrf-config.ts";
import { freePort } from "../../devkit/ports.ts";
import { type CliProcess, runCli } from "../../devkit/processes.ts";
import type { Client } from "../../src/client/client.ts";
import { RequestError } from "../../src/client/errors.ts";
import { defaultSocketCandidates } from "../../src/metrics/default-socket.ts";
import { fetchFromEndpoint, statusSocketPath } from "../../src/metrics/endpoint.ts";
import { MetricName } from "../../src/metrics/render.ts";
import type { PoolStatus, StatusEndpoint } from "../../src/metrics/types.ts";
import { VERSION } from "../../src/version.ts";

/** Bun's default is 5 s per test; these start processes and wait on real timers. */
const TEST_TIMEOUT_MS = 40_000;

const SERVICE = "test.obs";
/** Active on the host but never started: `status --all` must say it has no endpoint. */
const IDLE_SERVICE = "test.quiet";

const APP = `
import { writeFileSync } from "node:fs";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export default {
  methods: [
    { name: "add", argc: 2, handler: (_ctx, a, b) => a + b },
    { name: "boom", handler: () => { throw new Error("kaboom"); } },
    { name: "sleep", argc: 1, handler: async (_ctx, ms) => { await sleep(ms); return process.pid; } },
    { name: "die", handler: () => process.exit(3) },
    { name: "block", argc: 2, handler: async (_ctx, file, ms) => { writeFileSync(file, String(process.pid)); await sleep(ms); return "finished"; } },
  ],
};
`;

/** Only SERVICE is configured; IDLE_SERVICE is active with the defaults. */
const settings = (statusPort: number) =>
  settingsXml(
    [
      {
        name: SERVICE,
        keepalive: 5,
        unix: {
          min_children: 1,
          max_children: 3,
          max_backlog_queue: 1,
          max_requests_jitter: 0,
          status_port: statusPort,
        },
      },
    ],
    { active: [SERVICE, IDLE_SERVICE] },
  );

let bus: Bus;
let coreFile: string;
let dir: string;
let pidDir: string;
let settingsFile: string;
let statusPort: number;
let router: CliProcess;
let serve: CliProcess;
let client: Client;
let socket: { kind: "socket"; path: string };

/** Live drones: children of the listener. */
const dronePids = (): number[] => childPids(serve.pid);

const waitUntil = (what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> =>
  pollUntil(what, cond, timeoutMs, 50, () => serve?.output.slice(-3000) ?? "");

async function settle(p: Promise<unknown>): Promise<{ ok: unknown } | { code: number }> {
  try {
    return { ok: await p };
  } catch (e) {
    if (e instanceof RequestError) return { code: e.statusCode };
    throw e;
  }
}

async function status(endpoint: StatusEndpoint = socket): Promise<PoolStatus> {
  return (await (await fetchFromEndpoint(endpoint, "/status")).json()) as PoolStatus;
}

/** One scrape, parsed by the Prometheus text parser, as `name{labels}` → number. */
async function scrape(endpoint: StatusEndpoint = socket): Promise<Map<string, number>> {
  const raw = await (await fetchFromEndpoint(endpoint, "/metrics")).text();
  // Every sample names this machine first; the keys below leave it out (and the parser
  // loses a histogram's sum and count when it has labels).
  const host = `host="${hostname()}"`;
  for (const line of raw.split("\n")) if (line && !line.startsWith("#")) expect(line).toContain(`{${host}`);
  const text = raw.replaceAll(`{${host},`, "{").replaceAll(`{${host}}`, "");
  const out = new Map<string, number>();
  for (const f of parse(text)) {
    expect(f.type).not.toBe("UNTYPED");
    for (const s of f.metrics) {
      const labels = Object.entries(s.labels ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(",");
      const key = labels ? `${f.name}{${labels}}` : f.name;
      if (s.value !== undefined) out.set(key, Number(s.value));
      if (s.count !== undefined) out.set(`${key}:count`, Number(s.count));
      if (s.sum !== undefined) out.set(`${key}:sum`, Number(s.sum));
      for (const [le, v] of Object.entries(s.buckets ?? {})) out.set(`${key}:le=${le}`, Number(v));
    }
  }
  return out;
}

const get = (m: Map<string, number>, key: string) => m.get(key) ?? 0;

beforeAll(async () => {
  bus = await startBus({ routerArgs: ["--log-format", "json"] });
  ({ coreFile, router, client, dir } = bus);
  pidDir = join(dir, "run");
  statusPort = await freePort();
  settingsFile = join(dir, "opensrf.xml");
  writeFileSync(join(dir, "app.ts"), APP);
  writeFileSync(settingsFile, settings(statusPort));
  socket = { kind: "socket", path: statusSocketPath(pidDir, SERVICE) };
  serve = await bus.startServe({ service: SERVICE, app: join(dir, "app.ts"), settings: settingsFile }, [
    "--log-format",
    "json",
    "--status-socket",
    socket.path,
  ]);
  await waitUntil("the first drone to be ready", async () => (await status()).drones.idle === 1);
}, 40_000);

afterAll(async () => {
  await client?.close();
  if (serve) expect(await serve.stop("SIGTERM")).toBe(0);
  // The listener removes its status socket when it exits.
  if (socket) expect(existsSync(socket.path)).toBe(false);
  await bus?.stop();
}, TEST_TIMEOUT_MS);

/** `osrf-prefork status ARGS` finding its listeners from this test's settings file and pid dir. */
function statusOfThisHost(...args: string[]) {
  return runCli(["status", ...args, "--settings", settingsFile, "--host", "testhost", "--pid-dir", pidDir]);
}

describe("observability of a running pool", () => {
  test(
    "requests move the request, duration and accepted counters; both endpoints agree",
    async () => {
      const before = await scrape();
      for (let i = 0; i < 5; i++) expect(await client.request(SERVICE, "add", [i, 1]).first()).toBe(i + 1);
      expect(await settle(client.request(SERVICE, "boom").first())).toEqual({ code: 500 });
      expect(await settle(client.request(SERVICE, "no.such.method").first())).toEqual({ code: 404 });
      // A drone sends its reply before it tells the listener it is done: the caller can see
      // the last answer before the listener has counted it. Wait for the count, then compare.
      let m = await scrape();
      await waitUntil("the 7 requests counted", async () => {
        m = await scrape();
        return get(m, `${MetricName.duration}:count`) - get(before, `${MetricName.duration}:count`) >= 7;
      });
      const d = (key: string) => get(m, key) - get(before, key);
      expect(d(`${MetricName.requests}{method=add,status=205}`)).toBe(5);
      expect(d(`${MetricName.requests}{method=boom,status=500}`)).toBe(1);
      expect(d(`${MetricName.requests}{method=no.such.method,status=404}`)).toBe(1);
      expect(d(`${MetricName.duration}:count`)).toBe(7);
      expect(d(`${MetricName.duration}:le=+Inf`)).toBe(7);
      expect(d(MetricName.accepted)).toBe(7);
      expect(get(m, `${MetricName.info}{service=${SERVICE},version=${VERSION}}`)).toBe(1);
      expect(get(m, MetricName.processStart)).toBeGreaterThan(Date.now() / 1000 - 3600);
      expect(get(m, MetricName.processStart)).toBeLessThanOrEqual(Date.now() / 1000);
      // The port from opensrf.xml serves the same listener.
      const viaPort = await scrape({ kind: "port", port: statusPort });
      expect(get(viaPort, `${MetricName.requests}{method=add,status=205}`)).toBe(
        get(m, `${MetricName.requests}{method=add,status=205}`),
      );
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "kill -9 of a busy drone: exits{cause=killed}, lost{reason=died} and spawns{cause=replace} move",
    async () => {
      const before = await scrape();
      const marker = join(dir, "busy.pid");
      const pending = settle(client.request(SERVICE, "block", [marker, 30_000]).first());
      await waitUntil(
        "the drone to start the request",
        () => existsSync(marker) && readFileSync(marker, "utf8").length > 0,
      );
      const pid = Number(readFileSync(marker, "utf8"));
      const busy = await status();
      expect(busy.processes.find((p) => p.pid === pid)).toMatchObject({ state: "busy", method: "block" });
      expect(busy.processes.find((p) => p.pid === pid)!.methodAgeMs).toBeGreaterThanOrEqual(0);
      process.kill(pid, "SIGKILL");
      expect(await pending).toMatchObject({ code: 500 });
      await waitUntil("a replacement drone", async () => {
        const s = await status();
        return s.drones.idle >= 1 && !s.processes.some((p) => p.pid === pid);
      });
      const m = await scrape();
      const d = (key: string) => get(m, key) - get(before, key);
      expect(d(`${MetricName.exits}{cause=killed}`)).toBe(1);
      expect(d(`${MetricName.lost}{reason=died}`)).toBe(1);
      // Replaced at once, as a drone that left by itself; nothing else started.
      expect(d(`${MetricName.spawns}{cause=replace}`)).toBe(1);
      for (const cause of ["min_children", "demand", "spare"])
        expect(d(`${MetricName.spawns}{cause=${cause}}`)).toBe(0);
      const s = await status();
      expect(s.spawns).toBe(Object.values(s.spawnCauses).reduce((a, b) => a + b, 0));
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "a drone exiting by itself mid-request counts as a crash",
    async () => {
      const before = await scrape();
      expect(await settle(client.request(SERVICE, "die").first())).toMatchObject({ code: 500 });
      await waitUntil(
        "the crash to be counted",
        async () =>
          get(await scrape(), `${MetricName.exits}{cause=crash}`) > get(before, `${MetricName.exits}{cause=crash}`),
      );
      const m = await scrape();
      expect(get(m, `${MetricName.exits}{cause=crash}`) - get(before, `${MetricName.exits}{cause=crash}`)).toBe(1);
      expect(get(m, `${MetricName.lost}{reason=died}`) - get(before, `${MetricName.lost}{reason=died}`)).toBe(1);
      await waitUntil("a replacement drone", async () => (await status()).drones.idle >= 1);
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "overload: 503s are counted, the backlog shows while drones are busy, and the pool grows",
    async () => {
      const before = await scrape();
      // max_children 3 run, max_backlog_queue 1 waits, the other 2 are refused.
      const calls = Array.from({ length: 6 }, () => settle(client.request(SERVICE, "sleep", [2000]).first()));
      await waitUntil("3 busy drones and 1 queued message", async () => {
        const s = await status();
        return s.drones.busy === 3 && s.listenQueue === 1;
      });
      const during = await scrape();
      expect(get(during, MetricName.backlog)).toBe(1);
      expect(get(during, `${MetricName.drones}{state=busy}`)).toBe(3);
      const results = await Promise.all(calls);
      const refused = results.filter((r) => "code" in r);
      expect(refused).toEqual([{ code: 503 }, { code: 503 }]);
      const m = await scrape();
      expect(get(m, MetricName.overload) - get(before, MetricName.overload)).toBe(2);
      expect(get(m, MetricName.backlog)).toBe(0);
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "`status` shows the grown pool: table, --json, --service by the pid-dir convention, --port, --all",
    async () => {
      await waitUntil("3 idle drones", async () => (await status()).drones.idle === 3);
      expect(dronePids()).toHaveLength(3);

      const table = await runCli(["status", "--socket", socket.path]);
      expect(table.code).toBe(0);
      const lines = table.stdout.trimEnd().split("\n");
      expect(lines[0]).toStartWith(`${SERVICE} on ${hostname()}  (listener pid ${serve.pid}, up `);
      expect(lines[2]).toContain("drones 3: 3 idle, 0 busy, 0 starting, 0 retiring");
      // The router it registered with, and that nothing says the router lost it.
      expect(lines[3]).toBe(`  routers: router@${bus.xmpp.domain}/router registered`);
      const header = lines.findIndex((l) => /^\s+PID\s+STATE\s+REQUESTS\s+RSS\s+AGE\s+METHOD$/.test(l));
      const rows = lines.slice(header + 1);
      expect(rows.map((r) => Number(r.trim().split(/\s+/)[0])).sort()).toEqual(dronePids().sort());
      for (const r of rows) expect(r).toMatch(/^\s+\d+\s+idle\s+\d+\s+\d+\.\d MB\s+-\s+-$/);
      // Aligned: every row ends its PID column where the header does.
      const pidEnd = lines[header]!.indexOf("PID") + 3;
      for (const r of rows) expect(r.slice(0, pidEnd)).toMatch(/\d$/);

      const json = await statusOfThisHost("--service", SERVICE, "--json");
      expect(json.code).toBe(0);
      const s = JSON.parse(json.stdout) as PoolStatus;
      expect(s.drones.total).toBe(3);
      expect(s.processes.map((p) => p.pid).sort()).toEqual(dronePids().sort());
      for (const p of s.processes) expect(p.rssBytes).toBeGreaterThan(1024 * 1024);

      const viaPort = await runCli(["status", "--port", String(statusPort), "--json"]);
      expect((JSON.parse(viaPort.stdout) as PoolStatus).drones.total).toBe(3);

      const all = await statusOfThisHost("--all");
      expect(all.code).toBe(0);
      expect(all.stdout).toStartWith(`${SERVICE} on ${hostname()}  (listener pid ${serve.pid}`);
      expect(all.stderr).toContain(`no status endpoint for: ${IDLE_SERVICE}`);
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "`status` against nothing: one line naming the socket or port and how to enable it, exit 3",
    async () => {
      const gone = join(dir, "nobody.sock");
      const r = await runCli(["status", "--socket", gone]);
      expect(r.code).toBe(3);
      expect(r.stdout).toBe("");
      expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
      expect(r.stderr).toContain(`no status endpoint at unix socket ${gone} (no such socket)`);
      expect(r.stderr).toContain("--status-socket");

      const port = await freePort();
      const p = await runCli(["status", "--port", String(port)]);
      expect(p.code).toBe(3);
      expect(p.stderr).toContain(`no status endpoint at 127.0.0.1:${port} (connection refused)`);

      const svc = await statusOfThisHost("--service", IDLE_SERVICE);
      expect(svc.code).toBe(3);
      expect(svc.stderr).toContain(
        `${IDLE_SERVICE}: no status endpoint (looked for ${defaultSocketCandidates(pidDir, IDLE_SERVICE)
          .map((path) => `unix socket ${path}`)
          .join(", ")})`,
      );
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "a second listener cannot take a status socket in use: one line, exit 2",
    async () => {
      const r = await runCli([
        "serve",
        "--service",
        SERVICE,
        "--app",
        join(dir, "app.ts"),
        "--config",
        coreFile,
        "--settings",
        settingsFile,
        "--host",
        "testhost",
        "--logfile",
        "stderr",
        "--loglevel",
        "1",
        "--status-port",
        "0",
        "--status-socket",
        socket.path,
      ]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(
        `osrf-prefork: ${SERVICE}: status socket ${socket.path} is in use by a running listener\n`,
      );
      expect(existsSync(socket.path)).toBe(true);
      expect((await status()).pid).toBe(serve.pid);
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "--log-format json: listener, drone and router lines are JSON objects with the OpenSRF fields",
    async () => {
      const lines = serve.output.split("\n").filter((l) => l.startsWith("{"));
      expect(lines.length).toBeGreaterThan(5);
      const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
      for (const r of records)
        expect(Object.keys(r).sort()).toEqual(["file", "level", "msg", "pid", "service", "ts", "xid"]);
      expect(records.some((r) => r.file === "listener" && r.service === SERVICE)).toBe(true);
      const drone = records.find((r) => r.file === "drone" && r.level === "activity");
      expect(drone).toMatchObject({ service: SERVICE });
      expect(String(drone!.xid).length).toBeGreaterThan(0);
      expect(serve.output.split("\n").filter((l) => /\[(INFO|ACT|WARN|ERR )?:\d+:/.test(l))).toEqual([]);
      const routerLines = router.output.split("\n").filter((l) => l.trim() !== "");
      expect(routerLines.length).toBeGreaterThan(0);
      for (const l of routerLines) expect(JSON.parse(l)).toMatchObject({ service: "router" });

      // The request command logs next to nothing on success: check the flag is taken, and checked.
      const req = await runCli(["request", "--config", coreFile, "--log-format", "json", SERVICE, "add", "1", "2"]);
      expect(req).toMatchObject({ code: 0, stdout: "3\n" });
      const bad = await runCli(["request", "--config", coreFile, "--log-format", "xml", SERVICE, "add", "1", "2"]);
      expect(bad).toMatchObject({ code: 2, stderr: 'osrf-prefork: --log-format must be osrf or json, got "xml"\n' });
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "an XMPP server restart counts one reconnect of the listener",
    async () => {
      const before = get(await scrape(), MetricName.reconnects);
      await bus.xmpp.restart();
      await serve.waitFor(/bus connection is back; registering with the routers again/, 30_000);
      expect(get(await scrape(), MetricName.reconnects) - before).toBe(1);
    },
    TEST_TIMEOUT_MS,
  );
});
