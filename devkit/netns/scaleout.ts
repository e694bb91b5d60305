/**
 * One service on several hosts over a clustered ejabberd, on test hosts (network.ts):
 *
 * - host A: ejabberd node 1 and the router (osrf-prefork's, or the real C one from devkit/opensrf);
 * - host B: ejabberd node 2, clustered with node 1, and `osrf-prefork serve` for the service;
 * - host C: another `serve` of the service, logged in to node 2;
 * - host D: the callers (an agent, agent.ts), logged in to node 1.
 *
 * Each host has its own opensrf_core.xml naming the XMPP domain only; the domain resolves,
 * per host, to the nearby node (its /etc/hosts), as per-host DNS would on a real cluster.
 * Both listeners register with A's router. Everything runs as real processes; {@link stop}
 * (or the network's clean-up at exit) ends them all.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { JsonValue } from "../../src/protocol/types.ts";
import { ensurePeer, type OpenSrfPeer } from "../opensrf/peer.ts";
import { isRunning, type ProcRef, procRef, signalRef, waitGone } from "../opensrf/procs.ts";
import { CliProcess, cliCommand, serveArgs } from "../processes.ts";
import { AgentHandle } from "./agent-client.ts";
import { C2S_PORT, type EjabberdCluster, startEjabberdCluster } from "./ejabberd-cluster.ts";
import { type TestHost, TestNetwork } from "./network.ts";

const ROOT = resolve(import.meta.dir, "../..");

/** The XMPP domain of the cluster (Evergreen's private domain name). */
export const DOMAIN = "private.localhost";
/** Accounts: the services' and clients' one, and the router's. */
export const USERS: Array<[string, string]> = [
  ["opensrf", "scaleout-osrf-pass"],
  ["router", "scaleout-router-pass"],
];
/** The listeners' status and metrics port: the same on every host, each on its own loopback. */
export const STATUS_PORT = 9100;

/** Who routes: osrf-prefork's router or the real C opensrf_router. */
export type RouterKind = "prefork" | "c";

/** Options of {@link ScaleOutStack.start}. */
export interface ScaleOutOptions {
  router: RouterKind;
  /** Default "opensrf.tsmath". */
  service?: string;
  /** Service module (default examples/math.ts). */
  app?: string;
  /** `unix_config` of the service, on top of a small pool with the status port. */
  unix?: Record<string, number | string>;
  keepalive?: number;
  /** Log level of the serve processes (default 3). */
  serveLoglevel?: number;
  /**
   * Log level of the router (default 4 for ours, whose debug lines name every forward and its
   * xid: what the lost-host accounting reads; 3 for the C router).
   */
  routerLoglevel?: number;
  /** Start the serve on B and C (default true). */
  startServes?: boolean;
  /**
   * `net.ipv4.tcp_retries2` of the ejabberd hosts (A and B); default the kernel's (15, about
   * 15 minutes). How long a node keeps writing into a connection whose peer went silent
   * (a cut link) before it closes the session, after which messages to it bounce.
   */
  tcpRetries2?: number;
}

/** The router on host A, either kind. */
interface RouterProcess {
  kind: RouterKind;
  /** Ours, when it is ours. */
  cli?: CliProcess;
  /** The C router's daemon. */
  ref?: ProcRef;
}

export class ScaleOutStack {
  readonly service: string;
  readonly app: string;
  /** opensrf.xml, shared by every host (each reads its `/opensrf/hosts/<host>` section). */
  readonly settingsFile: string;
  cluster!: EjabberdCluster;
  agent!: AgentHandle;
  /** The serve process of each service host ("b", "c"). */
  readonly serves = new Map<string, CliProcess>();
  private routerProc: RouterProcess | undefined;
  private peer: OpenSrfPeer | undefined;
  private stopped = false;

  private constructor(
    readonly net: TestNetwork,
    readonly opts: ScaleOutOptions,
  ) {
    this.service = opts.service ?? "opensrf.tsmath";
    this.app = opts.app ?? join(ROOT, "examples/math.ts");
    this.settingsFile = join(net.dir, "opensrf.xml");
  }

