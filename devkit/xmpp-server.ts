import { randomBytes } from "node:crypto";
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { ejabberdctl, ejabberdUser, findServerBinary, writeEjabberdDir } from "./ejabberd-config.ts";
import { killAtExit, releaseAtExit } from "./exit-kill.ts";
import { readProc } from "./load.ts";
import { freePort } from "./ports.ts";
import { runCommand } from "./processes.ts";
import { inBandRegister, RawXmppConnection, saslPlainCheck } from "./raw-xmpp.ts";

/** Which XMPP server implementation to run. */
export type XmppServerKind = "prosody" | "ejabberd";

/** A private, loopback-only XMPP server started for tests. */
export interface XmppServer {
  readonly kind: XmppServerKind;
  readonly host: "127.0.0.1";
  /** c2s port (plain socket, no TLS). Stays the same across {@link XmppServer.restart}. */
  readonly port: number;
  /** The one virtual host: "localhost". */
  readonly domain: string;
  /** Private directory holding config, data and logs; removed by {@link XmppServer.stop}. */
  readonly dir: string;
  /** OS pid of the server process itself (prosody's Lua process, ejabberd's beam.smp); changes on restart. */
  readonly pid: number;
  /** Milliseconds from spawn until a real login worked, for the last start or restart. */
  readonly startupMs: number;
  /** Creates an account (server must be running). */
  addUser(user: string, password: string): Promise<void>;
  /** Stops the server, makes sure none of its processes survive, removes {@link XmppServer.dir}. Idempotent. */
  stop(): Promise<void>;
  /** Stops the server (keeping data and accounts) and starts it again on the same port. */
  restart(): Promise<void>;
  /** The last `lines` lines of the server's logs, for failure messages. */
  logTail(lines?: number): string;
}

/** Options for {@link startXmppServer}. */
export interface StartXmppServerOptions {
  /** Default: env `OSRF_TEST_XMPP`, else "prosody". */
  kind?: XmppServerKind;
  /** Accounts to create before returning, as [user, password]. */
  users?: Array<[string, string]>;
  /** Largest accepted stanza in bytes (default 10 MB, as OpenSRF sites configure it). */
  maxStanzaSize?: number;
  /** How long to wait for a working login (default 15 s for prosody, 45 s for ejabberd). */
  startTimeoutMs?: number;
  /**
   * Length of the c2s listener's accept queue (ejabberd only). ejabberd 23.01 defaults to 5
   * (ejabberd_listener's `backlog`), so a burst of logins — a prefork pool starting its drones
   * at once — can find the queue full and be dropped; raise it for real OpenSRF stacks.
   */
  backlog?: number;
  /**
   * Extra Erlang VM flags for ejabberd (ejabberd only), appended to ejabberdctl's
   * ERL_OPTIONS, e.g. `+sbwt none +sbwtdcpu none +sbwtdio none` so that idle schedulers do
   * not busy-wait (the kernel bills that spinning to ejabberd: it distorts CPU per call).
   */
  erlOptions?: string;
}

const HOST = "127.0.0.1";
const DOMAIN = "localhost";
const DEFAULT_MAX_STANZA = 10 * 1024 * 1024;

/**
 * Starts a private XMPP server on a free loopback port and waits until a real login works.
 *
 * Each call gets its own temp dir, config, data and logs; nothing of the system's packaged
 * server configuration or service is used. Call {@link XmppServer.stop} when done (e.g. in
 * `afterAll`); process exit kills leftovers on a best-effort basis.
 */
export async function startXmppServer(opts: StartXmppServerOptions = {}): Promise<XmppServer> {
  const kind = opts.kind ?? defaultKind();
  const maxStanzaSize = opts.maxStanzaSize ?? DEFAULT_MAX_STANZA;
  if (opts.backlog !== undefined && !(Number.isInteger(opts.backlog) && opts.backlog > 0)) {
    throw new Error(`startXmppServer: backlog must be a positive integer, not ${opts.backlog}`);
  }
  // Ports are only reserved until freePort() closes its socket: retry if another process won the race.
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const server =
      kind === "ejabberd"
        ? new EjabberdServer(maxStanzaSize, opts.backlog, opts.erlOptions)
        : new ProsodyServer(maxStanzaSize);
    try {
      await server.init();
      await server.launch(opts.startTimeoutMs ?? server.defaultTimeoutMs);
      for (const [user, password] of opts.users ?? []) await server.addUser(user, password);
      return server;
    } catch (err) {
      lastError = err;
      const portClash = server.portInUse();
      await server.stop().catch(() => {});
      if (!portClash) break;
    }
  }
  throw lastError;
}

