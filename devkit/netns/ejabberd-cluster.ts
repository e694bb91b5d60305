/**
 * A real clustered ejabberd on test hosts: one node per host, each in its own private dir,
 * joined with `ejabberdctl join_cluster` (Mnesia replicates accounts and the session table, so
 * a message to a JID logged in on another node is routed there over Erlang distribution).
 *
 * As in devkit/xmpp-server.ts, and from the same devkit/ejabberd-config.ts: a private config
 * and spool, plain password storage and mod_legacy_auth (the real C and Perl clients log in
 * with jabber:iq:auth), no TLS, no s2s, no epmd. Erlang distribution uses one fixed port on every node (`ERL_DIST_PORT`: without
 * epmd a node looks for its peers on its own port), bound to the host's private address; the
 * nodes share a cookie made for the run. Node names are `ejabberd@host<x>`, resolved through
 * the `inetrc` written here.
 */
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { type EjabberdDirOptions, ejabberdctl, ejabberdUser, writeEjabberdDir } from "../ejabberd-config.ts";
import { descendants, isRunning, type ProcRef, procRef, signalRef, waitGone } from "../opensrf/procs.ts";
import type { TestHost } from "./network.ts";

/** c2s port of every node (each host has its own address, so they never clash). */
export const C2S_PORT = 5222;
/** Erlang distribution port of every node. */
export const DIST_PORT = 4370;

/** Options of {@link startEjabberdCluster}. */
export interface EjabberdClusterOptions {
  /** One node per host; the first is the seed the others join. */
  hosts: TestHost[];
  /** The XMPP domain (virtual host) served by every node. */
  domain: string;
  /** Accounts to create, as [user, password]. */
  users: Array<[string, string]>;
  /** Bound for each node to start (default 60 s: the machine may be loaded). */
  startTimeoutMs?: number;
}

/** A failure of a node, with its log tail. */
export class EjabberdClusterError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EjabberdClusterError";
  }
}

/** One ejabberd node on one test host. */
export class EjabberdNode {
  /** Erlang node name, e.g. `ejabberd@hosta`. */
  readonly nodeName: string;
  readonly dir: string;
  readonly port = C2S_PORT;
  private proc: Subprocess | undefined;
  private ref: ProcRef | undefined;
  /** How many "started" lines the log had when the current start began. */
  private startsBefore = 0;
  /** Milliseconds of the last start, from spawn to accepting c2s connections. */
  startupMs = 0;

  constructor(
    readonly host: TestHost,
    private readonly cluster: EjabberdCluster,
  ) {
    this.nodeName = `ejabberd@${host.hostname}`;
    this.dir = join(host.network.dir, `ejabberd-${host.name}`);
  }

  /** The host's private address, where c2s listens. */
  get address(): string {
    return this.host.address;
  }

  get running(): boolean {
    return this.ref !== undefined && isRunning(this.ref);
  }

  /** Writes config and dirs (once). */
  prepare(): void {
    if (existsSync(this.dir)) return;
    writeEjabberdDir(this.dir, this.cluster.config(this));
  }

  /** Starts the node in the foreground on its host; resolves once it accepts c2s connections. */
  async start(timeoutMs = this.cluster.startTimeoutMs): Promise<void> {
    if (this.running) throw new EjabberdClusterError(`${this.nodeName} is already running`);
    this.prepare();
    this.startsBefore = this.count(STARTED);
    const t0 = performance.now();
    const out = openSync(join(this.dir, "console.log"), "a");
    try {
      this.proc = this.host.spawn(this.ctl("foreground"), { stdout: out, stderr: out });
    } finally {
      closeSync(out);
    }
    this.ref = procRef(this.proc.pid);
    await this.waitStarted(timeoutMs);
    this.startupMs = performance.now() - t0;
  }

