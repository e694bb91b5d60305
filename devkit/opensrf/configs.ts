/**
 * The real OpenSRF stack's config files for a private test bus: opensrf_core.xml, opensrf.xml
 * and srfsh's ~/.srfsh.xml, laid out like the example files OpenSRF 3.3 ships
 * (examples/opensrf_core.xml.example, opensrf.xml.example, srfsh.xml.example), with one domain
 * (`localhost`) standing for both the public and the private one.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** prefork pool settings (`<unix_config>`), as the C and Perl servers read them. */
export interface UnixConfig {
  minChildren?: number;
  maxChildren?: number;
  minSpareChildren?: number;
  maxSpareChildren?: number;
  maxRequests?: number;
  maxBacklogQueue?: number;
  /** More `<unix_config>` keys, written as given: those only osrf-prefork reads (e.g. `crash_backoff_max`). */
  more?: Record<string, number | string>;
}

/** One application in opensrf.xml's `/opensrf/default/apps`. */
export interface PeerService {
  /** Service (class) name, e.g. `opensrf.math`. */
  name: string;
  /** `<language>`: `c` and `perl` are run by the real stack; anything else (e.g. `typescript`) is only declared. */
  language: string;
  /** `<implementation>`: a .so for C, a Perl package, a module path for TypeScript. */
  implementation: string;
  /** `<keepalive>` seconds for stateful sessions (default 3). */
  keepalive?: number;
  /** Pool settings (defaults: 1 to 3 children, 1 to 2 spare, 1000 requests per child). */
  unixConfig?: UnixConfig;
  /** Raw XML placed inside `<app_settings>`. */
  appSettingsXml?: string;
  /** List it in the host's `<activeapps>` (default true). */
  active?: boolean;
}

/** The pieces every file needs. */
export interface PeerConfigInput {
  /** Private directory the files (and log/, run/, lock/) go in. */
  dir: string;
  /** c2s port of the private XMPP server (it listens on 127.0.0.1; the domain is `localhost`). */
  xmppPort: number;
  /** `[user, password]` of the service/client account. */
  opensrfUser: [string, string];
  /** `[user, password]` of the router account. */
  routerUser: [string, string];
  /** Applications for opensrf.xml. */
  services: PeerService[];
  /** OpenSRF log level for every process (0 none … 5 internal; default 3, info). */
  loglevel?: number;
  /** When set, the router only accepts these classes (opensrf_core.xml `<services>`); default any. */
  routerServices?: string[];
  /** memcached `host:port` for opensrf.xml's `<cache>`; omitted when unset (no test service uses it). */
  memcached?: string;
}

/** Where {@link writePeerConfigs} put things. */
export interface PeerConfigPaths {
  /** opensrf_core.xml: `/config/opensrf` for services and clients, `/config/routers` for the router. */
  core: string;
  /** opensrf.xml: the settings the opensrf.settings server serves. */
  settings: string;
  /** The private HOME holding `.srfsh.xml` (srfsh reads `$HOME/.srfsh.xml`, nothing else). */
  home: string;
  /** `$HOME/.srfsh.xml`. */
  srfsh: string;
  /** Log directory: osrfsys.log (all C/Perl services and clients), router.log, srfsh.log, *_stderr.log. */
  logDir: string;
  /** Pid directory (`dirs/pid`): `<service>.pid` for C listeners, `router.pid`. */
  pidDir: string;
}

/** The domain: XMPP domain and TCP host at once for the C stack, so a name that resolves to 127.0.0.1. */
export const PEER_DOMAIN = "localhost";

/** Defaults for the stack's own services: small pools, so a test starts fast on a loaded machine. */
export const DEFAULT_PEER_SERVICES: readonly PeerService[] = [
  {
    name: "opensrf.settings",
    language: "perl",
    implementation: "OpenSRF::Application::Settings",
    keepalive: 1,
    unixConfig: { minChildren: 1, maxChildren: 3, minSpareChildren: 1, maxSpareChildren: 2 },
  },
  {
    name: "opensrf.math",
    language: "c",
    implementation: "libosrf_math.so",
    keepalive: 3,
    unixConfig: { minChildren: 1, maxChildren: 3, minSpareChildren: 1, maxSpareChildren: 2 },
  },
  {
    name: "opensrf.dbmath",
    language: "c",
    implementation: "libosrf_dbmath.so",
    keepalive: 3,
    unixConfig: { minChildren: 1, maxChildren: 3, minSpareChildren: 1, maxSpareChildren: 2 },
  },
];