function defaultKind(): XmppServerKind {
  const env = process.env.OSRF_TEST_XMPP;
  if (env === undefined || env === "") return "prosody";
  if (env === "prosody" || env === "ejabberd") return env;
  throw new Error(`OSRF_TEST_XMPP must be "prosody" or "ejabberd", not ${JSON.stringify(env)}`);
}

abstract class BaseServer implements XmppServer {
  abstract readonly kind: XmppServerKind;
  abstract readonly defaultTimeoutMs: number;
  readonly host = HOST;
  readonly domain = DOMAIN;
  port = 0;
  dir = "";
  pid = 0;
  startupMs = 0;
  protected proc: Subprocess | undefined;
  private readonly users = new Map<string, string>();
  private removed = false;
  private timeoutMs = 0;

  constructor(protected readonly maxStanzaSize: number) {}

  /** Creates the private dir, picks ports, writes the config. */
  async init(): Promise<void> {
    this.dir = mkdtempSync(join(tmpdir(), `osrf-${this.kind}-`));
    killAtExit(this); // until stop(): a dying test process still kills the server
    this.port = await freePort();
    await this.writeConfig();
  }

  /** Spawns the server and waits until it is usable. */
  async launch(timeoutMs: number): Promise<void> {
    this.timeoutMs = timeoutMs;
    const t0 = performance.now();
    // Server output goes to a file: a pipe nobody reads would eventually block the server.
    const out = openSync(join(this.dir, "console.log"), "a");
    try {
      this.proc = Bun.spawn({
        cmd: this.command(),
        cwd: this.dir,
        stdin: "ignore",
        stdout: out,
        stderr: out,
      });
    } finally {
      closeSync(out);
    }
    this.pid = this.proc.pid;
    await this.waitReady(timeoutMs);
    await this.restoreUsers();
    this.pid = this.serverPid();
    this.startupMs = performance.now() - t0;
  }

  protected abstract writeConfig(): Promise<void>;
  protected abstract command(): string[];
  protected abstract logFiles(): string[];
  protected abstract register(user: string, password: string): Promise<void>;

  /** Pid of the actual server process once it is up (the spawned pid unless a wrapper is involved). */
  protected serverPid(): number {
    return this.proc?.pid ?? 0;
  }

  async addUser(user: string, password: string): Promise<void> {
    await this.register(user, password);
    // Only a real login proves the running server sees the account.
    await saslPlainCheck({ host: HOST, port: this.port, domain: DOMAIN, user, password });
    this.users.set(user, password);
  }

  async stop(): Promise<void> {
    await this.kill();
    releaseAtExit(this);
    if (!this.removed && this.dir) {
      rmSync(this.dir, { recursive: true, force: true });
      this.removed = true;
    }
  }

  async restart(): Promise<void> {
    if (this.removed) throw new Error(`${this.kind} server was stopped; cannot restart`);
    await this.kill();
    await this.launch(this.timeoutMs);
  }

  logTail(lines = 40): string {
    const parts: string[] = [];
    for (const f of [...this.logFiles(), join(this.dir, "console.log")]) {
      if (!existsSync(f)) continue;
      const text = readFileSync(f, "utf8").trimEnd();
      if (text) parts.push(`--- ${f}\n${text.split("\n").slice(-lines).join("\n")}`);
    }
    return parts.join("\n") || "(no log output)";
  }

  /**
   * Polls until the c2s port completes a stream negotiation offering SASL. Logins are proven
   * per account: by addUser for new ones, by restoreUsers after a restart.
   */
  private async waitReady(timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    let lastErr = "";
    for (;;) {
      if (this.proc?.exitCode !== null && this.proc?.exitCode !== undefined) {
        throw this.failure(`exited with code ${this.proc.exitCode} during startup`);
      }
      // Prosody keeps running without its listener when the port is taken: fail fast instead.
      if (this.portInUse()) throw this.failure("could not bind its ports (in use)");
      if (performance.now() > deadline) throw this.failure(`not ready after ${timeoutMs} ms (${lastErr})`);
      try {
        await this.probeStream();
        break;
      } catch (err) {
        lastErr = String(err);
        await Bun.sleep(20);
      }
    }
  }

  /**
   * After a restart, proves every account still logs in, re-creating lost ones: ejabberd keeps
   * accounts in a dets table that is not flushed at once, so a SIGKILLed server (fault tests)
   * can come back without the accounts registered shortly before.
   */
  private async restoreUsers(): Promise<void> {
    for (const [user, password] of this.users) {
      const target = { host: HOST, port: this.port, domain: DOMAIN, user, password };
      try {
        await saslPlainCheck(target);
        continue;
      } catch {
        // lost: register again below
      }
      try {
        await this.register(user, password);
        await saslPlainCheck(target);
      } catch (err) {
        throw this.failure(`could not restore account ${user}: ${String(err)}`);
      }
    }
  }

