import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Where a test's XMPP server listens. */
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
}

/** Accounts every test server needs: the OpenSRF service/client account and the router's. */
export const TEST_USERS: Array<[string, string]> = [
  ["opensrf", "osrf-test-pass"],
  ["router", "router-test-pass"],
];

/**
 * Write an opensrf_core.xml for a test XMPP server, laid out like a real install's,
 * and return its path.
 */
export function writeCoreConfig(xmpp: XmppEndpoint, o: CoreConfigOptions = {}): string {
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
    <domain>${xmpp.domain}</domain>
    <server>${xmpp.host}</server>
    <username>opensrf</username>
    <passwd>${o.password ?? TEST_USERS[0]![1]}</passwd>
    <port>${xmpp.port}</port>
    <router_name>router</router_name>
    <msg_size_warn>1800000</msg_size_warn>
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
        <username>router</username>
        <password>${TEST_USERS[1]![1]}</password>
        <resource>router</resource>
        <connect_timeout>10</connect_timeout>
        <max_reconnect_attempts>5</max_reconnect_attempts>
      </transport>
      <logfile>${o.logfile ?? join(dir, "router.log")}</logfile>
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
