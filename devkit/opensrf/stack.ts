/**
 * The real OpenSRF C/Perl stack as a test peer: a private bus server on a free loopback port
 * (ejabberd for the 3.3 release; for `release: "main"` a redis-server with the ACL accounts of
 * redis-accounts.txt), the stack's config files in a private temp dir, and the real
 * `opensrf_router`, Perl `opensrf.settings` and C `opensrf.math` / `opensrf.dbmath`, each
 * started and waited for until a real request proves it serves. On 3.3 either the router or
 * the settings server can be left out or replaced by osrf-prefork's, and osrf-prefork services
 * can join the same bus.
 *
 * ```ts
 * const stack = await startOpenSrfStack();
 * const run = await stack.srfsh("request opensrf.math add 2, 2");   // run.replies[0].data → [4]
 * await stack.stop();
 * ```
 */
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { killAtExit, releaseAtExit } from "../exit-kill.ts";
import { TEST_USERS } from "../osrf-config.ts";
import { freePort } from "../ports.ts";
import { CliProcess } from "../processes.ts";
import { type RedisServer, startRedisServer } from "../redis-server.ts";
import { type StartXmppServerOptions, startXmppServer, type XmppServer } from "../xmpp-server.ts";
import {
  type ClientRun,
  parseSrfshWireLog,
  runPerlClient,
  runSrfsh,
  type ScriptStep,
  type SrfshRun,
} from "./clients.ts";
import {
  DEFAULT_PEER_SERVICES,
  PEER_DOMAIN,
  type PeerConfigInput,
  type PeerConfigPaths,
  type PeerService,
  srfshXml,
  writePeerConfigs,
} from "./configs.ts";
import { ensurePeer, type OpenSrfPeer, type PeerRelease } from "./peer.ts";
import { descendants, isRunning, type ProcRef, procRef, procTitle, signalRef, waitGone } from "./procs.ts";

/** Who runs the router: the real C `opensrf_router`, osrf-prefork's (`osrf-prefork router`), or nobody yet. */
export type RouterChoice = "c" | "prefork" | false;
/** Who runs opensrf.settings: the real Perl server, osrf-prefork's built-in one, or nobody yet. */
export type SettingsChoice = "perl" | "prefork" | false;

/** Options for {@link createOpenSrfStack} and {@link startOpenSrfStack}. */
export interface OpenSrfStackOptions {
  /**
   * Which OpenSRF (default "3.3", on ejabberd). "main" is the Redis-era branch on a private
   * redis-server; there only the real pieces exist (`router: "c"`, `settings: "perl"`).
   */
  release?: PeerRelease;
  /**
   * Default "c". `false` starts nothing (every other piece needs a router): start your own,
   * then {@link OpenSrfStack.waitForRouter} and the pieces you want, in your order.
   */
  router?: RouterChoice;
  /** Default "perl". `false` starts no C service either: they need a settings server to start. */
  settings?: SettingsChoice;
  /** Real C services to start, in order (default `["opensrf.dbmath", "opensrf.math"]`: math forwards to dbmath). */
  cServices?: string[];
  /**
   * More applications for opensrf.xml (a `typescript` one for `osrf-prefork serve`, say), or
   * replacements for the defaults (settings, math, dbmath) by name, e.g. other pool sizes.
   */
  services?: PeerService[];
  /** Restrict the router to these classes (opensrf_core.xml `<services>`); default any class. */
  routerServices?: string[];
  /** OpenSRF log level of every process (default 3, info; 4 debug shows every message). */
  loglevel?: number;
  /** Run a private memcached and list it in opensrf.xml's `<cache>` (default false: no test service uses one). */
  memcached?: boolean;
  /**
   * ejabberd c2s accept queue (default 1024). ejabberd's own default of 5 makes logins wait
   * for SYN retransmits or fail when a pool starts: 200 simultaneous connects saw 43 errors
   * and a 1 s median with 5, none and 30 ms with 128.
   */
  xmppBacklog?: number;
  /** Extra Erlang VM flags for ejabberd (see {@link StartXmppServerOptions.erlOptions}), e.g. for benchmarks. */
  xmppErlOptions?: string;
  /** Bound for each process to become ready (default 60 s; the machine may be loaded). */
  startTimeoutMs?: number;
  /** A built peer (default: {@link ensurePeer}, which builds or reuses the cache). */
  peer?: OpenSrfPeer;
}

/** A live process of the stack, as `ps` would show it. */
export interface PeerProcess {
  role: "router" | "listener" | "drone" | "other";
  /** Service of a listener or drone. */
  service?: string;
  pid: number;
  /** Process title, e.g. `OpenSRF Listener [opensrf.math]`. */
  title: string;
  /** Who started it: the real OpenSRF stack, or osrf-prefork. */
  impl: "opensrf" | "prefork";
}

