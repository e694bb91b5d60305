/**
 * A minimal bus for tests that run their own services: a private XMPP server (or, with
 * `bus: "redis"`, a private redis-server with OpenSRF main's accounts), our router (as an
 * osrf-prefork process, so OSRF_PREFORK_BIN picks the compiled binary), a client connection,
 * and `serve` processes started on it.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { BusKind } from "../src/bus/types.ts";
import type { Client } from "../src/client/client.ts";
import { connectTestClient } from "./client.ts";
import { TEST_USERS, writeCoreConfig } from "./osrf-config.ts";
import { CliProcess, runCommand, type ServeArgs, serveArgs } from "./processes.ts";
import { type RedisServer, startRedisServer } from "./redis-server.ts";
import { startXmppServer, type XmppServer } from "./xmpp-server.ts";

export interface Bus {
  readonly kind: BusKind;
  /** The XMPP server (an XMPP bus only; throws on Redis). */
  xmpp: XmppServer;
  /** The redis-server (a Redis bus only; throws on XMPP). */
  redis: RedisServer;
  /** opensrf_core.xml for this bus (connects to 127.0.0.1). */
  coreFile: string;
  router: CliProcess;
  client: Client;
  /** A fresh temp dir for the test's files; removed by `stop`. */
  dir: string;
  /** Resolves once the router has registered `service` (at any time so far). */
  online(service: string, timeoutMs?: number): Promise<void>;
  /** How often the router has brought `service` online so far. */
  onlineCount(service: string): number;
  /**
   * Resolves once the router has brought `service` online more than `count` times: after a
   * listener reports it is serving, its class connection on the router may still be logging in.
   */
  onlineAfter(service: string, count: number, timeoutMs?: number): Promise<void>;
  /**
   * Starts `osrf-prefork serve` on this bus (see {@link serveArgs}) and resolves once the router
   * has brought the service online once more; fails at once, with its output, if it exits first.
   * {@link stop} stops it if the test has not. `config` defaults to {@link coreFile}.
   */
  startServe(o: Omit<ServeArgs, "config"> & { config?: string }, extra?: string[]): Promise<CliProcess>;
  stop(): Promise<void>;
}

/** Options of {@link startBus}. */
export interface BusOptions {
  /** More arguments for the router (e.g. `--log-format json`). */
  routerArgs?: string[];
  /** Which bus (default xmpp); written as `<bus>` into the core file. */
  bus?: BusKind;
  /** The Redis router's `<stall_timeout>`. */
  stallTimeout?: number;
}

/**
 * What the router logs when a listener of `service` joins: XMPP `class S online` (its class
 * connection is up), Redis `Registering class S: adding`.
 */
function onlineRe(service: string, bus: BusKind): RegExp {
  const name = service.replaceAll(".", "\\.");
  return new RegExp(bus === "redis" ? `Registering class ${name}: adding` : `class ${name} online`);
}

/** Starts the bus server, router and client. */
export async function startBus(opts: BusOptions = {}): Promise<Bus> {
  const kind = opts.bus ?? "xmpp";
  let xmpp: XmppServer | undefined;
  let redis: RedisServer | undefined;
  let coreFile: string;
  if (kind === "redis") {
    redis = await startRedisServer();
    const { opensrf, router } = redis.accounts;
    coreFile = writeCoreConfig(
      { host: redis.host, port: redis.port, domain: "localhost" },
      {
        bus: "redis",
        accounts: { opensrf, router },
        ...(opts.stallTimeout ? { stallTimeout: opts.stallTimeout } : {}),
      },
    );
  } else {
    xmpp = await startXmppServer({ users: TEST_USERS });
    coreFile = writeCoreConfig(xmpp);
  }
  const router = CliProcess.start([
    "router",
    "--config",
    coreFile,
    "--logfile",
    "stderr",
    "--loglevel",
    "3",
    ...(opts.routerArgs ?? []),
  ]);
  await router.waitFor(/router online/);
  const client = await connectTestClient(coreFile);
  const dir = mkdtempSync(join(tmpdir(), "osrf-ship-"));
  const serves: CliProcess[] = [];
  const onlineCount = (service: string): number =>
    router.output.match(new RegExp(onlineRe(service, kind).source, "g"))?.length ?? 0;
  const onlineAfter = (service: string, count: number, timeoutMs = 20_000): Promise<void> =>
    router.waitFor(new RegExp(`(?:[^]*?${onlineRe(service, kind).source}){${count + 1}}`), timeoutMs);
  return {
    kind,
    get xmpp(): XmppServer {
      if (!xmpp) throw new Error("this test bus runs on Redis: use .redis");
      return xmpp;
    },
    get redis(): RedisServer {
      if (!redis) throw new Error("this test bus runs on XMPP: use .xmpp");
      return redis;
    },
    coreFile,
    router,
    client,
    dir,
    online: (service, timeoutMs = 20_000) => router.waitFor(onlineRe(service, kind), timeoutMs),
    onlineCount,
    onlineAfter,
    async startServe(o, extra = []) {
      const before = onlineCount(o.service);
      const proc = CliProcess.start(serveArgs({ config: coreFile, ...o }, extra));
      serves.push(proc);
      await proc.untilReady(onlineAfter(o.service, before));
      return proc;
    },
    async stop() {
      await client.close().catch(() => {});
      for (const p of serves) await p.stop().catch(() => {});
      await router.stop();
      await xmpp?.stop();
      await redis?.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const ROOT = resolve(import.meta.dir, "..");

/** The binary `bun run build.ts linux-x64` writes. */
export const LINUX_BINARY = join(ROOT, "dist/osrf-prefork-linux-x64");

/** Newest modification time under `dir` (ms). */
function newest(dir: string): number {
  let max = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    max = Math.max(max, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return max;
}

/** Builds {@link LINUX_BINARY} unless it is newer than every source file (and build.ts, package.json). */
export async function ensureLinuxBinary(): Promise<void> {
  let built = 0;
  try {
    built = statSync(LINUX_BINARY).mtimeMs;
  } catch {
    // Not built yet.
  }
  const sources = Math.max(
    newest(join(ROOT, "src")),
    // The compile flags and the drones' bytecode order live there.
    newest(join(ROOT, "scripts")),
    ...["build.ts", "package.json"].map((f) => statSync(join(ROOT, f)).mtimeMs),
  );
  if (built > sources) return;
  const r = await runCommand([process.execPath, "run", "build.ts", "linux-x64"], { cwd: ROOT });
  if (r.code !== 0) throw new Error(`bun run build.ts linux-x64 failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
}