  /** Builds the hosts, the cluster, the router, both serves and the agent; stops everything on failure. */
  static async start(opts: ScaleOutOptions): Promise<ScaleOutStack> {
    const alias = (node: string) => ({ [DOMAIN]: node });
    const net = await TestNetwork.create({
      hosts: [
        { name: "a", aliases: alias("a") },
        { name: "b", aliases: alias("b") },
        { name: "c", aliases: alias("b") },
        { name: "d", aliases: alias("a") },
      ],
    });
    const s = new ScaleOutStack(net, opts);
    try {
      if (opts.tcpRetries2 !== undefined) {
        for (const h of ["a", "b"]) net.host(h).sysctl("net.ipv4.tcp_retries2", opts.tcpRetries2);
      }
      if (opts.router === "c") s.peer = await ensurePeer();
      for (const h of net.hosts) s.writeCore(h);
      writeFileSync(s.settingsFile, s.settingsXml());
      s.cluster = await startEjabberdCluster({
        hosts: [net.host("a"), net.host("b")],
        domain: DOMAIN,
        users: USERS,
      });
      s.agent = await AgentHandle.start(net.host("d"), s.coreFile("d"));
      await s.agent.connect();
      await s.startRouter();
      if (opts.startServes ?? true) await Promise.all([s.startServe("b"), s.startServe("c")]);
    } catch (e) {
      await s.stop().catch(() => {});
      throw e;
    }
    return s;
  }

  host(name: string): TestHost {
    return this.net.host(name);
  }

  /** Per-host directory: its opensrf_core.xml and log/. */
  hostDir(name: string): string {
    return join(this.net.dir, `host-${name}`);
  }

  coreFile(name: string): string {
    return join(this.hostDir(name), "opensrf_core.xml");
  }

  logFile(name: string, what: string): string {
    return join(this.hostDir(name), "log", what);
  }

  /** Where our router's JSON log goes (one object per line). */
  get routerLog(): string {
    return this.logFile("a", this.opts.router === "c" ? "router.log" : "router.jsonl");
  }

  // -------------------------------------------------------------------------------------------
  // the router on host A

  /** Starts the router on host A and waits until it answers `opensrf.router.info.class.list`. */
  async startRouter(timeoutMs = 30_000): Promise<void> {
    if (this.routerProc && this.routerRunning) throw new Error("the router is already running");
    if (this.opts.router === "prefork") {
      const cli = CliProcess.start(
        [
          "router",
          "--config",
          this.coreFile("a"),
          "--logfile",
          this.routerLog,
          "--loglevel",
          String(this.opts.routerLoglevel ?? 4),
          "--log-format",
          "json",
        ],
        { wrap: (cmd) => this.host("a").command(cmd) },
      );
      this.routerProc = { kind: "prefork", cli };
    } else {
      const peer = this.peer!;
      const pidFile = join(this.hostDir("a"), "router.pid");
      writeFileSync(pidFile, "");
      // What osrf_control runs: it forks a daemon per /config/routers/router and writes their pids.
      const r = await this.host("a").run([peer.bin("opensrf_router"), this.coreFile("a"), "routers", pidFile], {
        env: peer.env,
        timeoutMs: 30_000,
      });
      const pid = Number(readFileSync(pidFile, "utf8").trim().split(/\s+/)[0]);
      const ref = pid > 0 ? procRef(pid) : undefined;
      if (r.code !== 0 || !ref) {
        throw new Error(
          `opensrf_router exited ${r.code} and left no daemon: ${r.stdout}${r.stderr}\n${this.logTail()}`,
        );
      }
      this.routerProc = { kind: "c", ref };
    }
    await this.waitFor("the router to answer", timeoutMs, async () => {
      const r = await this.agent.request("router", "opensrf.router.info.class.list", [], 2);
      return Array.isArray(r.result?.[0]);
    });
  }

  get routerRunning(): boolean {
    const p = this.routerProc;
    if (!p) return false;
    if (p.cli) return p.cli.proc.exitCode === null && p.cli.proc.signalCode === null;
    return p.ref ? isRunning(p.ref) : false;
  }

  /** Pid of the running router (ours, or the C daemon). */
  get routerPid(): number {
    const p = this.routerProc;
    return p?.cli?.pid ?? p?.ref?.pid ?? 0;
  }