interface Tracked {
  role: "router" | "listener" | "other";
  service?: string;
  ref: ProcRef;
  impl: "opensrf" | "prefork";
  /** Our handle when we spawned it ourselves (not for daemons). */
  child?: Subprocess;
  cli?: CliProcess;
}

const DEFAULT_C_SERVICES = ["opensrf.dbmath", "opensrf.math"];
/** Short per-probe bound: srfsh otherwise waits up to 120 s for a reply that will not come. */
const PROBE_TIMEOUT_MS = 5_000;

/**
 * Starts a whole stack: private ejabberd, configs, then (as chosen) router, settings server
 * and C services, each waited for. On any failure everything started is stopped again and
 * the error carries the relevant log tails.
 */
export async function startOpenSrfStack(opts: OpenSrfStackOptions = {}): Promise<OpenSrfStack> {
  const router = opts.router ?? "c";
  const settings = router === false ? false : (opts.settings ?? "perl");
  if (opts.cServices?.length && settings === false) {
    throw new Error("startOpenSrfStack: C services need a router and a settings server; use createOpenSrfStack");
  }
  if (router === false && opts.settings) {
    throw new Error("startOpenSrfStack: a settings server needs a router; use createOpenSrfStack");
  }
  const stack = await createOpenSrfStack(opts);
  try {
    if (router === "c") await stack.startRouter();
    else if (router === "prefork") await stack.startPreforkRouter();
    if (settings === "perl") await stack.startPerlSettings();
    else if (settings === "prefork") await stack.startPreforkSettings();
    if (settings !== false) await stack.startCServices(opts.cServices ?? DEFAULT_C_SERVICES);
    return stack;
  } catch (err) {
    await stack.stop().catch(() => {});
    throw err;
  }
}

/**
 * Starts several stacks at once (each a promise of a started {@link OpenSrfStack}). If any fails,
 * the ones that did start are stopped before the first failure is rethrown, so a suite whose
 * `beforeAll` fails leaves no processes behind and its `afterAll` has nothing half-set to stop.
 */
export async function startTogether<T extends readonly OpenSrfStack[]>(
  starts: {
    readonly [K in keyof T]: Promise<T[K]>;
  },
): Promise<T> {
  const settled = await Promise.allSettled(starts);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (!failed) return settled.map((s) => (s as PromiseFulfilledResult<OpenSrfStack>).value) as unknown as T;
  await Promise.all(settled.map((s) => (s.status === "fulfilled" ? s.value.stop().catch(() => {}) : undefined)));
  throw failed.reason;
}

/**
 * The first half of {@link startOpenSrfStack}: builds (or reuses) the peer, starts the private
 * ejabberd and writes the configs, but starts no OpenSRF process. Use it to choose the order
 * yourself (e.g. your own router before {@link OpenSrfStack.startPerlSettings}).
 */
export async function createOpenSrfStack(opts: OpenSrfStackOptions = {}): Promise<OpenSrfStack> {
  const release = opts.release ?? "3.3";
  const peer = opts.peer ?? (await ensurePeer(release));
  const server: BusServer =
    release === "main"
      ? { kind: "redis", redis: await startRedisServer() }
      : {
          kind: "xmpp",
          xmpp: await startXmppServer({
            kind: "ejabberd",
            users: TEST_USERS,
            backlog: opts.xmppBacklog ?? 1024,
            ...(opts.xmppErlOptions ? { erlOptions: opts.xmppErlOptions } : {}),
          }),
        };
  let cache: Memcached | undefined;
  try {
    if (opts.memcached) cache = await startMemcached();
    return new OpenSrfStack(peer, server, opts, cache);
  } catch (err) {
    if (cache) signalRef(cache.ref, "SIGKILL");
    await busServerOf(server)
      .stop()
      .catch(() => {});
    throw err;
  }
}

/** The stack's private bus server: ejabberd (3.3) or redis-server (main). */
export type BusServer = { kind: "xmpp"; xmpp: XmppServer } | { kind: "redis"; redis: RedisServer };

function busServerOf(s: BusServer): { port: number; logTail(lines?: number): string; stop(): Promise<void> } {
  return s.kind === "xmpp" ? s.xmpp : s.redis;
}

interface Memcached {
  addr: string;
  ref: ProcRef;
  child: Subprocess;
}

