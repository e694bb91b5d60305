/**
 * Test hosts made of Linux network namespaces: each host is a namespace with its own address
 * on a private subnet, joined to the others by a veth pair into one bridge, which lives in a
 * namespace of its own. Nothing is added to the root namespace (no address, no link, no
 * route), so the hosts reach each other and nothing else, and nothing outside reaches them.
 *
 * Every process of a host is started with `ip netns exec <ns>` (which also bind-mounts
 * `/etc/netns/<ns>/hosts` over `/etc/hosts`, so the host names resolve inside) and a UTS
 * namespace of its own carrying the host's name, so `hostname()` — which names the XMPP
 * resources of listeners and drones — differs per host.
 *
 * ```ts
 * if (!netnsAvailableForTests("scale-out")) return;          // skips with one line (fails in CI)
 * const net = await TestNetwork.create({ hosts: [{ name: "a" }, { name: "b", aliases: { "xmpp.test": "a" } }] });
 * const p = net.host("b").spawn(["getent", "hosts", "xmpp.test"]);
 * await net.host("b").cutLink();                              // as if its cable was pulled
 * await net.destroy();                                        // every process, namespace and file
 * ```
 *
 * Needs root, iproute2, `unshare` and `hostname`. Names start with {@link NETNS_PREFIX} and
 * carry the owner's pid and start time: {@link TestNetwork.create} first removes what a killed
 * run left behind (its owner is gone), never what a live run on the same machine uses.
 */
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { killAtExit, releaseAtExit } from "../exit-kill.ts";
import { runCommand } from "../processes.ts";

/** Every namespace, /etc/netns dir and temp dir of this fixture starts with this. */
export const NETNS_PREFIX = "osrfnet-";
/** The hosts' subnet (a /24): host N (0-based) gets `.N+1`. Private, and unreachable from outside its bridge. */
export const SUBNET = "10.77.0";

/** Thrown when a namespace operation fails; carries the command and its output. */
export class NetnsError extends Error {
  constructor(
    message: string,
    readonly command: readonly string[],
  ) {
    super(message);
    this.name = "NetnsError";
  }
}

/** One host to create. */
export interface HostSpec {
  /** Short name, e.g. "a"; the host name is `host<name>` and the namespace ends in `-<name>`. */
  name: string;
  /**
   * Extra names for this host's /etc/hosts, each resolving to the address of another host
   * (by short name): e.g. `{ "private.localhost": "b" }` makes the XMPP domain mean the
   * nearby server node, as per-host DNS or /etc/hosts does on a real cluster.
   */
  aliases?: Record<string, string>;
}

/** Options of {@link TestNetwork.create}. */
export interface TestNetworkOptions {
  hosts: HostSpec[];
}

/** Result of {@link TestHost.run}. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of {@link TestHost.spawn}. */
export interface HostSpawnOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  stdin?: "ignore" | "pipe";
  stdout?: "pipe" | "ignore" | number;
  stderr?: "pipe" | "ignore" | number;
}

let available: { ok: boolean; reason: string } | undefined;

/**
 * Whether this machine can make test hosts: root, `ip netns add`, a veth pair, `unshare` and
 * `hostname`. Checked once per process by creating and removing a namespace.
 */
export function netnsAvailable(): { ok: boolean; reason: string } {
  if (available) return available;
  available = probe();
  return available;
}

function probe(): { ok: boolean; reason: string } {
  if (process.platform !== "linux") return { ok: false, reason: `not Linux (${process.platform})` };
  if (process.getuid?.() !== 0) return { ok: false, reason: "not running as root (network namespaces need it)" };
  for (const tool of ["ip", "unshare", "hostname"]) {
    if (!which(tool)) return { ok: false, reason: `${tool} is not installed` };
  }
  const name = `${NETNS_PREFIX}probe-${process.pid}`;
  try {
    ipSync(["netns", "add", name]);
    ipSync(["-n", name, "link", "add", "p0", "type", "veth", "peer", "name", "p1"]);
    ipSync(["-n", name, "link", "set", "lo", "up"]);
    return { ok: true, reason: "" };
  } catch (e) {
    return { ok: false, reason: (e as Error).message.split("\n")[0] ?? "ip netns failed" };
  } finally {
    spawnQuiet(["ip", "netns", "del", name]);
  }
}