  /** Stops the router with `signal` and waits until it is gone. */
  async stopRouter(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const p = this.routerProc;
    if (!p) return;
    if (p.cli) await p.cli.stop(signal, 5000);
    else if (p.ref) {
      signalRef(p.ref, signal);
      if (!(await waitGone([p.ref], 5000))) {
        signalRef(p.ref, "SIGKILL");
        await waitGone([p.ref], 5000);
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // the services on hosts B and C

  /** Starts `serve` on a host and waits until the router lists its listener. */
  async startServe(name: string, timeoutMs = 60_000): Promise<CliProcess> {
    const proc = CliProcess.start(
      serveArgs({
        service: this.service,
        app: this.app,
        config: this.coreFile(name),
        settings: this.settingsFile,
        host: this.host(name).hostname,
        logfile: this.logFile(name, `${this.service}.log`),
        loglevel: this.opts.serveLoglevel ?? 3,
      }),
      { wrap: (cmd) => this.host(name).command(cmd) },
    );
    this.serves.set(name, proc);
    await this.waitFor(`the listener on host ${name} to be registered`, timeoutMs, async () => {
      if (proc.proc.exitCode !== null) throw new Error(`serve on ${name} exited ${proc.proc.exitCode}: ${proc.output}`);
      return (await this.listenerNodes()).some((jid) => hostOf(jid) === this.host(name).hostname);
    });
    return proc;
  }

  /** The router's nodes of the service (listener JIDs), from `opensrf.router.info.stats.class.all`. */
  async listenerNodes(): Promise<string[]> {
    const r = await this.agent.request("router", "opensrf.router.info.stats.class.all", [], 2);
    const all = r.result?.[0];
    if (!all || typeof all !== "object" || Array.isArray(all)) return [];
    const nodes = (all as Record<string, JsonValue>)[this.service];
    return nodes && typeof nodes === "object" && !Array.isArray(nodes) ? Object.keys(nodes) : [];
  }

  /** `osrf-prefork status <args>` run on a host (its loopback holds its listeners' endpoints). */
  async status(name: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return this.host(name).run(
      [...cliCommand(), "status", "--settings", this.settingsFile, "--host", this.host(name).hostname, ...args],
      { cwd: ROOT, timeoutMs: 30_000 },
    );
  }

  /** The Prometheus text of the listener on a host, fetched there. */
  async metrics(name: string): Promise<string> {
    const r = await this.host(name).run(
      [
        process.execPath,
        "-e",
        `const r = await fetch("http://127.0.0.1:${STATUS_PORT}/metrics"); process.stdout.write(await r.text());`,
      ],
      { cwd: ROOT, timeoutMs: 15_000 },
    );
    if (r.code !== 0) throw new Error(`metrics of host ${name}: exit ${r.code}: ${r.stderr}`);
    return r.stdout;
  }

  // -------------------------------------------------------------------------------------------

  /** Polls `probe` (every 100 ms) until it returns true; the error names `what`. */
  async waitFor(what: string, timeoutMs: number, probe: () => Promise<boolean>): Promise<number> {
    const t0 = performance.now();
    let last = "";
    for (;;) {
      try {
        if (await probe()) return performance.now() - t0;
        last = "not yet";
      } catch (e) {
        last = (e as Error).message;
      }
      if (performance.now() - t0 > timeoutMs) {
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${last})\n${this.logTail()}`);
      }
      await Bun.sleep(100);
    }
  }

  /** Tails of every log, for failure messages. */
  logTail(lines = 25): string {
    const parts: string[] = [];
    const files = [this.routerLog, this.logFile("b", `${this.service}.log`), this.logFile("c", `${this.service}.log`)];
    for (const f of files) {
      try {
        const text = readFileSync(f, "utf8").trimEnd();
        if (text) parts.push(`--- ${f}\n${text.split("\n").slice(-lines).join("\n")}`);
      } catch {
        // not written yet
      }
    }
    for (const [name, p] of this.serves)
      if (p.output.trim()) parts.push(`--- serve on ${name}\n${p.output.slice(-2000)}`);
    if (this.agent?.log.trim()) parts.push(`--- agent\n${this.agent.log.slice(-2000)}`);
    if (this.cluster) parts.push(this.cluster.logTail(10));
    return parts.join("\n");
  }

  /** Stops everything it started and removes the hosts. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.agent?.stop().catch(() => {});
    await Promise.all([...this.serves.values()].map((p) => p.stop("SIGTERM", 10_000).catch(() => 0)));
    await this.stopRouter().catch(() => {});
    await this.cluster?.stop().catch(() => {});
    await this.net.destroy();
  }

  private writeCore(h: TestHost): void {
    const dir = this.hostDir(h.name);
    mkdirSync(join(dir, "log"), { recursive: true });
    const [[user, pass], [ruser, rpass]] = USERS as [[string, string], [string, string]];
    // No <server>: every host connects to the domain's name, which its /etc/hosts points at the
    // nearby node. The C programs read the same file.
    const xml = `<?xml version="1.0"?>
<!-- opensrf_core.xml of test host ${h.hostname} (devkit/netns/scaleout.ts) -->
<config>
  <opensrf>
    <routers>
      <router><name>router</name><domain>${DOMAIN}</domain></router>
    </routers>
    <domain>${DOMAIN}</domain>
    <username>${user}</username>
    <passwd>${pass}</passwd>
    <port>${C2S_PORT}</port>
    <router_name>router</router_name>
    <msg_size_warn>1800000</msg_size_warn>
    <logfile>${join(dir, "log", "osrfsys.log")}</logfile>
    <loglevel>3</loglevel>
  </opensrf>
  <routers>
    <router>
      <trusted_domains>
        <server>${DOMAIN}</server>
        <client>${DOMAIN}</client>
      </trusted_domains>
      <transport>
        <server>${DOMAIN}</server>
        <port>${C2S_PORT}</port>
        <username>${ruser}</username>
        <password>${rpass}</password>
        <resource>router</resource>
        <connect_timeout>10</connect_timeout>
        <max_reconnect_attempts>5</max_reconnect_attempts>
      </transport>
      <logfile>${join(dir, "log", "router.log")}</logfile>
      <loglevel>${this.opts.router === "c" ? (this.opts.routerLoglevel ?? 3) : 3}</loglevel>
    </router>
  </routers>
  <shared><log_protect/></shared>
</config>
`;
    writeFileSync(join(dir, "opensrf_core.xml"), xml);
  }

  private settingsXml(): string {
    const unix: Record<string, number | string> = {
      // Warm pools: a burst of callers finds idle drones, none waits on a drone's start-up.
      min_children: 4,
      max_children: 8,
      max_requests: 100_000,
      status_port: STATUS_PORT,
      ...this.opts.unix,
    };
    const u = Object.entries(unix)
      .map(([k, v]) => `<${k}>${v}</${k}>`)
      .join("");
    // The hosts share this machine's file system: each gets a pid dir of its own (as each real
    // host has its own /openils/var/run), where its listener's default status socket lives.
    const hostSection = (name: string) => {
      const h = this.host(name).hostname;
      const pid = join(this.hostDir(name), "run");
      mkdirSync(pid, { recursive: true });
      return `<${h}><dirs><pid>${pid}</pid></dirs><activeapps><appname>${this.service}</appname></activeapps></${h}>`;
    };
    return `<?xml version="1.0"?>
<opensrf version="0.0.3">
  <default>
    <apps>
      <${this.service}>
        <keepalive>${this.opts.keepalive ?? 5}</keepalive>
        <language>typescript</language>
        <implementation>${this.app}</implementation>
        <unix_config>${u}</unix_config>
      </${this.service}>
    </apps>
  </default>
  <hosts>
    ${hostSection("b")}
    ${hostSection("c")}
  </hosts>
</opensrf>
`;
  }
}

/** The host a listener's or drone's JID names: `…/<service>_(listener|drone)_<host>_<time>_<pid>`. */
export function hostOf(jid: string): string {
  const m = /_(?:listener|drone)_([^_/]+)_[\d.]+_\d+$/.exec(jid);
  return m ? m[1]! : "";
}