/** A private memcached on a free loopback port, ready when it answers `version`. */
async function startMemcached(): Promise<Memcached> {
  const memcached = Bun.which("memcached", { PATH: `${process.env.PATH ?? ""}:/usr/bin:/usr/sbin` });
  if (!memcached) throw new Error("memcached is not installed (devkit/opensrf/build.sh installs it)");
  const port = await freePort();
  // memcached refuses to run as root without naming a user to switch to.
  const user = process.getuid?.() === 0 ? ["-u", "nobody"] : [];
  const child = Bun.spawn([memcached, "-l", "127.0.0.1", "-p", String(port), "-U", "0", "-m", "16", ...user], {
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
  });
  const ref = procRef(child.pid);
  const deadline = performance.now() + 10_000;
  for (;;) {
    if (ref && (await memcachedAnswers(port))) return { addr: `127.0.0.1:${port}`, ref, child };
    if (child.exitCode !== null || performance.now() > deadline) {
      child.kill("SIGKILL");
      const err = await new Response(child.stderr).text();
      throw new Error(`memcached on 127.0.0.1:${port} did not start (exit ${child.exitCode}): ${err.trim()}`);
    }
    await Bun.sleep(25);
  }
}

async function memcachedAnswers(port: number): Promise<boolean> {
  try {
    let got = "";
    const { promise, resolve } = Promise.withResolvers<boolean>();
    const sock = await Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        open: (s) => void s.write("version\r\n"),
        data: (s, d) => {
          got += d.toString();
          if (got.includes("\r\n")) {
            resolve(got.startsWith("VERSION"));
            s.end();
          }
        },
        close: () => resolve(false),
        error: () => resolve(false),
      },
    });
    const timer = setTimeout(() => {
      resolve(false);
      sock.end();
    }, 1000);
    const ok = await promise;
    clearTimeout(timer);
    return ok;
  } catch {
    return false;
  }
}

/** A running (or partly started) real OpenSRF stack. Create it with {@link startOpenSrfStack}. */
export class OpenSrfStack {
  /** The private directory holding configs, logs, pid files and the srfsh HOME; removed by {@link stop}. */
  readonly dir: string;
  /** The written config files and directories. */
  readonly paths: PeerConfigPaths;
  /** XMPP domain (or Redis `<domain>`), which is also the host the C stack connects to. */
  readonly domain = PEER_DOMAIN;
  /** Which OpenSRF runs. */
  readonly release: PeerRelease;
  /** `[user, password]` of the account services and clients log in with. */
  readonly login: [string, string];
  /** Every application declared in opensrf.xml. */
  get services(): readonly PeerService[] {
    return this.declared;
  }
  private declared: PeerService[];
  private readonly configInput: Omit<PeerConfigInput, "services">;
  /** Environment the real programs run with (PATH, LD_LIBRARY_PATH, PERL5LIB, HOME = {@link PeerConfigPaths.home}). */
  readonly env: Record<string, string>;
  private readonly tracked: Tracked[] = [];
  private readonly startTimeoutMs: number;
  private readonly loglevel: number;
  private stopped = false;
  private wireRuns = 0;

  /** @internal use {@link createOpenSrfStack} */
  constructor(
    /** The built OpenSRF install. */
    readonly peer: OpenSrfPeer,
    /** The private bus server. */
    readonly server: BusServer,
    opts: OpenSrfStackOptions,
    memcached?: Memcached,
  ) {
    this.release = server.kind === "redis" ? "main" : "3.3";
    const accounts: [[string, string], [string, string]] =
      server.kind === "redis"
        ? [server.redis.accounts.opensrf, server.redis.accounts.router]
        : [TEST_USERS[0]!, TEST_USERS[1]!];
    this.login = accounts[0];
    this.dir = mkdtempSync(join(tmpdir(), "osrf-peer-"));
    killAtExit(this); // until stop(): a dying test process still kills the stack
    this.startTimeoutMs = opts.startTimeoutMs ?? 60_000;
    this.loglevel = opts.loglevel ?? 3;
    const byName = new Map(DEFAULT_PEER_SERVICES.map((s) => [s.name, s]));
    for (const s of opts.services ?? []) byName.set(s.name, s);
    this.declared = [...byName.values()];
    this.configInput = {
      dir: this.dir,
      xmppPort: busServerOf(server).port,
      opensrfUser: accounts[0],
      routerUser: accounts[1],
      loglevel: this.loglevel,
      ...(opts.routerServices ? { routerServices: opts.routerServices } : {}),
      ...(memcached ? { memcached: memcached.addr } : {}),
    };
    this.paths = writePeerConfigs({ ...this.configInput, services: [...this.declared] });
    if (memcached) this.tracked.push({ role: "other", ref: memcached.ref, impl: "opensrf", child: memcached.child });
    this.env = { ...(process.env as Record<string, string>), ...peer.env, HOME: this.paths.home };
  }

