/**
 * A whole bus for fault, load and soak runs: a private XMPP server (or, with `bus: "redis"`,
 * a private redis-server with OpenSRF main's ACL accounts), our router, one or more
 * `osrf-prefork serve` processes (listener + drones) and a client — all real processes on
 * loopback. Everything it starts is stopped by {@link FaultStack.stop}.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { BusKind } from "../src/bus/types.ts";
import { Client } from "../src/client/client.ts";
import { readCoreConfig } from "../src/config/core.ts";
import { connectBus } from "../src/connect/bus.ts";
import { makeResource } from "../src/protocol/ids.ts";
import { XmppConnection } from "../src/xmpp/connection.ts";
import { clientConnectionOptions } from "../src/xmpp/from-config.ts";
import { childPids } from "./load.ts";
import { type CoreConfigOptions, type SettingsApp, settingsXml, TEST_USERS, writeCoreConfig } from "./osrf-config.ts";
import { CliProcess, serveArgs } from "./processes.ts";
import { quietLogger } from "./quiet-logger.ts";
import { type RedisServer, startRedisServer } from "./redis-server.ts";
import { startXmppServer, type XmppServer } from "./xmpp-server.ts";

/**
 * A service module whose `work(i, ms)` answers `[i, its drone's pid]` after `ms` ms: the
 * fault tests' load, which tells who served each request and can hold a drone busy.
 */
export const WORK_APP = `
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export default {
  methods: [
    { name: "work", argc: 2, handler: async (_ctx, i, ms) => { if (ms > 0) await sleep(ms); return [i, process.pid]; } },
  ],
};
`;

/** One service of the stack: its settings and its code. */
export interface StackService extends SettingsApp {
  /** Source text of the service module (written to a file in the stack's dir). */
  app: string;
}

export interface FaultStackOptions {
  services: StackService[];
  /** Log level of the serve processes (default 3); the router always logs at 3 to stderr. */
  loglevel?: number;
  /**
   * Where serve processes log: "stderr" (default: kept in each CliProcess's output) or
   * "file" (`<dir>/<service>.log`, for long runs).
   */
  log?: "stderr" | "file";
  core?: CoreConfigOptions;
  /** Client per-reply timeout, s (default 15). */
  clientTimeout?: number;
  /** Start the serve processes now (default true). */
  startServices?: boolean;
  /** The bus (default xmpp); its choice is written as `<bus>` into opensrf_core.xml. */
  bus?: BusKind;
}

export class FaultStack {
  /** The XMPP server (XMPP stacks only). */
  xmpp!: XmppServer;
  /** The redis-server (`bus: "redis"` stacks only). */
  redis!: RedisServer;
  readonly bus: BusKind;
  coreFile = "";
  readonly dir: string;
  router!: CliProcess;
  readonly serves = new Map<string, CliProcess>();
  client!: Client;
  private readonly extraClients: Client[] = [];
  private readonly rawConnections: XmppConnection[] = [];
  private readonly loglevel: number;

  private constructor(readonly opts: FaultStackOptions) {
    this.dir = mkdtempSync(join(tmpdir(), "osrf-fault-"));
    this.loglevel = opts.loglevel ?? 3;
    this.bus = opts.bus ?? "xmpp";
  }

  static async start(opts: FaultStackOptions): Promise<FaultStack> {
    const s = new FaultStack(opts);
    try {
      if (s.bus === "redis") {
        s.redis = await startRedisServer();
        const { opensrf, router } = s.redis.accounts;
        s.coreFile = writeCoreConfig(
          { host: s.redis.host, port: s.redis.port, domain: "localhost" },
          { logfile: join(s.dir, "osrfsys.log"), bus: "redis", accounts: { opensrf, router }, ...opts.core },
        );
      } else {
        s.xmpp = await startXmppServer({ users: TEST_USERS });
        s.coreFile = writeCoreConfig(s.xmpp, { logfile: join(s.dir, "osrfsys.log"), ...opts.core });
      }
      for (const svc of opts.services) writeFileSync(join(s.dir, `${svc.name}.ts`), svc.app);
      writeFileSync(join(s.dir, "opensrf.xml"), settingsXml(opts.services));
      await s.startRouter();
      s.client = await s.newClient("load", opts.clientTimeout ?? 15);
      if (opts.startServices ?? true) await Promise.all(opts.services.map((svc) => s.startServe(svc.name)));
    } catch (e) {
      await s.stop().catch(() => {});
      throw e;
    }
    return s;
  }

  /** The status socket of service `name`'s listener (`osrf-prefork status --socket`). */
  statusSocket(name: string): string {
    return join(this.dir, `${name}.status.sock`);
  }