  /** Resolves once the log shows a start after {@link startsBefore} and the c2s listener. */
  async waitStarted(timeoutMs = this.cluster.startTimeoutMs, startsBefore = this.startsBefore): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (this.count(STARTED) <= startsBefore || this.count(ACCEPTING) <= startsBefore) {
      if (this.proc && this.proc.exitCode !== null) {
        throw this.failure(`exited with code ${this.proc.exitCode} while starting`);
      }
      if (performance.now() > deadline) throw this.failure(`not started within ${timeoutMs} ms`);
      await Bun.sleep(50);
    }
  }

  /** `ejabberdctl <args>` against this node, run on its host. */
  async ctlRun(args: string[], timeoutMs = 60_000): Promise<{ code: number; out: string }> {
    const r = await this.host.run(this.ctl(...args), { timeoutMs });
    return { code: r.code, out: `${r.stdout}${r.stderr}`.trim() };
  }

  /** Joins the cluster of `seed`; resolves once this node runs again as a cluster member. */
  async join(seed: EjabberdNode): Promise<void> {
    const before = this.count(STARTED);
    const r = await this.ctlRun(["join_cluster", seed.nodeName]);
    if (r.code !== 0) throw this.failure(`join_cluster ${seed.nodeName} failed (exit ${r.code}): ${r.out}`);
    // join_cluster restarts the ejabberd application on this node with the seed's tables.
    await this.waitStarted(this.cluster.startTimeoutMs, before);
  }

  /** Nodes of the cluster as this node sees them. */
  async listCluster(): Promise<string[]> {
    const r = await this.ctlRun(["list_cluster"]);
    if (r.code !== 0) throw this.failure(`list_cluster failed: ${r.out}`);
    return r.out.split(/\s+/).filter((s) => s.includes("@"));
  }

  /**
   * Stops the node: SIGTERM to the Erlang VM (a clean shutdown: ejabberd closes every client
   * stream with a stream error), SIGKILL after `graceMs`. `signal: "SIGKILL"` kills at once.
   */
  async stop(signal: "SIGTERM" | "SIGKILL" = "SIGTERM", graceMs = 15_000): Promise<void> {
    const root = this.ref;
    const proc = this.proc;
    this.ref = undefined;
    this.proc = undefined;
    if (!root) return;
    const tree = [root, ...descendants([root])];
    const beam = tree.find((r) => procComm(r.pid) === "beam.smp");
    if (signal === "SIGKILL") for (const r of tree) signalRef(r, "SIGKILL");
    else signalRef(beam ?? root, "SIGTERM");
    if (!(await waitGone(tree, signal === "SIGKILL" ? 5000 : graceMs))) {
      for (const r of [...tree, ...descendants(tree)]) signalRef(r, "SIGKILL");
      if (!(await waitGone(tree, 5000))) throw this.failure("survived SIGKILL");
    }
    await proc?.exited;
  }

  /** Stops and starts the node again with the same data (it rejoins the cluster by itself). */
  async restart(signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> {
    await this.stop(signal);
    await this.start();
  }

  /** The last lines of the node's logs. */
  logTail(lines = 30): string {
    const parts: string[] = [];
    for (const f of ["logs/error.log", "logs/ejabberd.log", "console.log"].map((n) => join(this.dir, n))) {
      if (!existsSync(f)) continue;
      const text = readFileSync(f, "utf8").trimEnd();
      if (text) parts.push(`--- ${f}\n${text.split("\n").slice(-lines).join("\n")}`);
    }
    return parts.join("\n") || "(no log output)";
  }

  /** Occurrences of `re` in the node's main log. */
  count(re: RegExp): number {
    const f = join(this.dir, "logs", "ejabberd.log");
    if (!existsSync(f)) return 0;
    return (readFileSync(f, "utf8").match(new RegExp(re.source, "g")) ?? []).length;
  }

  private ctl(...args: string[]): string[] {
    return ejabberdctl(this.dir, ...args);
  }

  private failure(what: string): EjabberdClusterError {
    return new EjabberdClusterError(`ejabberd ${this.nodeName} on ${this.address}: ${what}\n${this.logTail()}`);
  }
}

const STARTED = /ejabberd \S+ is started in the node/;
const ACCEPTING = /Start accepting TCP connections at \S+ for ejabberd_c2s/;

/** The nodes, their shared cookie and config. */
export class EjabberdCluster {
  readonly nodes: EjabberdNode[];
  /** A cookie for this run only, never the ejabberd user's shared ~/.erlang.cookie. */
  private readonly cookie = randomBytes(12).toString("hex");

  constructor(
    readonly opts: EjabberdClusterOptions,
    readonly startTimeoutMs = opts.startTimeoutMs ?? 60_000,
  ) {
    this.nodes = opts.hosts.map((h) => new EjabberdNode(h, this));
  }

  get domain(): string {
    return this.opts.domain;
  }

  /** The node on the host named `name`. */
  node(name: string): EjabberdNode {
    const n = this.nodes.find((x) => x.host.name === name);
    if (!n) throw new RangeError(`no ejabberd node on host ${name}`);
    return n;
  }

  /** Stops every node (SIGTERM, then SIGKILL). */
  async stop(): Promise<void> {
    // Reverse order: the seed last, so the others do not wait on a missing peer.
    for (const n of [...this.nodes].reverse()) await n.stop("SIGTERM", 8000).catch(() => n.stop("SIGKILL"));
  }

  logTail(lines = 20): string {
    return this.nodes.map((n) => n.logTail(lines)).join("\n");
  }

  /** What one node's dir holds: only its addresses differ from the others'. */
  config(node: EjabberdNode): EjabberdDirOptions {
    const owner = ejabberdUser();
    if (!owner) throw new EjabberdClusterError("there is no ejabberd user (is the ejabberd package installed?)");
    return {
      // info: the start and listener lines tell when a node is up.
      yaml: {
        domain: this.domain,
        address: node.address,
        port: C2S_PORT,
        maxStanzaSize: 10 * 1024 * 1024,
        loglevel: "info",
        backlog: 1024,
      },
      ctl: { nodeName: node.nodeName, address: node.address, distPort: DIST_PORT, cookie: this.cookie },
      // Erlang's resolver: the node names, without relying on anything but this file.
      hosts: this.opts.hosts[0]!.network.hosts,
      owner,
    };
  }
}

/**
 * Starts the seed node, creates the accounts there, then starts and joins every other node,
 * and checks each node lists them all. On failure stops what it started.
 */
export async function startEjabberdCluster(opts: EjabberdClusterOptions): Promise<EjabberdCluster> {
  if (opts.hosts.length === 0) throw new RangeError("startEjabberdCluster: at least one host");
  const cluster = new EjabberdCluster(opts);
  try {
    const [seed, ...others] = cluster.nodes;
    await seed!.start();
    for (const [user, password] of opts.users) {
      const r = await seed!.ctlRun(["register", user, opts.domain, password]);
      if (r.code !== 0 && !/already registered|conflict/i.test(r.out)) {
        throw new EjabberdClusterError(`register ${user} on ${seed!.nodeName} failed: ${r.out}`);
      }
    }
    await Promise.all(others.map((n) => n.start()));
    for (const n of others) await n.join(seed!);
    for (const n of cluster.nodes) {
      const members = await n.listCluster();
      const missing = cluster.nodes.filter((m) => !members.includes(m.nodeName));
      if (missing.length > 0) {
        throw new EjabberdClusterError(
          `${n.nodeName} lists ${members.join(", ")}, not ${missing.map((m) => m.nodeName).join(", ")}`,
        );
      }
    }
    return cluster;
  } catch (e) {
    await cluster.stop().catch(() => {});
    throw e;
  }
}

function procComm(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return undefined;
  }
}