  /** The private ejabberd (plain passwords, mod_legacy_auth, raised backlog) of a 3.3 stack. */
  get xmpp(): XmppServer {
    if (this.server.kind !== "xmpp") throw new Error("this OpenSRF main stack runs on Redis: use .redis");
    return this.server.xmpp;
  }

  /** The private redis-server (ACL accounts of redis-accounts.txt) of a main stack. */
  get redis(): RedisServer {
    if (this.server.kind !== "redis") throw new Error("this OpenSRF 3.3 stack runs on XMPP: use .xmpp");
    return this.server.redis;
  }

  // ----------------------------------------------------------------------------------------
  // starting the real processes

  /**
   * Starts the real C router as osrf_control does (`opensrf_router <core> routers <pidfile>`):
   * it forks one daemon per `/config/routers/router` and writes their pids to router.pid once
   * they are detached. Ready when it answers `opensrf.router.info.class.list` to srfsh.
   */
  async startRouter(): Promise<void> {
    const pidFile = join(this.paths.pidDir, "router.pid");
    const out = join(this.paths.logDir, "opensrf_router.out");
    const code = await this.runToExit([this.peer.bin("opensrf_router"), this.paths.core, "routers", pidFile], out);
    const pids = existsSync(pidFile) ? readFileSync(pidFile, "utf8").split(/\s+/).filter(Boolean).map(Number) : [];
    const refs = pids.map(procRef).filter((r): r is ProcRef => r !== undefined);
    if (code !== 0 || refs.length === 0) {
      throw this.failure(
        `opensrf_router exited ${code} and left ${refs.length ? refs.map((r) => r.pid) : "no"} daemon`,
      );
    }
    for (const ref of refs) this.tracked.push({ role: "router", ref, impl: "opensrf" });
    await this.waitForRouter(this.startTimeoutMs, () => (refs.some(isRunning) ? undefined : "the router daemon died"));
  }

  /**
   * Starts the real Perl opensrf.settings server through osrf_control, in the foreground
   * (`--no-daemon`, so the process we spawn is the listener itself and we hold its pid).
   * `--ignore-orphans`: osrf_control looks for running services machine-wide with
   * `ps x | grep 'OpenSRF Listener [S]'`, which would see other stacks on this machine.
   */
  async startPerlSettings(): Promise<void> {
    await this.startPerlService("opensrf.settings");
  }

  /**
   * Starts a real Perl service of opensrf.xml (e.g. `opensrf.slooooooow`, whose
   * OpenSRF::Application::Slooooooow ships with OpenSRF) the way {@link startPerlSettings} does.
   * osrf_control reads opensrf.xml itself when opensrf_core.xml names it in
   * `<settings_config>`; give `config` a core file without it and the service takes its
   * settings from opensrf.settings over the bus instead, as on a host without the file.
   */
  async startPerlService(name: string, opts: { config?: string } = {}): Promise<void> {
    const out = openSync(join(this.paths.logDir, `osrf_control.${name}.out`), "a");
    let child: Subprocess;
    try {
      child = Bun.spawn(
        [
          this.peer.bin("osrf_control"),
          "--localhost",
          "--config",
          opts.config ?? this.paths.core,
          "--pid-dir",
          this.paths.pidDir,
          "--service",
          name,
          "--start",
          "--no-daemon",
          "--ignore-orphans",
          // main: osrf_control first checks the bus accounts (--reset-message-bus's soft
          // form), logging in as `default` with the password of this script.
          ...(this.server.kind === "redis" ? ["--bus-accounts", this.server.redis.accountsFile] : []),
        ],
        { cwd: this.dir, env: this.env, stdin: "ignore", stdout: out, stderr: out },
      );
    } finally {
      closeSync(out);
    }
    const ref = procRef(child.pid);
    if (!ref) throw this.failure(`osrf_control for ${name} exited at once (code ${await child.exited})`);
    this.tracked.push({ role: "listener", service: name, ref, impl: "opensrf", child });
    await this.waitForService(name, this.startTimeoutMs, () =>
      child.exitCode === null ? undefined : `the Perl ${name} listener exited with code ${child.exitCode}`,
    );
  }

  /**
   * Starts one real C service as osrf_control does (`opensrf-c -a start -s S -h localhost`).
   * opensrf-c fetches the host's settings from opensrf.settings, forks a listener that
   * daemonizes and writes `<pid dir>/S.pid`, and exits; the listener then registers with the
   * router. Ready when the router lists S and S answers `opensrf.system.echo`.
   */
  async startCService(name: string): Promise<void> {
    await this.launchCService(name);
    await this.waitForCService(name);
  }

  /** {@link startCService} for several services, launched one after another and then waited for together. */
  async startCServices(names: readonly string[]): Promise<void> {
    for (const name of names) await this.launchCService(name);
    await Promise.all(names.map((name) => this.waitForCService(name)));
  }