  /** A stream open that gets SASL mechanisms back: the c2s listener and auth backend are up. */
  private async probeStream(): Promise<void> {
    const c = await RawXmppConnection.connect({ host: HOST, port: this.port, timeoutMs: 1000 });
    try {
      await c.openStream({ to: DOMAIN, version: "1.0", timeoutMs: 1000 });
      const features = await c.nextStanza(1000);
      if (!features.includes("mechanisms")) throw new Error(`no SASL mechanisms offered: ${features}`);
    } finally {
      c.close();
    }
  }

  /** True when the logs say a listening port was taken by another process. */
  portInUse(): boolean {
    return [...this.logFiles(), join(this.dir, "console.log")].some((f) => {
      try {
        return /Failed to open server port|eaddrinuse/i.test(readFileSync(f, "utf8"));
      } catch {
        return false;
      }
    });
  }

  protected failure(what: string): Error {
    return new Error(`${this.kind} on ${HOST}:${this.port} ${what}\n${this.logTail()}`);
  }

  /**
   * SIGTERM the server, SIGKILL whatever of its process tree is left after a bound, and
   * verify nothing survived. The tree is walked via /proc because ejabberd's beam runs
   * under `su` in a session of its own, out of reach of process-group kills.
   */
  private async kill(): Promise<void> {
    const proc = this.proc;
    if (!proc) return;
    this.proc = undefined;
    // Also anything naming our dir: a wrapper killed mid-startup can orphan its children.
    const tree = [...new Set([...processTree(proc.pid), ...pidsMentioning(this.dir)])];
    const main = this.pid && tree.includes(this.pid) ? this.pid : proc.pid;
    signal(main, "SIGTERM");
    if (!(await waitGone(tree, 8000))) {
      for (const p of tree) signal(p, "SIGKILL");
      if (!(await waitGone(tree, 3000))) {
        throw new Error(`${this.kind} processes ${tree.filter(isAlive).join(", ")} survived SIGKILL`);
      }
    }
    await proc.exited;
  }

  /** Synchronous last resort for process exit: SIGKILL the tree, remove the dir. */
  killSync(): void {
    if (this.proc) for (const p of processTree(this.proc.pid)) signal(p, "SIGKILL");
    if (this.dir) for (const p of pidsMentioning(this.dir)) signal(p, "SIGKILL");
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}

class ProsodyServer extends BaseServer {
  readonly kind = "prosody";
  readonly defaultTimeoutMs = 15_000;

  private get config(): string {
    return join(this.dir, "prosody.cfg.lua");
  }

  protected async writeConfig(): Promise<void> {
    const d = this.dir;
    mkdirSync(join(d, "data"));
    mkdirSync(join(d, "certs")); // prosody logs an error at startup if its cert dir is missing
    const s = (v: string): string => JSON.stringify(v); // JSON strings are valid Lua strings for these paths
    const lines = [
      `-- Private test server: loopback only, no TLS, no s2s/http, plain SASL allowed.`,
      `run_as_root = true`,
      `pidfile = ${s(join(d, "prosody.pid"))}`,
      `data_path = ${s(join(d, "data"))}`,
      `certificates = ${s(join(d, "certs"))}`,
      `admin_socket = ${s(join(d, "admin.sock"))}`,
      `interfaces = { "${HOST}" }`,
      `local_interfaces = { "${HOST}" }`,
      `c2s_ports = { ${this.port} }`,
      `c2s_direct_tls_ports = {}`,
      `s2s_ports = {}`,
      `http_ports = {}`,
      `https_ports = {}`,
      // legacyauth: the Perl <password> form of jabber:iq:auth (prosody cannot do <digest>).
      `modules_enabled = { "saslauth", "legacyauth", "ping" }`,
      `modules_disabled = { "s2s", "tls", "offline", "c2s_limits" }`,
      `c2s_require_encryption = false`,
      `allow_unencrypted_plain_auth = true`,
      `authentication = "internal_hashed"`,
      `storage = "internal"`,
      `c2s_stanza_size_limit = ${this.maxStanzaSize}`,
      `log = { warn = ${s(join(d, "prosody.log"))} }`,
      `VirtualHost "${DOMAIN}"`,
      ``,
    ];
    writeFileSync(this.config, lines.join("\n"));
  }

  protected command(): string[] {
    return [findServerBinary("prosody"), "-F", "--config", this.config];
  }

