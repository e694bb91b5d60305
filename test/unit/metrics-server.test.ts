/**
 * The status endpoint over a real unix socket and a loopback port, stale socket files,
 * and finding a service's endpoint from opensrf.xml.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import parse from "parse-prometheus-text-format";
import { freePort } from "../../devkit/ports.ts";
import { readPreforkSettings } from "../../src/config/prefork-settings.ts";
import type { SettingsTree } from "../../src/config/types.ts";
import {
  defaultSocketCandidates,
  defaultStatusSocket,
  NoDefaultSocketError,
  runtimeDirs,
  runtimeSocketPath,
} from "../../src/metrics/default-socket.ts";
import { fetchFromEndpoint, statusSocketPath } from "../../src/metrics/endpoint.ts";
import { StatusEndpointError, StatusUnreachableError } from "../../src/metrics/errors.ts";
import { activeApps, candidateEndpoints, liveCandidates, readHostSettings } from "../../src/metrics/locate.ts";
import { type StatusServer, startStatusServer, startStatusServers, statusEndpoints } from "../../src/metrics/server.ts";
import type { PoolStatus, StatusEndpoint } from "../../src/metrics/types.ts";
import { PoolMetrics } from "../../src/prefork/pool-metrics.ts";

const servers: StatusServer[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.stop();
});

function dir(): string {
  return mkdtempSync(join(tmpdir(), "osrf-status-"));
}

async function serve(endpoint: StatusEndpoint, service = "svc"): Promise<StatusServer> {
  const s = await startStatusServer({ endpoint, metrics: new PoolMetrics(service), backlog: () => 2 });
  servers.push(s);
  return s;
}

describe("status endpoint", () => {
  test("unix socket: /metrics, /status, /status?format=text, 404 and 405", async () => {
    const path = join(dir(), "sub", "svc.status.sock");
    const e: StatusEndpoint = { kind: "socket", path };
    await serve(e);
    const metrics = await fetchFromEndpoint(e, "/metrics");
    expect(metrics.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const families = parse(await metrics.text());
    expect(families.find((f) => f.name === "osrf_prefork_backlog")?.metrics).toEqual([{ value: "2" }]);
    const status = (await (await fetchFromEndpoint(e, "/status")).json()) as PoolStatus;
    expect(status).toMatchObject({ service: "svc", pid: process.pid, listenQueue: 2, processes: [] });
    expect(await (await fetchFromEndpoint(e, "/status?format=text")).text()).toStartWith("service:");
    await expect(fetchFromEndpoint(e, "/nope")).rejects.toThrow("answered /nope with HTTP 404");
    const post = await fetch("http://localhost/status", { method: "POST", unix: path });
    expect(post.status).toBe(405);
  });

  test("loopback port", async () => {
    const port = await freePort();
    const e: StatusEndpoint = { kind: "port", port };
    await serve(e);
    const status = (await (await fetchFromEndpoint(e, "/status")).json()) as PoolStatus;
    expect(status.service).toBe("svc");
  });

  test("stop() removes the socket file", async () => {
    const path = join(dir(), "a.sock");
    const s = await serve({ kind: "socket", path });
    expect(existsSync(path)).toBe(true);
    s.stop();
    expect(existsSync(path)).toBe(false);
  });

  test("a socket left by a dead listener is replaced; one in use is not", async () => {
    const path = join(dir(), "b.sock");
    // A socket file with nobody listening: what a SIGKILLed listener leaves.
    const child = Bun.spawn([
      process.execPath,
      "-e",
      `Bun.serve({ unix: ${JSON.stringify(path)}, fetch: () => new Response("") }); setInterval(() => {}, 1000)`,
    ]);
    const end = Date.now() + 20_000;
    while (!existsSync(path) && Date.now() < end) await Bun.sleep(20);
    child.kill("SIGKILL");
    await child.exited;
    expect(existsSync(path)).toBe(true);
    await serve({ kind: "socket", path });
    const err = await startStatusServer({
      endpoint: { kind: "socket", path },
      metrics: new PoolMetrics("svc2"),
      backlog: () => 0,
    }).catch((e) => e);
    expect(err).toBeInstanceOf(StatusEndpointError);
    expect((err as Error).message).toBe(`status socket ${path} is in use by a running listener`);
  });

  test("a path that is not a socket is left alone", async () => {
    const path = join(dir(), "file");
    writeFileSync(path, "keep me");
    await expect(serve({ kind: "socket", path })).rejects.toThrow(
      `status socket path ${path} exists and is not a socket`,
    );
  });

  test("a port in use: one line naming it; servers already started are stopped", async () => {
    const port = await freePort();
    await serve({ kind: "port", port });
    const path = join(dir(), "c.sock");
    const err = await startStatusServers(
      [
        { kind: "socket", path },
        { kind: "port", port },
      ],
      { metrics: new PoolMetrics("x"), backlog: () => 0 },
    ).catch((e) => e);
    expect((err as Error).message).toStartWith(`cannot serve status on 127.0.0.1:${port}:`);
    expect(existsSync(path)).toBe(false);
  });

  test("nothing there: StatusUnreachableError naming the endpoint", async () => {
    const path = join(dir(), "none.sock");
    const err = await fetchFromEndpoint({ kind: "socket", path }, "/status").catch((e) => e);
    expect(err).toBeInstanceOf(StatusUnreachableError);
    expect((err as Error).message).toBe(`no status endpoint at unix socket ${path} (no such socket)`);
    const port = await freePort();
    await expect(fetchFromEndpoint({ kind: "port", port }, "/status")).rejects.toThrow(
      `no status endpoint at 127.0.0.1:${port} (connection refused)`,
    );
  });

  test("statusEndpoints: socket and port each optional", () => {
    expect(statusEndpoints("", 0)).toEqual([]);
    expect(statusEndpoints("/s", 9100)).toEqual([
      { kind: "socket", path: "/s" },
      { kind: "port", port: 9100 },
    ]);
  });
});

describe("locating a service's endpoint", () => {
  const XML = `<?xml version="1.0"?>
<opensrf version="0.0.3">
  <default>
    <dirs><pid>/var/run/osrf</pid></dirs>
    <apps>
      <a.one><unix_config><status_port>9101</status_port></unix_config></a.one>
      <a.two><unix_config><status_socket>/tmp/two.sock</status_socket></unix_config></a.two>
    </apps>
  </default>
  <hosts><h1><activeapps><appname>a.one</appname><appname>a.two</appname><appname>a.three</appname></activeapps></h1></hosts>
</opensrf>`;

  function settingsFile(): string {
    const file = join(dir(), "opensrf.xml");
    writeFileSync(file, XML);
    return file;
  }

  test("the start convention: <pid dir>/<service>.status.sock", () => {
    expect(statusSocketPath("/var/run/osrf", "opensrf.math")).toBe("/var/run/osrf/opensrf.math.status.sock");
  });

  test("candidates: default sockets (pid dir, runtime dirs), then configured socket, then configured port", () => {
    const s = readHostSettings(settingsFile(), "h1");
    expect(s.pidDir).toBe("/var/run/osrf");
    expect(activeApps(s)).toEqual(["a.one", "a.two", "a.three"]);
    const rt = ["/run/user/7/osrf-prefork"];
    expect(candidateEndpoints(s, "a.one", rt)).toEqual([
      { kind: "socket", path: "/var/run/osrf/a.one.status.sock" },
      { kind: "socket", path: runtimeSocketPath(rt[0]!, "/var/run/osrf", "a.one") },
      { kind: "port", port: 9101 },
    ]);
    expect(candidateEndpoints(s, "a.two", [])).toEqual([
      { kind: "socket", path: "/var/run/osrf/a.two.status.sock" },
      { kind: "socket", path: "/tmp/two.sock" },
    ]);
    expect(readHostSettings(settingsFile(), "h1", "/elsewhere").pidDir).toBe("/elsewhere");
  });

  test("liveCandidates: the sockets that exist, in order, then the port", () => {
    const d = dir();
    const existing = join(d, "x.sock");
    writeFileSync(existing, "");
    const missing = join(d, "y.sock");
    expect(
      liveCandidates([
        { kind: "socket", path: missing },
        { kind: "socket", path: existing },
        { kind: "port", port: 1 },
      ]),
    ).toEqual([
      { kind: "socket", path: existing },
      { kind: "port", port: 1 },
    ]);
    expect(liveCandidates([{ kind: "socket", path: missing }])).toEqual([]);
  });
});

describe("the default status socket of a plain serve", () => {
  test("in the pid dir when it is a writable directory", () => {
    const pid = dir();
    expect(defaultStatusSocket(pid, "svc", [join(dir(), "rt")])).toEqual({ path: join(pid, "svc.status.sock") });
  });

  test("else in the first usable runtime dir, created mode 0700, named for the pid dir", () => {
    const base = dir();
    const pid = join(base, "no-such-dir");
    const rt = join(base, "rt");
    const d = defaultStatusSocket(pid, "svc", [rt]);
    expect(d).toEqual({ path: runtimeSocketPath(rt, pid, "svc"), fallback: `${pid}: ENOENT` });
    expect(statSync(rt).mode & 0o777).toBe(0o700);
    expect(d.path).toMatch(/\/svc\.[0-9a-f]{12}\.status\.sock$/);
    // Another pid dir (another opensrf.xml) never gets the same socket.
    expect(runtimeSocketPath(rt, join(base, "other"), "svc")).not.toBe(d.path);
    expect(defaultSocketCandidates(pid, "svc", [rt])).toEqual([join(pid, "svc.status.sock"), d.path]);
  });

  test("a pid dir under a file is not writable; a runtime dir open to others is refused", () => {
    const base = dir();
    writeFileSync(join(base, "file"), "");
    const shared = join(base, "shared");
    mkdirSync(shared);
    chmodSync(shared, 0o777);
    const ok = join(base, "ok");
    const d = defaultStatusSocket(join(base, "file/run"), "svc", [shared, ok]);
    expect(d.path.startsWith(`${ok}/`)).toBe(true);
    expect(d.fallback).toBe(`${join(base, "file/run")}: ENOTDIR`);
    const planted = (() => {
      try {
        defaultStatusSocket(join(base, "file/run"), "svc", [shared]);
      } catch (e) {
        return e;
      }
    })();
    expect((planted as Error).message).toContain(
      `${shared} is not a private directory of uid ${process.getuid!()} (a directory, mode 0700): remove it, or pass --status-socket PATH`,
    );
    expect(planted).toBeInstanceOf(StatusEndpointError);
    expect(planted).not.toBeInstanceOf(NoDefaultSocketError);
  });

  test("nowhere to put it (a bare container): NoDefaultSocketError naming each place", () => {
    const base = dir();
    writeFileSync(join(base, "file"), "");
    const pid = join(base, "file/run");
    const rt = join(base, "file/rt");
    expect(() => defaultStatusSocket(pid, "svc", [rt])).toThrow(
      new NoDefaultSocketError(
        `pid dir ${pid} is not writable (ENOTDIR), and ${rt} could not be made (ENOTDIR)`,
        "svc",
      ),
    );
  });

  test("runtime dirs: $XDG_RUNTIME_DIR/osrf-prefork first, then <tmp>/osrf-prefork-<uid>", () => {
    expect(runtimeDirs({ XDG_RUNTIME_DIR: "/run/user/5" }, 5)).toEqual([
      "/run/user/5/osrf-prefork",
      join(tmpdir(), "osrf-prefork-5"),
    ]);
    expect(runtimeDirs({}, 5)).toEqual([join(tmpdir(), "osrf-prefork-5")]);
  });
});

describe("opensrf.xml keys", () => {
  const tree = (unix: Record<string, unknown>) =>
    ({ apps: { svc: { keepalive: "5", unix_config: unix } } }) as SettingsTree;

  test("status_port and status_socket: off by default", () => {
    expect(readPreforkSettings(tree({}), "svc")).toMatchObject({ statusPort: 0, statusSocket: "" });
    expect(readPreforkSettings(tree({ status_port: "9100", status_socket: " /run/s.sock " }), "svc")).toMatchObject({
      statusPort: 9100,
      statusSocket: "/run/s.sock",
    });
  });

  test("a bad status_port names the element", () => {
    expect(() => readPreforkSettings(tree({ status_port: "70000" }), "svc")).toThrow(
      "/apps/svc/unix_config/status_port",
    );
    expect(() => readPreforkSettings(tree({ status_port: "http" }), "svc")).toThrow(
      "/apps/svc/unix_config/status_port",
    );
  });
});