  private async launchCService(name: string): Promise<void> {
    const svc = this.services.find((s) => s.name === name);
    if (svc?.language !== "c") throw new Error(`${name} is not a C service of opensrf.xml (have: ${this.names()})`);
    const pidFile = join(this.paths.pidDir, `${name}.pid`);
    rmSync(pidFile, { force: true });
    const out = join(this.paths.logDir, `opensrf-c.${name}.out`);
    const cmd = [this.peer.bin("opensrf-c"), "-c", this.paths.core, "-x", "opensrf", "-p", this.paths.pidDir];
    const before = existsSync(out) ? statSync(out).size : 0;
    const code = await this.runToExit([...cmd, "-h", PEER_DOMAIN, "-a", "start", "-s", name], out);
    if (code !== 0) throw this.failure(`opensrf-c -a start -s ${name} exited with code ${code}`);
    // opensrf-c exits 0 without starting anything when it cannot get the settings; it prints
    // "* starting service pid=N S" only when it forked a listener.
    if (!readFileSync(out).subarray(before).toString().includes("starting service pid=")) {
      throw this.failure(`opensrf-c started no ${name} listener; is opensrf.settings serving?`);
    }
    // The daemonized listener writes its pid file just after opensrf-c returns.
    const deadline = performance.now() + 10_000;
    while (!existsSync(pidFile) || !readFileSync(pidFile, "utf8").trim()) {
      if (performance.now() > deadline) {
        throw this.failure(`the ${name} listener wrote no ${pidFile}`);
      }
      await Bun.sleep(25);
    }
    const ref = procRef(Number(readFileSync(pidFile, "utf8").trim()));
    if (!ref) throw this.failure(`the ${name} listener died right after starting`);
    this.tracked.push({ role: "listener", service: name, ref, impl: "opensrf" });
  }

  private async waitForCService(name: string): Promise<void> {
    // The newest: a service started again after its listener died is tracked once more.
    const t = this.tracked.findLast((p) => p.role === "listener" && p.service === name);
    await this.waitForService(name, this.startTimeoutMs, () =>
      t && isRunning(t.ref) ? undefined : `the ${name} listener died`,
    );
  }

  /**
   * Replaces (by name) or adds applications in opensrf.xml and rewrites it, e.g. other pool
   * sizes. Servers that already read it keep what they read: stop and start them again
   * (the Perl settings server too, for the C services: they get their settings from it).
   */
  updateServices(services: readonly PeerService[]): void {
    const byName = new Map(this.declared.map((s) => [s.name, s]));
    for (const s of services) byName.set(s.name, s);
    this.declared = [...byName.values()];
    writePeerConfigs({ ...this.configInput, services: [...this.declared] });
  }

  /**
   * Stops the running listener of `service` (real or osrf-prefork) with SIGTERM and waits
   * until it and its drones are gone; whatever is left after `timeoutMs` is killed.
   */
  async stopService(service: string, timeoutMs = 10_000): Promise<void> {
    const mine = this.tracked.filter((t) => t.role === "listener" && t.service === service && isRunning(t.ref));
    if (mine.length === 0) throw new Error(`no running ${service} listener in this stack (have: ${this.running()})`);
    const refs = mine.map((t) => t.ref);
    const tree = [...refs, ...descendants(refs)];
    for (const ref of refs) signalRef(ref, "SIGTERM");
    if (!(await waitGone(tree, timeoutMs))) {
      for (const ref of [...tree, ...descendants(refs)]) signalRef(ref, "SIGKILL");
      await waitGone(tree, 3_000);
    }
    await Promise.all(mine.map((t) => t.child?.exited ?? t.cli?.proc.exited));
  }

  // ----------------------------------------------------------------------------------------
  // osrf-prefork on the same bus

  /**
   * Runs `osrf-prefork <args>` (tracked as a router, a service's listener or other; stopped by
   * {@link stop}) without waiting for it. For the common cases use {@link servePrefork},
   * {@link startPreforkRouter} or {@link startPreforkSettings}, which wait until it serves.
   */
  startPreforkProcess(
    args: string[],
    as: "router" | { service: string } | "other",
    env: Record<string, string> = {},
  ): CliProcess {
    // main: the stack's opensrf_core.xml is laid out as main's own, without <bus>; a site
    // running osrf-prefork on it sets OSRF_BUS=redis, as here.
    const bus = this.release === "main" ? { OSRF_BUS: "redis" } : {};
    const cli = CliProcess.start(args, {
      env: { ...process.env, HOME: this.paths.home, ...bus, ...env } as Record<string, string>,
    });
    const ref = procRef(cli.pid);
    if (ref) {
      const who = typeof as === "string" ? { role: as } : { role: "listener" as const, service: as.service };
      this.tracked.push({ ...who, ref, impl: "prefork", cli });
    }
    return cli;
  }