let printedSkip = false;

/**
 * For test files: true when test hosts can be made. Otherwise prints ONE line saying why the
 * tests are skipped and returns false — unless `CI` is set, where it throws: CI runs as root
 * and must run these tests, so a missing capability cannot pass unnoticed.
 */
export function netnsAvailableForTests(what: string): boolean {
  const a = netnsAvailable();
  if (a.ok) return true;
  if (process.env.CI) throw new Error(`${what}: network namespaces are required in CI but unavailable: ${a.reason}`);
  if (!printedSkip) {
    printedSkip = true;
    console.log(`skipped ${what}: needs Linux network namespaces (root, iproute2): ${a.reason}`);
  }
  return false;
}

let sequence = 0;

/** A set of test hosts on one private bridge. Create with {@link TestNetwork.create}. */
export class TestNetwork {
  /** `<prefix><pid>-<start>-<n>`: the stem of every name this network uses. */
  readonly id: string;
  /** Namespace holding the bridge. */
  readonly switchNs: string;
  /** A private temp dir named after the network, removed by {@link destroy} (and by a later run's clean-up). */
  readonly dir: string;
  private readonly byName = new Map<string, TestHost>();
  private destroyed = false;

  private constructor(readonly specs: readonly HostSpec[]) {
    this.id = `${NETNS_PREFIX}${process.pid}-${ownStart()}-${sequence++}`;
    this.switchNs = `${this.id}-sw`;
    this.dir = join(tmpdir(), this.id);
    specs.forEach((s, i) => {
      this.byName.set(s.name, new TestHost(this, s.name, `${SUBNET}.${i + 1}`, `${this.id}-${s.name}`));
    });
  }

  /** Creates the hosts (removing leftovers of killed runs first); on failure removes what it made. */
  static async create(opts: TestNetworkOptions): Promise<TestNetwork> {
    const names = opts.hosts.map((h) => h.name);
    if (names.length === 0 || names.length > 200) throw new RangeError("TestNetwork: 1 to 200 hosts");
    for (const n of names) {
      // The name becomes a veth name (`v<name>`, 15 characters at most) and part of a file name.
      if (!/^[a-z][a-z0-9]{0,9}$/.test(n)) throw new RangeError(`TestNetwork: bad host name ${JSON.stringify(n)}`);
    }
    if (new Set(names).size !== names.length) throw new RangeError("TestNetwork: host names must differ");
    removeStaleNetworks();
    const net = new TestNetwork(opts.hosts);
    killAtExit(net);
    try {
      net.build();
    } catch (e) {
      await net.destroy().catch(() => {});
      throw e;
    }
    return net;
  }

  /** The host named `name` ("a", …). */
  host(name: string): TestHost {
    const h = this.byName.get(name);
    if (!h) throw new RangeError(`no test host ${JSON.stringify(name)} (have ${[...this.byName.keys()].join(", ")})`);
    return h;
  }

  get hosts(): TestHost[] {
    return [...this.byName.values()];
  }