  protected logFiles(): string[] {
    return [join(this.dir, "prosody.log")];
  }

  protected async register(user: string, password: string): Promise<void> {
    // prosodyctl writes straight into the data dir; the running server reads accounts on demand.
    const r = await runCommand(
      [findServerBinary("prosodyctl"), "--config", this.config, "register", user, DOMAIN, password],
      { cwd: this.dir },
    );
    if (r.code !== 0) throw new Error(`prosodyctl register ${user} failed (${r.code}): ${r.stdout}${r.stderr}`);
  }
}

class EjabberdServer extends BaseServer {
  readonly kind = "ejabberd";
  readonly defaultTimeoutMs = 45_000;
  private distPort = 0;
  private readonly node = `osrftest-${process.pid}-${randomBytes(4).toString("hex")}@localhost`;
  // A private cookie keeps the run away from the ejabberd user's shared ~/.erlang.cookie.
  private readonly cookie = randomBytes(12).toString("hex");

  constructor(
    maxStanzaSize: number,
    private readonly backlog?: number,
    private readonly erlOptions?: string,
  ) {
    super(maxStanzaSize);
  }

  protected async writeConfig(): Promise<void> {
    const d = this.dir;
    const isRoot = process.getuid?.() === 0;
    const owner = ejabberdUser();
    if (!isRoot && process.getuid?.() !== owner?.uid) {
      throw new Error("ejabberd tests must run as root or as the ejabberd user (ejabberdctl refuses others)");
    }
    this.distPort = await freePort();
    writeEjabberdDir(d, {
      yaml: {
        domain: DOMAIN,
        address: HOST,
        port: this.port,
        maxStanzaSize: this.maxStanzaSize,
        loglevel: "warning",
        backlog: this.backlog,
      },
      ctl: {
        nodeName: this.node,
        address: HOST,
        distPort: this.distPort,
        cookie: this.cookie,
        erlOptions: this.erlOptions,
      },
      ...(isRoot && owner ? { owner } : {}),
    });
  }

  protected command(): string[] {
    return ejabberdctl(this.dir, "foreground");
  }

  protected override serverPid(): number {
    const root = this.proc?.pid;
    if (root === undefined) return 0;
    const beam = processTree(root).find((p) => procComm(p) === "beam.smp");
    return beam ?? root;
  }

  protected logFiles(): string[] {
    return [join(this.dir, "logs", "error.log"), join(this.dir, "logs", "ejabberd.log")];
  }

  protected async register(user: string, password: string): Promise<void> {
    // In-band registration takes ~3 ms; `ejabberdctl register` boots an Erlang node (~0.4 s).
    await inBandRegister({ host: HOST, port: this.port, domain: DOMAIN, user, password });
  }
}

/** Pids of `root` and all its descendants (Linux /proc), root first. */
function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  let entries: string[] = [];
  try {
    entries = readdirSync("/proc");
  } catch {
    return [root];
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const stat = readProc(Number(e), "stat");
    if (!stat) continue;
    // Fields after the parenthesised command name (which may contain spaces): state ppid ...
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ppid = Number(rest[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(e));
    children.set(ppid, list);
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length) {
    const p = queue.shift()!;
    out.push(p);
    queue.push(...(children.get(p) ?? []));
  }
  return out;
}

/**
 * Live processes that belong to `server`: its recorded pid if still running, plus anything
 * whose command line names its private dir. Empty after a successful {@link XmppServer.stop}.
 */
export function processesOf(server: Pick<XmppServer, "pid" | "dir">): number[] {
  const pids = new Set(pidsMentioning(server.dir).filter(isAlive));
  if (server.pid && isAlive(server.pid)) pids.add(server.pid);
  return [...pids];
}

/** Pids whose command line contains `needle` (our private dir is unique per server). */
function pidsMentioning(needle: string): number[] {
  let entries: string[] = [];
  try {
    entries = readdirSync("/proc");
  } catch {
    return [];
  }
  return entries
    .filter((e) => /^\d+$/.test(e) && Number(e) !== process.pid)
    .map(Number)
    .filter((p) => readProc(p, "cmdline")?.includes(needle));
}

function procComm(pid: number): string | undefined {
  return readProc(pid, "comm")?.trim();
}

/** Alive and not a zombie (a zombie holds no ports and is gone once its parent reaps it). */
function isAlive(pid: number): boolean {
  const stat = readProc(pid, "stat");
  if (stat === undefined) {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }
  return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

async function waitGone(pids: number[], timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (pids.some(isAlive)) {
    if (performance.now() > deadline) return false;
    await Bun.sleep(20);
  }
  return true;
}