  /**
   * `osrf-prefork serve --service S --app FILE` with this stack's opensrf_core.xml and
   * opensrf.xml (declare S through {@link OpenSrfStackOptions.services}), waited for until the
   * router lists it and it answers echo. `env` is added to its environment (and its drones'),
   * e.g. `BUN_OPTIONS` for CPU profiles.
   */
  async servePrefork(
    service: string,
    app: string,
    extraArgs: string[] = [],
    env: Record<string, string> = {},
  ): Promise<CliProcess> {
    const cli = this.startPreforkProcess(
      [
        "serve",
        "--service",
        service,
        "--app",
        app,
        ...this.preforkCommon(),
        "--settings",
        this.paths.settings,
        ...extraArgs,
      ],
      { service },
      env,
    );
    await this.waitForService(service, this.startTimeoutMs, () => exited(cli));
    return cli;
  }

  /** osrf-prefork's router in place of the C one, from the same opensrf_core.xml. */
  async startPreforkRouter(): Promise<CliProcess> {
    const cli = this.startPreforkProcess(["router", "--config", this.paths.core, ...this.logArgs()], "router");
    await this.waitForRouter(this.startTimeoutMs, () => exited(cli));
    return cli;
  }

  /**
   * osrf-prefork's built-in opensrf.settings in place of the Perl one, serving the same
   * opensrf.xml, or `settingsFile` (e.g. one that differs from what the other programs could read).
   */
  async startPreforkSettings(settingsFile = this.paths.settings): Promise<CliProcess> {
    const cli = this.startPreforkProcess(["settings", ...this.preforkCommon(), "--settings", settingsFile], {
      service: "opensrf.settings",
    });
    await this.waitForService("opensrf.settings", this.startTimeoutMs, () => exited(cli));
    return cli;
  }

  private logArgs(): string[] {
    return ["--logfile", "stderr", "--loglevel", String(Math.min(this.loglevel, 5))];
  }

  private preforkCommon(): string[] {
    return ["--config", this.paths.core, "--host", PEER_DOMAIN, ...this.logArgs()];
  }

  // ----------------------------------------------------------------------------------------
  // readiness

  /** Waits until some router answers `opensrf.router.info.class.list` (asked by the real srfsh). */
  async waitForRouter(timeoutMs = this.startTimeoutMs, dead?: () => string | undefined): Promise<void> {
    await this.until(`the router to answer on ${this.domain}`, timeoutMs, dead, async () => {
      await this.classList();
      return true;
    });
  }

  /**
   * Waits until the router lists `service` and the service answers `opensrf.system.echo`,
   * both asked by the real srfsh. `dead` may report that the process being waited for is
   * gone, which fails at once instead of at the timeout.
   */
  async waitForService(
    service: string,
    timeoutMs = this.startTimeoutMs,
    dead?: () => string | undefined,
  ): Promise<void> {
    await this.until(`${service} to register and answer`, timeoutMs, dead, async () => {
      if (!(await this.classList()).includes(service)) return false;
      const run = await this.srfsh(`request ${service} opensrf.system.echo "ready"`, { timeoutMs: PROBE_TIMEOUT_MS });
      return run.replies[0]?.data[0] === "ready";
    });
  }

  /** The router's registered classes (`request router opensrf.router.info.class.list` through srfsh). */
  async classList(): Promise<string[]> {
    const run = await this.srfsh("request router opensrf.router.info.class.list", { timeoutMs: PROBE_TIMEOUT_MS });
    const list = run.replies[0]?.data[0];
    if (!Array.isArray(list)) {
      throw new Error(
        `no class list from the router: ${(run.stdout + run.stderr).trim().slice(-500) || "(no output)"}`,
      );
    }
    return list.map(String);
  }