/** Text for an XML element body: these values are ours, but a password may hold anything. */
export function xmlText(v: string | number): string {
  return String(v).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function el(tag: string, v: string | number | undefined): string {
  return v === undefined ? "" : `<${tag}>${xmlText(v)}</${tag}>`;
}

/** Writes the three files and the directories they name; returns their paths. */
export function writePeerConfigs(c: PeerConfigInput): PeerConfigPaths {
  const logDir = join(c.dir, "log");
  const pidDir = join(c.dir, "run");
  const sockDir = join(c.dir, "lock");
  const home = join(c.dir, "home");
  for (const d of [logDir, pidDir, sockDir, home]) mkdirSync(d, { recursive: true });
  const paths: PeerConfigPaths = {
    core: join(c.dir, "opensrf_core.xml"),
    settings: join(c.dir, "opensrf.xml"),
    home,
    srfsh: join(home, ".srfsh.xml"),
    logDir,
    pidDir,
  };
  writeFileSync(paths.core, coreXml(c, paths));
  writeFileSync(paths.settings, settingsXml(c, { logDir, pidDir, sockDir }));
  writeFileSync(paths.srfsh, srfshXml(c, join(logDir, "srfsh.log")));
  return paths;
}

function coreXml(c: PeerConfigInput, p: PeerConfigPaths): string {
  const level = c.loglevel ?? 3;
  const [user, pass] = c.opensrfUser;
  const [ruser, rpass] = c.routerUser;
  const services = c.routerServices
    ? `\n        <services>${c.routerServices.map((s) => el("service", s)).join("")}</services>`
    : "";
  return `<?xml version="1.0"?>
<!-- Private test bus written by devkit/opensrf (layout of OpenSRF 3.3's opensrf_core.xml.example). -->
<config>

  <!-- bootstrap config for OpenSRF apps (C services, Perl services and clients) -->
  <opensrf>
    <routers>
      <router>
        <name>router</name>
        <domain>${PEER_DOMAIN}</domain>${services}
      </router>
    </routers>

    <!-- the domain is also the host the C and Perl clients connect to -->
    <domain>${PEER_DOMAIN}</domain>
    ${el("username", user)}
    ${el("passwd", pass)}
    ${el("port", c.xmppPort)}
    <router_name>router</router_name>
    <msg_size_warn>1800000</msg_size_warn>
    ${el("logfile", join(p.logDir, "osrfsys.log"))}
    ${el("loglevel", level)}
    <loglength>1536</loglength>
    ${el("settings_config", p.settings)}
  </opensrf>

  <routers>
    <router>
      <trusted_domains>
        <server>${PEER_DOMAIN}</server>
        <client>${PEER_DOMAIN}</client>
      </trusted_domains>
      <transport>
        <server>${PEER_DOMAIN}</server>
        ${el("port", c.xmppPort)}
        ${el("username", ruser)}
        ${el("password", rpass)}
        <resource>router</resource>
        <connect_timeout>10</connect_timeout>
        <max_reconnect_attempts>5</max_reconnect_attempts>
      </transport>
      ${el("logfile", join(p.logDir, "router.log"))}
      ${el("loglevel", level)}
    </router>
  </routers>

  <shared>
    <log_protect/>
  </shared>

</config>
`;
}

function unixConfigXml(s: PeerService): string {
  const u = s.unixConfig ?? {};
  const parts = [
    el("unix_sock", `${s.name}_unix.sock`),
    el("unix_pid", `${s.name}_unix.pid`),
    el("max_requests", u.maxRequests ?? 1000),
    el("unix_log", `${s.name}_unix.log`),
    el("min_children", u.minChildren ?? 1),
    el("max_children", u.maxChildren ?? 3),
    el("min_spare_children", u.minSpareChildren ?? 1),
    el("max_spare_children", u.maxSpareChildren ?? 2),
    el("max_backlog_queue", u.maxBacklogQueue),
    ...Object.entries(u.more ?? {}).map(([k, v]) => el(k, v)),
  ];
  return parts.filter(Boolean).join("\n          ");
}

function appXml(s: PeerService): string {
  return `      <${s.name}>
        ${el("keepalive", s.keepalive ?? 3)}
        <stateless>1</stateless>
        ${el("language", s.language)}
        ${el("implementation", s.implementation)}
        <unix_config>
          ${unixConfigXml(s)}
        </unix_config>${s.appSettingsXml ? `\n        <app_settings>${s.appSettingsXml}</app_settings>` : ""}
      </${s.name}>`;
}

function settingsXml(c: PeerConfigInput, d: { logDir: string; pidDir: string; sockDir: string }): string {
  const cache = c.memcached
    ? `
    <cache>
      <global>
        <servers>${el("server", c.memcached)}</servers>
        <max_cache_time>86400</max_cache_time>
      </global>
    </cache>`
    : "";
  const active = c.services
    .filter((s) => s.active !== false)
    .map((s) => `        ${el("appname", s.name)}`)
    .join("\n");
  return `<?xml version="1.0"?>
<!-- Private test bus written by devkit/opensrf (layout of OpenSRF 3.3's opensrf.xml.example). -->
<opensrf version="0.0.3">
  <default>
    <dirs>
      ${el("log", d.logDir)}
      ${el("sock", d.sockDir)}
      ${el("pid", d.pidDir)}
      ${el("conf", c.dir)}
    </dirs>
    <server_type>prefork</server_type>
    <activeapps/>${cache}
    <apps>
${c.services.map(appXml).join("\n")}
    </apps>
  </default>

  <hosts>
    <${PEER_DOMAIN}>
      <activeapps>
${active}
      </activeapps>
    </${PEER_DOMAIN}>
  </hosts>
</opensrf>
`;
}

/** `.srfsh.xml` text: the bus's client login, logging to `logfile` at `c.loglevel` (default 3). */
export function srfshXml(c: Pick<PeerConfigInput, "opensrfUser" | "xmppPort" | "loglevel">, logfile: string): string {
  const [user, pass] = c.opensrfUser;
  return `<?xml version="1.0"?>
<!-- srfsh's bootstrap config (layout of OpenSRF 3.3's srfsh.xml.example) -->
<srfsh>
  <router_name>router</router_name>
  <domain>${PEER_DOMAIN}</domain>
  ${el("username", user)}
  ${el("passwd", pass)}
  ${el("port", c.xmppPort)}
  ${el("logfile", logfile)}
  ${el("loglevel", c.loglevel ?? 3)}
  <client>true</client>
</srfsh>
`;
}