  /**
   * Kills every process on every host (SIGKILL), removes the namespaces, their /etc/netns
   * dirs and {@link dir}. Idempotent; also run at process exit if it was not called.
   */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const h of this.hosts) await h.killAll("SIGKILL");
    this.removeAll();
    releaseAtExit(this);
  }

  /** Synchronous last resort at process exit. */
  killSync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.removeAll();
  }

  /** The /etc/hosts text of `host`: every host by name, then its aliases. */
  hostsFile(host: TestHost): string {
    const spec = this.specs.find((s) => s.name === host.name);
    const lines = ["127.0.0.1 localhost", ...this.hosts.map((h) => `${h.address} ${h.hostname}`)];
    for (const [alias, target] of Object.entries(spec?.aliases ?? {})) {
      lines.push(`${this.host(target).address} ${alias}`);
    }
    return `${lines.join("\n")}\n`;
  }

  private build(): void {
    mkdirSync(this.dir, { recursive: true });
    this.addNamespace(this.switchNs);
    ipSync(["-n", this.switchNs, "link", "add", "br0", "type", "bridge"]);
    ipSync(["-n", this.switchNs, "link", "set", "br0", "up"]);
    for (const h of this.hosts) {
      this.addNamespace(h.netns);
      const etc = join("/etc/netns", h.netns);
      mkdirSync(etc, { recursive: true });
      writeFileSync(join(etc, "hosts"), this.hostsFile(h));
      // No resolver: a name missing from the hosts file fails at once instead of asking anyone.
      writeFileSync(join(etc, "resolv.conf"), "options attempts:1 timeout:1\n");
      ipSync(["-n", this.switchNs, "link", "add", h.veth, "type", "veth", "peer", "name", "eth0", "netns", h.netns]);
      ipSync(["-n", this.switchNs, "link", "set", h.veth, "master", "br0"]);
      ipSync(["-n", this.switchNs, "link", "set", h.veth, "up"]);
      ipSync(["-n", h.netns, "addr", "add", `${h.address}/24`, "dev", "eth0"]);
      ipSync(["-n", h.netns, "link", "set", "eth0", "up"]);
    }
  }

  /** A namespace with loopback up and IPv6 off (no link-local addresses besides our IPv4 ones). */
  private addNamespace(name: string): void {
    ipSync(["netns", "add", name]);
    ipSync(["-n", name, "link", "set", "lo", "up"]);
    runSync(["ip", "netns", "exec", name, "sh", "-c", DISABLE_IPV6]);
  }

  private removeAll(): void {
    removeNetwork(this.id);
  }
}

// Written before any link is moved in, so the veth ends never get an IPv6 address.
const DISABLE_IPV6 =
  "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6 && echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6";

/** One test host: a network namespace with an address, a host name and a link to the bridge. */
export class TestHost {
  /** `host<name>`: its host name, resolvable on every host. */
  readonly hostname: string;
  /** Its end of the link, in the bridge's namespace. */
  readonly veth: string;
  private linkUp = true;

  constructor(
    readonly network: TestNetwork,
    /** Short name, e.g. "a". */
    readonly name: string,
    /** Its IPv4 address on the private subnet. */
    readonly address: string,
    /** Its network namespace. */
    readonly netns: string,
  ) {
    this.hostname = `host${name}`;
    this.veth = `v${name}`;
  }

  /**
   * `cmd` as run on this host: in its network namespace (with its /etc/hosts), in a new UTS
   * namespace named after the host. The exec chain keeps the pid: the spawned pid is `cmd`'s.
   */
  command(cmd: readonly string[]): string[] {
    return [
      "ip",
      "netns",
      "exec",
      this.netns,
      "unshare",
      "--uts",
      "--",
      "sh",
      "-c",
      'hostname "$0" && exec "$@"',
      this.hostname,
      ...cmd,
    ];
  }

  /** Starts `cmd` on this host. */
  spawn(
    cmd: readonly string[],
    o: HostSpawnOptions = {},
  ): Subprocess<"ignore" | "pipe", "pipe" | "ignore", "pipe" | "ignore"> {
    return Bun.spawn(this.command(cmd), {
      cwd: o.cwd ?? process.cwd(),
      env: { ...process.env, ...o.env } as Record<string, string>,
      stdin: o.stdin ?? "ignore",
      stdout: o.stdout ?? "pipe",
      stderr: o.stderr ?? "pipe",
    }) as Subprocess<"ignore" | "pipe", "pipe" | "ignore", "pipe" | "ignore">;
  }

