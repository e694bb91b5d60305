import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Where a test's bus server (XMPP, or Redis with `bus: "redis"`) listens. */
export interface XmppEndpoint {
  host: string;
  port: number;
  domain: string;
}

export interface CoreConfigOptions {
  /** Router entries for /config/opensrf/routers; default one router on the domain. */
  routers?: Array<{ name: string; domain: string; services?: string[] }>;
  logfile?: string;
  loglevel?: number;
  logProtect?: string[];
  trustedClients?: string[];
  trustedServers?: string[];
  password?: string;
  /** Write `<bus>redis</bus>` (default: no element, XMPP). */
  bus?: "xmpp" | "redis";
  /** `[user, password]` of the service account and the router's (default {@link TEST_USERS}). */
  accounts?: { opensrf: [string, string]; router: [string, string] };
  /** The router's `<stall_timeout>` (Redis; default none: the router's 5 s). */
  stallTimeout?: number;
  /** `<max_stanza_size>` (default none: 10 MB). */
  maxStanzaSize?: number;
}

/** Accounts every test server needs: the OpenSRF service/client account and the router's. */
export const TEST_USERS: Array<[string, string]> = [
  ["opensrf", "osrf-test-pass"],
  ["router", "router-test-pass"],
];

/**
 * Write an opensrf_core.xml for a test XMPP (or Redis) server, laid out like a real install's,
 * and return its path.
 */
export function writeCoreConfig(xmpp: XmppEndpoint, o: CoreConfigOptions = {}): string {
  const [user, userPass] = o.accounts?.opensrf ?? TEST_USERS[0]!;
  const [routerUser, routerPass] = o.accounts?.router ?? TEST_USERS[1]!;
  const dir = mkdtempSync(join(tmpdir(), "osrf-cfg-"));
  const routers = (o.routers ?? [{ name: "router", domain: xmpp.domain }])
    .map(
      (r) =>
        `      <router><name>${r.name}</name><domain>${r.domain}</domain>${
          r.services ? `<services>${r.services.map((s) => `<service>${s}</service>`).join("")}</services>` : ""
        }</router>`,
    )
    .join("\n");
  const list = (tag: string, xs: string[]) => xs.map((x) => `<${tag}>${x}</${tag}>`).join("");
  const xml = `<?xml version="1.0"?>
<config>
  <opensrf>
    <routers>
${routers}
    </routers>
${o.bus ? `    <bus>${o.bus}</bus>\n` : ""}    <domain>${xmpp.domain}</domain>
    <server>${xmpp.host}</server>
    <username>${user}</username>
    <passwd>${o.password ?? userPass}</passwd>
    <port>${xmpp.port}</port>
    <router_name>router</router_name>
    <msg_size_warn>1800000</msg_size_warn>${o.maxStanzaSize ? `\n    <max_stanza_size>${o.maxStanzaSize}</max_stanza_size>` : ""}
    <logfile>${o.logfile ?? join(dir, "osrfsys.log")}</logfile>
    <loglevel>${o.loglevel ?? 3}</loglevel>
  </opensrf>
  <routers>
    <router>
      <trusted_domains>
        ${list("server", o.trustedServers ?? [xmpp.domain])}
        ${list("client", o.trustedClients ?? [xmpp.domain])}
      </trusted_domains>
      <transport>
        <server>${xmpp.domain}</server>
        <host>${xmpp.host}</host>
        <port>${xmpp.port}</port>
        <username>${routerUser}</username>
        <password>${routerPass}</password>
        <resource>router</resource>
        <connect_timeout>10</connect_timeout>
        <max_reconnect_attempts>5</max_reconnect_attempts>
      </transport>
      <logfile>${o.logfile ?? join(dir, "router.log")}</logfile>${o.stallTimeout ? `\n      <stall_timeout>${o.stallTimeout}</stall_timeout>` : ""}
      <loglevel>${o.loglevel ?? 3}</loglevel>
    </router>
  </routers>
  <shared>
    <log_protect>${list("match_string", o.logProtect ?? [])}</log_protect>
  </shared>
</config>
`;
  const file = join(dir, "opensrf_core.xml");
  writeFileSync(file, xml);
  return file;
}

/** One service's entry in an opensrf.xml written by {@link settingsXml}. */
export interface SettingsApp {
  name: string;
  /** `/apps/<name>/unix_config` children, e.g. `{ min_children: 2, max_children: 4 }`. */
  unix: Readonly<Record<string, number | string>>;
  /** `/apps/<name>/keepalive` seconds (default 5). */
  keepalive?: number;
}

/**
 * An opensrf.xml (settings file) for host `testhost` with these services' prefork settings
 * under `/default/apps`, all of them active unless `active` names which are.
 */
export function settingsXml(apps: readonly SettingsApp[], o: { active?: readonly string[] } = {}): string {
  const entries = apps
    .map((a) => {
      const unix = Object.entries(a.unix)
        .map(([k, v]) => `<${k}>${v}</${k}>`)
        .join("");
      return `<${a.name}><keepalive>${a.keepalive ?? 5}</keepalive><unix_config>${unix}</unix_config></${a.name}>`;
    })
    .join("\n      ");
  const active = (o.active ?? apps.map((a) => a.name)).map((n) => `<appname>${n}</appname>`).join("");
  return `<?xml version="1.0"?>
<opensrf version="0.0.3">
  <default>
    <apps>
      ${entries}
    </apps>
  </default>
  <hosts><testhost><activeapps>${active}</activeapps></testhost></hosts>
</opensrf>
`;
}