  private async until(
    what: string,
    timeoutMs: number,
    dead: (() => string | undefined) | undefined,
    probe: () => Promise<boolean>,
  ): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    let last = "";
    for (let delay = 50; ; delay = Math.min(delay * 2, 500)) {
      const gone = dead?.();
      if (gone) throw this.failure(`waiting for ${what}: ${gone}`);
      try {
        if (await probe()) return;
        last = "not yet";
      } catch (err) {
        last = err instanceof Error ? err.message : String(err);
      }
      if (performance.now() > deadline)
        throw this.failure(`timed out after ${timeoutMs} ms waiting for ${what} (${last})`);
      await Bun.sleep(delay);
    }
  }

  // ----------------------------------------------------------------------------------------
  // clients

  /**
   * Runs the real srfsh with these commands (one per line, as in an srfsh script) and returns
   * its output, split per `request` in {@link SrfshRun.replies}. Default bound 30 s. With
   * `wire: true` it also returns the bodies srfsh sent and received ({@link SrfshRun.wire}).
   * Waits between commands ({@link ScriptStep}) hold srfsh at that point of the script.
   */
  srfsh(
    commands: readonly ScriptStep[] | string,
    opts: { timeoutMs?: number; wire?: boolean } = {},
  ): Promise<SrfshRun> {
    if (opts.wire) return this.srfshWire(commands, opts.timeoutMs);
    return runSrfsh(this.peer.bin("srfsh"), commands, { env: this.env, cwd: this.dir }, opts.timeoutMs);
  }

  /**
   * srfsh with a HOME of its own whose `.srfsh.xml` logs at loglevel 4 to a log of its own:
   * its C library then logs every body it sends and receives, which {@link SrfshRun.wire} holds.
   */
  private async srfshWire(commands: readonly ScriptStep[] | string, timeoutMs?: number): Promise<SrfshRun> {
    const n = ++this.wireRuns;
    const home = join(this.dir, `srfsh-wire-${n}`);
    const log = join(this.paths.logDir, `srfsh-wire-${n}.log`);
    mkdirSync(home);
    const login = { opensrfUser: this.login, xmppPort: busServerOf(this.server).port, loglevel: 4 };
    writeFileSync(join(home, ".srfsh.xml"), srfshXml(login, log));
    const run = await runSrfsh(
      this.peer.bin("srfsh"),
      commands,
      { env: { ...this.env, HOME: home }, cwd: this.dir },
      timeoutMs,
    );
    return { ...run, wire: parseSrfshWireLog(existsSync(log) ? readFileSync(log, "utf8") : "") };
  }

  /**
   * Runs a Perl script with the real Perl client bootstrapped on this bus (OpenSRF::System,
   * OpenSRF::AppSession and JSON::XS loaded; `bootstrap: false` skips bootstrap_client).
   */
  perl(
    script: string,
    opts: { bootstrap?: boolean; timeoutMs?: number; stdin?: readonly ScriptStep[] } = {},
  ): Promise<ClientRun> {
    return runPerlClient(
      script,
      { env: this.env, cwd: this.dir, core: this.paths.core, scratchDir: this.paths.logDir },
      opts,
    );
  }

  // ----------------------------------------------------------------------------------------
  // processes and signals

  /** Every live process of the stack (routers, listeners and their drones), real and osrf-prefork. */
  processes(): PeerProcess[] {
    const out: PeerProcess[] = [];
    for (const t of this.tracked) {
      if (!isRunning(t.ref)) continue;
      for (const ref of [t.ref, ...descendants([t.ref])]) {
        const title = procTitle(ref.pid);
        const m = /OpenSRF (Router|Listener|Drone)(?: \[([^\]]+)\])?/.exec(title);
        const role = m ? (m[1]!.toLowerCase() as PeerProcess["role"]) : ref === t.ref ? t.role : "other";
        const service = m?.[2] ?? t.service;
        out.push({ role, ...(service ? { service } : {}), pid: ref.pid, title, impl: t.impl });
      }
    }
    return out;
  }

  /** Pid of the running listener of `service` (real or osrf-prefork); throws if there is none. */
  listenerPid(service: string): number {
    const t = this.tracked.find((p) => p.role === "listener" && p.service === service && isRunning(p.ref));
    if (!t) throw new Error(`no running ${service} listener in this stack (have: ${this.running()})`);
    return t.ref.pid;
  }

  /** The osrf-prefork router of this stack (`router: "prefork"`), for its log; undefined with C's. */
  preforkRouter(): CliProcess | undefined {
    return this.tracked.find((t) => t.role === "router" && t.impl === "prefork")?.cli;
  }

  /** The osrf-prefork process serving `service` in this stack (e.g. its settings server), for its log. */
  preforkListener(service: string): CliProcess | undefined {
    return this.tracked.find((t) => t.role === "listener" && t.service === service && t.impl === "prefork")?.cli;
  }

  /** Pids of the running router daemons (C or osrf-prefork). */
  routerPids(): number[] {
    return this.tracked.filter((p) => p.role === "router" && isRunning(p.ref)).map((p) => p.ref.pid);
  }

  /**
   * Sends a signal to a service's listener, or to the routers with `"router"`. Listeners:
   * SIGUSR2 re-registers with the routers, SIGUSR1 unregisters, SIGHUP reloads, SIGTERM is a
   * graceful stop, SIGINT a fast one.
   */
  signal(target: string, sig: NodeJS.Signals): void {
    const refs = this.tracked.filter(
      (p) =>
        isRunning(p.ref) && (target === "router" ? p.role === "router" : p.role === "listener" && p.service === target),
    );
    if (refs.length === 0) throw new Error(`no running ${target} process in this stack (have: ${this.running()})`);
    for (const t of refs) signalRef(t.ref, sig);
  }

  /** The last `lines` lines of every log of the stack (OpenSRF logs, launcher output, osrf-prefork, ejabberd). */
  logTail(lines = 30): string {
    const parts: string[] = [];
    const files = [
      "router.log",
      "osrfsys.log",
      "opensrf.settings_stderr.log",
      "opensrf_router.out",
      ...this.services.map((s) => `osrf_control.${s.name}.out`),
      ...this.services.map((s) => `opensrf-c.${s.name}.out`),
    ];
    for (const f of files.map((n) => join(this.paths.logDir, n))) {
      if (!existsSync(f)) continue;
      const text = readFileSync(f, "utf8").trimEnd();
      if (text) parts.push(`--- ${f}\n${text.split("\n").slice(-lines).join("\n")}`);
    }
    for (const t of this.tracked) {
      const text = t.cli?.output.trimEnd();
      if (text) parts.push(`--- osrf-prefork pid ${t.ref.pid}\n${text.split("\n").slice(-lines).join("\n")}`);
    }
    const busName = this.server.kind === "xmpp" ? "ejabberd" : "redis-server";
    parts.push(`--- ${busName}\n${busServerOf(this.server).logTail(Math.min(lines, 20))}`);
    return parts.join("\n");
  }

  /**
   * Stops every process the stack started — services (SIGTERM), then routers, then SIGKILL for
   * whatever of their process trees is left after a bound — then ejabberd, and removes
   * {@link dir}. Idempotent; safe after a failed start.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const everything = [...this.tracked.map((t) => t.ref), ...descendants(this.tracked.map((t) => t.ref))];
    const listeners = this.tracked.filter((t) => t.role !== "router");
    const routers = this.tracked.filter((t) => t.role === "router");
    for (const t of listeners) signalRef(t.ref, "SIGTERM");
    await waitGone(
      listeners.map((t) => t.ref),
      5_000,
    );
    for (const t of routers) signalRef(t.ref, "SIGTERM");
    await waitGone(
      routers.map((t) => t.ref),
      3_000,
    );
    // Drones spawned since the snapshot, then everything left.
    const late = descendants(this.tracked.map((t) => t.ref));
    for (const ref of [...everything, ...late]) signalRef(ref, "SIGKILL");
    const survivors = [...everything, ...late];
    const clean = await waitGone(survivors, 3_000);
    await Promise.all(this.tracked.map((t) => t.child?.exited ?? t.cli?.proc.exited));
    await busServerOf(this.server).stop();
    releaseAtExit(this);
    rmSync(this.dir, { recursive: true, force: true });
    if (!clean) throw new Error(`OpenSRF processes ${survivors.filter(isRunning).map((r) => r.pid)} survived SIGKILL`);
  }

  /** Synchronous last resort at process exit: SIGKILL every tracked tree, remove the dir. */
  killSync(): void {
    const refs = this.tracked.map((t) => t.ref);
    for (const ref of [...refs, ...descendants(refs)]) signalRef(ref, "SIGKILL");
    rmSync(this.dir, { recursive: true, force: true });
  }

  // ----------------------------------------------------------------------------------------

  /** Runs a launcher that exits by itself (opensrf_router, opensrf-c) with output to a file. */
  private async runToExit(cmd: string[], outFile: string): Promise<number> {
    const out = openSync(outFile, "a");
    let proc: Subprocess;
    try {
      proc = Bun.spawn(cmd, { cwd: this.dir, env: this.env, stdin: "ignore", stdout: out, stderr: out });
    } finally {
      closeSync(out);
    }
    const timer = setTimeout(() => proc.kill("SIGKILL"), 30_000);
    try {
      return await proc.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  private names(): string {
    return this.services.map((s) => s.name).join(", ");
  }

  private running(): string {
    const live = this.tracked.filter((t) => isRunning(t.ref));
    return live.map((t) => `${t.role}${t.service ? ` ${t.service}` : ""} ${t.ref.pid}`).join(", ") || "nothing";
  }

  private failure(what: string): Error {
    return new Error(`real OpenSRF stack in ${this.dir}: ${what}\n${this.logTail()}`);
  }
}

function exited(cli: CliProcess): string | undefined {
  const code = cli.proc.exitCode;
  return code === null ? undefined : `osrf-prefork exited with code ${code}`;
}