  /** Runs `cmd` on this host to completion (SIGKILL after `timeoutMs`, default 60 s). */
  async run(cmd: readonly string[], o: HostSpawnOptions & { timeoutMs?: number } = {}): Promise<RunResult> {
    const { code, stdout, stderr } = await runCommand(this.command(cmd), {
      cwd: o.cwd ?? process.cwd(),
      ...(o.env ? { env: o.env as Record<string, string> } : {}),
      timeoutMs: o.timeoutMs ?? 60_000,
    });
    return { code, stdout, stderr };
  }

  /** Pids of every live process on this host (whose network namespace is this one). */
  pids(): number[] {
    return pidsInNamespace(this.netns);
  }

  /**
   * Kills every process on the host with `signal` — repeated until none is left, since a
   * dying listener may still start a drone. Returns how many were signalled and when the
   * first signal went out (epoch ms; 0 when there was nothing to kill).
   */
  async killAll(signal: NodeJS.Signals = "SIGKILL", timeoutMs = 10_000): Promise<{ signalled: number; at: number }> {
    const seen = new Set<number>();
    let at = 0;
    const deadline = performance.now() + timeoutMs;
    // A gentler signal gets half the time; whatever is left then gets SIGKILL.
    const escalateAt = signal === "SIGKILL" ? 0 : performance.now() + timeoutMs / 2;
    let sig = signal;
    for (;;) {
      const live = this.pids();
      if (live.length === 0) return { signalled: seen.size, at };
      if (performance.now() > deadline) {
        throw new NetnsError(`host ${this.name}: processes ${live.join(", ")} survived ${sig}`, ["kill", sig]);
      }
      if (sig !== "SIGKILL" && performance.now() > escalateAt) sig = "SIGKILL";
      for (const p of live) {
        // A gentle signal goes once to each process; SIGKILL to whatever shows up.
        if (seen.has(p) && sig !== "SIGKILL") continue;
        seen.add(p);
        if (at === 0) at = Date.now();
        try {
          process.kill(p, sig);
        } catch {
          // gone already
        }
      }
      await Bun.sleep(sig === "SIGKILL" ? 10 : 50);
    }
  }

  /**
   * Sets a sysctl of this host's network namespace (`net.*` keys are per namespace), e.g.
   * `net.ipv4.tcp_retries2`: how long the host's TCP keeps retransmitting to a peer that
   * went silent before it gives the connection up.
   */
  sysctl(key: string, value: string | number): void {
    if (!/^net\.[a-z0-9_.]+$/.test(key)) throw new RangeError(`not a per-namespace sysctl: ${key}`);
    runSync([
      "ip",
      "netns",
      "exec",
      this.netns,
      "sh",
      "-c",
      `echo "$1" > "/proc/sys/$0"`,
      key.replace(/\./g, "/"),
      String(value),
    ]);
  }

  /** Takes the host's link down at the bridge: packets to and from it are dropped, nothing is closed. */
  async cutLink(): Promise<void> {
    ipSync(["-n", this.network.switchNs, "link", "set", this.veth, "down"]);
    this.linkUp = false;
  }

  /** Brings the link back up. */
  async restoreLink(): Promise<void> {
    ipSync(["-n", this.network.switchNs, "link", "set", this.veth, "up"]);
    this.linkUp = true;
  }

  /** False between {@link cutLink} and {@link restoreLink}. */
  get linked(): boolean {
    return this.linkUp;
  }
}

// -----------------------------------------------------------------------------------------------
// clean-up

/** Our network ids (`osrfnet-<pid>-<start>-<n>`) present on the machine, by namespace list and dirs. */
function presentIds(): Set<string> {
  const ids = new Set<string>();
  const re = new RegExp(`^(${NETNS_PREFIX}\\d+-\\d+-\\d+)(?:-|$)`);
  for (const dir of ["/run/netns", "/etc/netns", tmpdir()]) {
    for (const e of safeReaddir(dir)) {
      const m = re.exec(e);
      if (m) ids.add(m[1]!);
    }
  }
  return ids;
}

