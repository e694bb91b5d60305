/**
 * What a private ejabberd is started from, for the one-server fixture (xmpp-server.ts) and
 * for every node of a cluster (netns/ejabberd-cluster.ts): its ejabberd.yml, the
 * ejabberdctl.cfg that ejabberdctl's bash sources and Erlang's inetrc, written into a private
 * dir ({@link writeEjabberdDir}), and the ejabberdctl command line over that dir.
 *
 * Both run the same server for the same clients, so they must allow the same things: plain
 * password storage and mod_legacy_auth (the real C and Perl clients log in with
 * jabber:iq:auth), in-band registration without limits, no TLS, no s2s, no http, no epmd.
 */
import { chownSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** What differs between one ejabberd and another. */
export interface EjabberdYamlOptions {
  /** The XMPP domain (virtual host). */
  domain: string;
  /** Address the c2s listener binds. */
  address: string;
  port: number;
  maxStanzaSize: number;
  /** `warning` keeps a test server's log small; a cluster node's `info` shows when it is up. */
  loglevel: "info" | "warning";
  /** The c2s listen backlog (ejabberd's default of 5 drops logins when a pool starts its drones at once). */
  backlog?: number;
}

/** ejabberd.yml for a private test server. */
function ejabberdYaml(o: EjabberdYamlOptions): string {
  const q = (v: string): string => JSON.stringify(v); // YAML double-quoted strings accept JSON escapes
  return [
    `# Private test server: private addresses only, no TLS, no s2s/http, plain SASL and legacy auth allowed.`,
    `hosts:`,
    `  - ${q(o.domain)}`,
    `loglevel: ${o.loglevel}`,
    `log_rotate_count: 0`,
    `hide_sensitive_log_data: true`,
    `certfiles: []`,
    `acme:`,
    `  auto: false`,
    `listen:`,
    `  -`,
    `    port: ${o.port}`,
    `    ip: ${q(o.address)}`,
    `    module: ejabberd_c2s`,
    `    max_stanza_size: ${o.maxStanzaSize}`,
    `    shaper: c2s_shaper`,
    `    access: c2s`,
    `    starttls: false`,
    `    starttls_required: false`,
    ...(o.backlog === undefined ? [] : [`    backlog: ${o.backlog}`]),
    `auth_method: internal`,
    // Plain storage: jabber:iq:auth <digest> needs the clear password (real OpenSRF C clients).
    `auth_password_format: plain`,
    // Tests create accounts by in-band registration; the default allows one per IP per 10 min.
    `registration_timeout: infinity`,
    `shaper: {}`,
    `shaper_rules:`,
    `  c2s_shaper: none`,
    `access_rules:`,
    `  c2s:`,
    `    allow: all`,
    `  register:`,
    `    allow: all`,
    `modules:`,
    `  mod_legacy_auth: {}`,
    `  mod_register:`,
    `    access: register`,
    `    ip_access: all`,
    `    password_strength: 0`,
    `    welcome_message: {}`,
    ``,
  ].join("\n");
}

/** The Erlang side of one node (its pid file is `ejabberd.pid` in its dir). */
export interface EjabberdCtlOptions {
  /** Erlang node name, e.g. `ejabberd@hosta`. */
  nodeName: string;
  /** Address Erlang distribution binds. */
  address: string;
  /**
   * A fixed distribution port, so no epmd daemon is started or needed (without epmd a node
   * looks for its peers on its own port: a cluster uses one port on every node).
   */
  distPort: number;
  /** A cookie for this run only, never the ejabberd user's shared ~/.erlang.cookie. */
  cookie: string;
  /** More `erl` options, appended. */
  erlOptions?: string;
}

/** Everything {@link writeEjabberdDir} writes. */
export interface EjabberdDirOptions {
  yaml: EjabberdYamlOptions;
  ctl: EjabberdCtlOptions;
  /** Hosts Erlang resolves by name besides localhost (a cluster's nodes). */
  hosts?: ReadonlyArray<{ address: string; hostname: string }>;
  /**
   * Who is to own the dir: ejabberdctl run as root switches to the ejabberd user, which must
   * own everything it touches. Unset: left as it is.
   */
  owner?: { uid: number; gid: number };
}

/**
 * Makes `dir` (with `spool/` and `logs/`) a private ejabberd's: ejabberd.yml, ejabberdctl.cfg
 * and inetrc, as {@link ejabberdctl} expects them.
 */
export function writeEjabberdDir(dir: string, o: EjabberdDirOptions): void {
  for (const sub of ["spool", "logs"]) mkdirSync(join(dir, sub), { recursive: true });
  writeFileSync(join(dir, "ejabberd.yml"), ejabberdYaml(o.yaml));
  writeFileSync(join(dir, "ejabberdctl.cfg"), ejabberdCtlConfig(o.ctl, join(dir, "ejabberd.pid")));
  writeFileSync(join(dir, "inetrc"), ejabberdInetrc(o.hosts));
  if (o.owner) chownTree(dir, o.owner);
}

/** ejabberdctl.cfg, sourced by ejabberdctl's bash. */
function ejabberdCtlConfig(o: EjabberdCtlOptions, pidFile: string): string {
  const sh = (v: string): string => `'${v.replace(/'/g, `'\\''`)}'`;
  return [
    `ERLANG_NODE=${sh(o.nodeName)}`,
    `INET_DIST_INTERFACE=${o.address}`,
    `ERL_EPMD_ADDRESS=${o.address}`,
    `ERL_DIST_PORT=${o.distPort}`,
    `ERL_OPTIONS=${sh(`-env ERL_CRASH_DUMP_BYTES 0 -setcookie ${o.cookie}${o.erlOptions ? ` ${o.erlOptions}` : ""}`)}`,
    `EJABBERD_PID_PATH=${sh(pidFile)}`,
    `EJABBERD_BYPASS_WARNINGS=true`,
    ``,
  ].join("\n");
}

/**
 * Erlang's resolver, as the packaged one (so `localhost` in a node name resolves offline),
 * plus `hosts`: node names resolve from this file alone.
 */
function ejabberdInetrc(hosts: ReadonlyArray<{ address: string; hostname: string }> = []): string {
  const entries = hosts.map((h) => `{host,{${h.address.replace(/\./g, ",")}}, ["${h.hostname}"]}.\n`);
  return `{lookup,["file","native"]}.\n{host,{127,0,0,1}, ["localhost"]}.\n${entries.join("")}`;
}

/** `ejabberdctl <args>` over the private dir `dir` holding the files above, `spool/` and `logs/`. */
export function ejabberdctl(dir: string, ...args: string[]): string[] {
  return [
    findServerBinary("ejabberdctl"),
    "--config-dir",
    dir,
    "--ctl-config",
    join(dir, "ejabberdctl.cfg"),
    "--config",
    join(dir, "ejabberd.yml"),
    "--spool",
    join(dir, "spool"),
    "--logs",
    join(dir, "logs"),
    ...args,
  ];
}

/** The ejabberd user's ids, from /etc/passwd; undefined when there is none. */
export function ejabberdUser(): { uid: number; gid: number } | undefined {
  try {
    for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
      const f = line.split(":");
      if (f[0] === "ejabberd" && f[2] && f[3]) return { uid: Number(f[2]), gid: Number(f[3]) };
    }
  } catch {
    // no /etc/passwd: treat as unknown user
  }
  return undefined;
}

function chownTree(path: string, owner: { uid: number; gid: number }): void {
  chownSync(path, owner.uid, owner.gid);
  if (!statSync(path).isDirectory()) return;
  for (const entry of readdirSync(path)) chownTree(join(path, entry), owner);
}

/** Absolute path of an installed server tool (sbin may be missing from PATH), or a clear error. */
export function findServerBinary(name: string): string {
  const found = Bun.which(name, { PATH: `${process.env.PATH ?? ""}:/usr/sbin:/usr/bin:/sbin:/bin` });
  if (!found) throw new Error(`${name} is not installed (scripts/install-deps.sh installs it)`);
  return found;
}