  /** Path of a process's log file (with `log: "file"`). */
  logFile(name: string): string {
    return join(this.dir, `${name}.log`);
  }

  /** Starts (or restarts) the router; resolves once it is online. */
  async startRouter(): Promise<void> {
    this.router = CliProcess.start(["router", "--config", this.coreFile, "--logfile", "stderr", "--loglevel", "3"]);
    await this.whileRunning(this.router, "router", this.router.waitFor(/router online/, 20_000));
  }

  /** Starts a serve process; resolves once the router has it registered. */
  async startServe(name: string): Promise<CliProcess> {
    const router = this.router;
    const before = this.classOnlineCount(name);
    const proc = CliProcess.start(
      serveArgs(
        {
          service: name,
          app: join(this.dir, `${name}.ts`),
          config: this.coreFile,
          settings: join(this.dir, "opensrf.xml"),
          logfile: this.opts.log === "file" ? this.logFile(name) : "stderr",
          loglevel: this.loglevel,
        },
        // In the stack's own dir: a default socket is shared by every run of the same service
        // name on the machine.
        ["--status-socket", this.statusSocket(name)],
      ),
    );
    this.serves.set(name, proc);
    await this.whileRunning(proc, `serve ${name}`, this.waitClassOnline(name, before, router));
    return proc;
  }

  /**
   * What the router logs when a listener of `name` joins: XMPP `class <name> online` (its
   * class connection), Redis `Registering class <name>: adding`.
   */
  private onlineMark(name: string): string {
    return this.bus === "redis" ? `Registering class ${name}: adding` : `class ${name} online`;
  }

  /** How many times the current router logged that a listener of `name` joined. */
  classOnlineCount(name: string): number {
    return this.router.output.split(this.onlineMark(name)).length - 1;
  }

  /** Resolves once the router logs a listener of `name` joining more than `before` times. */
  async waitClassOnline(name: string, before: number, router = this.router, timeoutMs = 20_000): Promise<void> {
    const end = performance.now() + timeoutMs;
    while (router.output.split(this.onlineMark(name)).length - 1 <= before) {
      if (performance.now() > end)
        throw new Error(`class ${name} not online within ${timeoutMs} ms\n${router.output.slice(-2000)}`);
      await Bun.sleep(25);
    }
  }

  private async whileRunning(proc: CliProcess, what: string, ready: Promise<unknown>): Promise<void> {
    const first = await Promise.race([ready.then(() => "ready"), proc.proc.exited.then((code) => `exit ${code}`)]);
    if (first !== "ready") throw new Error(`${what} ended during start-up (${first}):\n${proc.output.slice(-3000)}`);
  }

  /** A new client with its own bus login (reconnecting), closed by {@link stop}. */
  async newClient(label: string, timeout = 15): Promise<Client> {
    const logger = quietLogger();
    const conn = await connectBus(readCoreConfig(this.coreFile).opensrf, { resource: makeResource("", label), logger });
    const c = new Client({ transport: conn, routerName: "router", logger, timeout, ownTransport: true });
    this.extraClients.push(c);
    return c;
  }

  /**
   * A bare XMPP login of the stack's client account (no OpenSRF client on it, no reconnect),
   * for sending stanzas by hand; closed by {@link stop}.
   */
  async rawConnection(label: string): Promise<XmppConnection> {
    const conn = await XmppConnection.connect({
      ...clientConnectionOptions(readCoreConfig(this.coreFile).opensrf, makeResource("", label), quietLogger()),
      reconnect: false,
    });
    this.rawConnections.push(conn);
    return conn;
  }

  serve(name: string): CliProcess {
    const p = this.serves.get(name);
    if (!p) throw new Error(`no serve process for ${name}`);
    return p;
  }

  listenerPid(name: string): number {
    return this.serve(name).pid;
  }

  /** Live drone pids of a service (children of its listener). */
  dronePids(name: string): number[] {
    return childPids(this.listenerPid(name));
  }

  /** Everything the stack started is stopped; its temp dirs are removed. */
  async stop(): Promise<void> {
    for (const c of this.rawConnections.splice(0)) await c.close().catch(() => {});
    for (const c of this.extraClients.splice(0)) await c.close().catch(() => {});
    for (const p of this.serves.values()) await p.stop("SIGTERM", 10_000).catch(() => {});
    if (this.router) await this.router.stop("SIGTERM", 5000).catch(() => {});
    if (this.xmpp) await this.xmpp.stop().catch(() => {});
    if (this.redis) await this.redis.stop().catch(() => {});
    rmSync(this.dir, { recursive: true, force: true });
    if (this.coreFile) rmSync(dirname(this.coreFile), { recursive: true, force: true });
  }
}