/**
 * Removes every network whose owner process is gone (same pid and start time no longer
 * running): what a killed test run left behind. A live run's networks are left alone.
 */
export function removeStaleNetworks(): string[] {
  const removed: string[] = [];
  for (const id of presentIds()) {
    const m = /-(\d+)-(\d+)-\d+$/.exec(id);
    if (!m) continue;
    const [pid, start] = [Number(m[1]), m[2]!];
    if (processStart(pid) === start) continue; // owner alive
    removeNetwork(id);
    removed.push(id);
  }
  return removed;
}

/** Kills everything in the network's namespaces, deletes them, their /etc/netns dirs and its temp dir. */
function removeNetwork(id: string): void {
  const namespaces = safeReaddir("/run/netns").filter((n) => n === id || n.startsWith(`${id}-`));
  for (let round = 0; round < 50; round++) {
    const live = namespaces.flatMap(pidsInNamespace);
    if (live.length === 0) break;
    for (const p of live) {
      try {
        process.kill(p, "SIGKILL");
      } catch {
        // gone already
      }
    }
    Bun.sleepSync(20);
  }
  for (const ns of namespaces) spawnQuiet(["ip", "netns", "del", ns]);
  for (const e of safeReaddir("/etc/netns")) {
    if (e.startsWith(`${id}-`)) rmSync(join("/etc/netns", e), { recursive: true, force: true });
  }
  for (const e of safeReaddir(tmpdir())) {
    if (e === id || e.startsWith(`${id}-`)) rmSync(join(tmpdir(), e), { recursive: true, force: true });
  }
}

/** Live pids whose network namespace is `/run/netns/<ns>` (compared by nsfs inode, no spawn). */
export function pidsInNamespace(ns: string): number[] {
  let inode: number;
  try {
    inode = statSync(join("/run/netns", ns)).ino;
  } catch {
    return [];
  }
  const want = `net:[${inode}]`;
  const out: number[] = [];
  for (const e of safeReaddir("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (pid === process.pid) continue;
    try {
      if (readlinkSync(`/proc/${e}/ns/net`) !== want) continue;
      const stat = readFileSync(`/proc/${e}/stat`, "utf8");
      if (stat[stat.lastIndexOf(")") + 2] === "Z") continue; // a zombie holds nothing
      out.push(pid);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * Start time of `pid` in clock ticks since boot (field 22 of /proc/PID/stat), or undefined
 * when it is not running (a zombie counts as gone: a killed owner can linger as one).
 */
function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[0] === "Z" ? undefined : fields[19];
  } catch {
    return undefined;
  }
}

function ownStart(): string {
  return processStart(process.pid) ?? "0";
}

// -----------------------------------------------------------------------------------------------
// helpers

function which(tool: string): string | null {
  return Bun.which(tool, { PATH: `${process.env.PATH ?? ""}:/usr/sbin:/usr/bin:/sbin:/bin` });
}

/** `ip ARGS`, throwing a {@link NetnsError} with its stderr on failure. */
function ipSync(args: string[]): void {
  runSync(["ip", ...args]);
}

function runSync(cmd: string[]): void {
  const exe = which(cmd[0]!) ?? cmd[0]!;
  const r = Bun.spawnSync([exe, ...cmd.slice(1)], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) {
    const err = `${r.stderr.toString().trim()} ${r.stdout.toString().trim()}`.trim();
    throw new NetnsError(`${cmd.join(" ")} failed (exit ${r.exitCode}): ${err}`, cmd);
  }
}

function spawnQuiet(cmd: string[]): void {
  const exe = which(cmd[0]!) ?? cmd[0]!;
  Bun.spawnSync([exe, ...cmd.slice(1)], { stdin: "ignore", stdout: "ignore", stderr: "ignore" });
}

function safeReaddir(dir: string): string[] {
  try {
    return existsSync(dir) ? readdirSync(dir) : [];
  } catch {
    return [];
  }
}
